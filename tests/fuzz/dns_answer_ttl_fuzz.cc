// dns_answer_ttl_fuzz.cc: libFuzzer harness for answer_ttl, which reads the DNS responses the
// resolver caches (bytes from the network). Checks that it never reads out of bounds (ASan), that
// only responses with a header are accepted, and that the cache takes what it accepts.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address -I. tests/fuzz/dns_answer_ttl_fuzz.cc
//        lib/dns/answer_ttl.cc lib/dns/answer_cache.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/dns/answer_cache.h"
#include "lib/dns/answer_ttl.h"

using namespace estafette::dns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view message(reinterpret_cast<const char*>(data), size);
  auto ttl = answer_ttl(message);
  if (!ttl) return 0;
  if (size < 12 || !(data[2] & 0x80)) std::abort();  // a response with a whole header
  AnswerCache cache(1);
  auto now = AnswerCache::Clock::now();
  cache.insert("k", 0, message, now + std::chrono::seconds(ttl->seconds), now);
  const AnswerCache::Entry* e = cache.find("k", now);
  if ((ttl->seconds > 0) != (e != nullptr)) std::abort();
  if (e && e->answer != message) std::abort();
  return 0;
}
