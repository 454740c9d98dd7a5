// courierd's log field formatting (log_fields.h): quoted replies, seconds, delay since arrival.
#include "courierd/log_fields.h"

#include <gtest/gtest.h>

#include <string>

namespace estafette::courierd {
namespace {

struct QuotedCase {
  const char* name;
  std::string text;
  std::string quoted;
};

class LogFieldsQuoted : public ::testing::TestWithParam<QuotedCase> {};

TEST_P(LogFieldsQuoted, QuotesAndEscapes) {
  EXPECT_EQ(log_quoted(GetParam().text), GetParam().quoted);
}

INSTANTIATE_TEST_SUITE_P(
    Table, LogFieldsQuoted,
    ::testing::Values(QuotedCase{"Empty", "", "\"\""},
                      QuotedCase{"Plain", "250 2.0.0 ok", "\"250 2.0.0 ok\""},
                      QuotedCase{"Multiline", "451-a\r\n451 b\r\n", "\"451-a 451 b\""},
                      QuotedCase{"Escapes", "say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\""},
                      QuotedCase{"TrailingSpaces", "x   ", "\"x\""},
                      QuotedCase{"OnlySpaces", "   ", "\"\""}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(LogFields, SecondsWithOneDecimalNeverNegative) {
  EXPECT_EQ(seconds_text(1.25), "1.2s");
  EXPECT_EQ(seconds_text(0), "0.0s");
  EXPECT_EQ(seconds_text(-3), "0.0s");
  EXPECT_EQ(seconds_text(3600), "3600.0s");
}

TEST(LogFields, DelaySinceArrival) {
  const Time now = Time(Millis(1'700'000'012'500));
  EXPECT_EQ(delay_text(1'700'000'000, now), "12.5s");
  EXPECT_EQ(delay_text(1'700'000'020, now), "0.0s");  // a clock that went back
}

}  // namespace
}  // namespace estafette::courierd
