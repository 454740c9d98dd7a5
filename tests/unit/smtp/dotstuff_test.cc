#include "lib/smtp/dotstuff.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "tests/unit/smtp/split_feeder.h"

namespace estafette::smtp {
namespace {

using testing::all_splits;

struct UnstuffCase {
  std::string name;
  std::string wire;
  bool to_lf;
  std::string plain;
};

std::string PrintUnstuffCase(const ::testing::TestParamInfo<UnstuffCase>& info) {
  return info.param.name;
}

void PrintTo(const UnstuffCase& c, std::ostream* os) {
  *os << c.name;
}

class SmtpUnstuffer : public ::testing::TestWithParam<UnstuffCase> {};

TEST_P(SmtpUnstuffer, SameOutputWhateverTheSplit) {
  const UnstuffCase& c = GetParam();
  for (const auto& split : all_splits(c.wire)) {
    SCOPED_TRACE(split.name);
    Unstuffer unstuffer(c.to_lf);
    std::string out;
    for (std::string_view chunk : split.chunks) unstuffer.feed(chunk, out);
    unstuffer.finish(out);
    EXPECT_EQ(out, c.plain);
  }
  if (!c.to_lf) {
    std::string out = "prefix:";
    unstuff_append(c.wire, out);
    EXPECT_EQ(out, "prefix:" + c.plain);
  }
}

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpUnstuffer,
    ::testing::Values(
        UnstuffCase{"Empty", "", false, ""},
        UnstuffCase{"Plain", "Subject: x\r\n\r\nbody\r\n", false, "Subject: x\r\n\r\nbody\r\n"},
        UnstuffCase{"DoubleDot", "..\r\n", false, ".\r\n"},
        UnstuffCase{"StuffedLines", "..x\r\na\r\n...\r\n", false, ".x\r\na\r\n..\r\n"},
        UnstuffCase{"LeadingDotAlwaysRemoved", ".x\r\n", false, "x\r\n"},
        UnstuffCase{"DotInsideLineKept", "a.b\r\nc..\r\n", false, "a.b\r\nc..\r\n"},
        UnstuffCase{"FirstLine", "..first\r\nsecond\r\n", false, ".first\r\nsecond\r\n"},
        UnstuffCase{"ToLf", "a\r\n..b\r\n\r\nc\r\n", true, "a\n.b\n\nc\n"},
        UnstuffCase{"ToLfKeepsBareCr", "a\rb\r\n", true, "a\rb\n"},
        UnstuffCase{"ToLfCrAtEnd", "a\r", true, "a\r"},
        UnstuffCase{"ToLfCrCrLf", "a\r\r\n..\r\n", true, "a\r\n.\n"},
        UnstuffCase{"CrDotIsNotLineStart", "a\r.b\r\n", true, "a\r.b\n"},
        UnstuffCase{"NoFinalNewline", "..abc", false, ".abc"}),
    PrintUnstuffCase);

struct StuffCase {
  std::string plain;
  std::string wire;
};

void PrintTo(const StuffCase& c, std::ostream* os) {
  *os << '"' << c.plain << '"';
}

class SmtpStuff : public ::testing::TestWithParam<StuffCase> {};

TEST_P(SmtpStuff, StuffsAndRoundTrips) {
  const StuffCase& c = GetParam();
  std::string wire = stuff(c.plain);
  EXPECT_EQ(wire, c.wire);
  // Unstuffing gives back the CRLF-normalised plain text.
  std::string back;
  unstuff_append(wire, back);
  EXPECT_EQ(stuff(back), wire);
}

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpStuff,
    ::testing::Values(StuffCase{"", ""}, StuffCase{"a", "a\r\n"}, StuffCase{"a\n", "a\r\n"},
                      StuffCase{"a\r\n", "a\r\n"}, StuffCase{"a\nb\rc\r\n", "a\r\nb\r\nc\r\n"},
                      StuffCase{".", "..\r\n"}, StuffCase{".\n.x\n", "..\r\n..x\r\n"},
                      StuffCase{"a\n.\nb", "a\r\n..\r\nb\r\n"}, StuffCase{"a.b\n", "a.b\r\n"},
                      StuffCase{"\n\n", "\r\n\r\n"}, StuffCase{"x\r\r\n", "x\r\n\r\n"},
                      StuffCase{"\r.\r\r.", "\r\n..\r\n\r\n..\r\n"},
                      StuffCase{"a\rb\rc\nd", "a\r\nb\r\nc\r\nd\r\n"}));

// The definition, byte by byte (stuff() copies runs): bare CR, bare LF and CRLF end a line as
// CRLF, a line's leading "." is doubled, and a last line without an end gets one.
std::string stuff_bytewise(std::string_view plain) {
  std::string out;
  bool line_start = true;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    char c = plain[i];
    if (line_start && c == '.') out.push_back('.');
    line_start = false;
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < plain.size() && plain[i + 1] == '\n') ++i;
      out.append("\r\n");
      line_start = true;
    } else {
      out.push_back(c);
    }
  }
  if (!out.empty() && !line_start) out.append("\r\n");
  return out;
}

TEST(SmtpStuffRuns, EveryShortInputOfDotsAndLineBreaksAsByteByByte) {
  // Every string of up to 7 bytes over ".\r\na": every placement of bare CRs, bare LFs, CRLFs
  // and leading dots.
  const std::string alphabet = ".\r\na";
  std::size_t checked = 0;
  for (std::size_t length = 0; length <= 7; ++length) {
    std::size_t combos = 1;
    for (std::size_t k = 0; k < length; ++k) combos *= alphabet.size();
    for (std::size_t n = 0; n < combos; ++n) {
      std::string plain;
      for (std::size_t k = 0, rest = n; k < length; ++k, rest /= alphabet.size())
        plain.push_back(alphabet[rest % alphabet.size()]);
      ASSERT_EQ(stuff(plain), stuff_bytewise(plain)) << ::testing::PrintToString(plain);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 21845u);
}

}  // namespace
}  // namespace estafette::smtp
