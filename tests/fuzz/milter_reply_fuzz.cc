// milter_reply_fuzz.cc: libFuzzer harness for the milter reply decoder: the input is a milter's
// byte stream, fed to ReplyParser in chunks chosen by its first byte. Checks that the parser
// never buffers more than one packet, that splitting never changes the result, and that every
// decoded reply is within its limits; abort()s on any violation.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address -I. tests/fuzz/milter_reply_fuzz.cc
//        filters/milter/protocol.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "filters/milter/protocol.h"

namespace {

using namespace estafette::milter;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(bytes), size);
  std::size_t chunk = input.empty() ? 0 : static_cast<unsigned char>(input[0]) % 17;
  if (!input.empty()) input.remove_prefix(1);

  ReplyParser whole;
  std::vector<Reply> expected;
  bool whole_ok = whole.feed(input, expected);
  check(whole_ok != whole.failed());

  ReplyParser split;
  std::vector<Reply> got;
  bool split_ok = true;
  for (std::size_t i = 0; i < input.size() && split_ok; i += chunk == 0 ? input.size() : chunk) {
    split_ok = split.feed(input.substr(i, chunk == 0 ? input.size() : chunk), got);
    check(split.buffered() < 4 + kMaxPacket);
  }
  check(split_ok == whole_ok);
  check(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    check(got[i].type == expected[i].type);
    check(got[i].body == expected[i].body && got[i].text == expected[i].text);
    check(got[i].body.size() < kMaxPacket);
    if (got[i].type == ReplyType::ReplyCode)
      check(got[i].text.size() >= 3 && (got[i].text[0] == '4' || got[i].text[0] == '5'));
  }
  return 0;
}
