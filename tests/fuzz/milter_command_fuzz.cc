// milter_command_fuzz.cc: libFuzzer harness for the filter side's command decoder
// (filters/milter/server_protocol.h, what estafette-filterhost reads from esmtpd): the input is
// an MTA's byte stream, fed to CommandParser in chunks chosen by its first byte. Checks that
// splitting never changes the result and that every decoded command is within its limits, and
// that the reply encoders' output decodes with the MTA side's ReplyParser; abort()s on any
// violation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "filters/milter/server_protocol.h"

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

  CommandParser whole;
  std::vector<Command> expected;
  bool whole_ok = whole.feed(input, expected);
  check(whole_ok != whole.failed());

  CommandParser split;
  std::vector<Command> got;
  bool split_ok = true;
  for (std::size_t i = 0; i < input.size() && split_ok; i += chunk == 0 ? input.size() : chunk)
    split_ok = split.feed(input.substr(i, chunk == 0 ? input.size() : chunk), got);
  check(split_ok == whole_ok);
  check(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    check(got[i].type == expected[i].type);
    check(got[i].body == expected[i].body && got[i].address == expected[i].address);
    check(got[i].macros == expected[i].macros && got[i].args == expected[i].args);
    check(got[i].body.size() < kMaxPacket && got[i].value.size() < kMaxPacket);
    if (got[i].type == CommandType::Header) check(!got[i].name.empty());
    // What the filter host would send back for it decodes on the MTA side.
    std::string reply = encode_addheader(got[i].name.empty() ? "X" : got[i].name, got[i].value);
    if (got[i].name.find('\0') == std::string::npos &&
        got[i].value.find('\0') == std::string::npos) {
      ReplyParser parser;
      std::vector<Reply> replies;
      check(parser.feed(reply, replies) && replies.size() == 1);
    }
  }
  return 0;
}
