// ident_reply_fuzz.cc: libFuzzer harness for parse_ident_reply, the parser of what a client's
// identd (RFC 1413) sends back. The first four bytes are the two ports the query named, the rest
// is the reply line. Checks the contract: Ok carries a user and an OS that are printable ASCII
// without header-breaking characters and bounded; every other status carries neither.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address -I. tests/fuzz/ident_reply_fuzz.cc
//        lib/checks/parse.cc lib/checks/ip.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "lib/checks/checks.h"

namespace {

using namespace estafette::checks;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_token(const std::string& s, std::size_t max) {
  check(!s.empty() && s.size() <= max);
  for (char c : s) check(c > ' ' && c < 0x7f && !std::strchr("()<>[]{}\"'`@\\", c));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  auto client_port = static_cast<std::uint16_t>(data[0] << 8 | data[1]);
  auto server_port = static_cast<std::uint16_t>(data[2] << 8 | data[3]);
  std::string_view line(reinterpret_cast<const char*>(data) + 4, size - 4);
  IdentResult r = parse_ident_reply(line, client_port, server_port);
  if (r.status == IdentStatus::Ok) {
    check(line.size() <= 1000);
    check_token(r.user, 64);
    check_token(r.os, 32);
  } else {
    check(r.status == IdentStatus::NoUser || r.status == IdentStatus::Error);
    check(r.user.empty() && r.os.empty());
  }
  // Any other port pair than the one in the reply is an error.
  IdentResult other = parse_ident_reply(line, client_port ^ 1, server_port);
  check(r.status == IdentStatus::Error || other.status == IdentStatus::Error);
  return 0;
}
