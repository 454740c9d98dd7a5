// courierd's log field formatting (log_fields.h): quoted replies, seconds, delay since arrival,
// the delays= split, dsn=, orig_to= and the attempt line.
#include "courierd/log_fields.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
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
  EXPECT_EQ(delay_seconds(queue_delays(1'700'000'000, now).total()), "12.50");
  EXPECT_EQ(delay_seconds(queue_delays(1'700'000'020, now).total()), "0.00");  // clock went back
}

// delays=: a from the arrival (whole seconds) to the hand-off, then the module's c and d cut to
// courierd's own clock, b the rest; the four always sum to the delay.
struct DelaysCase {
  const char* name;
  std::int64_t arrival;  // unix seconds
  std::int64_t dispatched_ms;
  std::int64_t now_ms;
  std::uint64_t setup_ms;
  std::uint64_t transfer_ms;
  Delays want;
  const char* text;
};

class LogFieldsDelays : public ::testing::TestWithParam<DelaysCase> {};

TEST_P(LogFieldsDelays, SplitsAndSums) {
  const auto& c = GetParam();
  Delays d = split_delays(c.arrival, Time(Millis(c.dispatched_ms)), Time(Millis(c.now_ms)),
                          c.setup_ms, c.transfer_ms);
  EXPECT_EQ(d.queue, c.want.queue);
  EXPECT_EQ(d.before, c.want.before);
  EXPECT_EQ(d.setup, c.want.setup);
  EXPECT_EQ(d.transfer, c.want.transfer);
  EXPECT_EQ(d.total(), std::max<std::int64_t>(0, c.dispatched_ms - c.arrival * 1000) +
                           std::max<std::int64_t>(0, c.now_ms - c.dispatched_ms));
  EXPECT_EQ(delays_text(d), c.text);
}

INSTANTIATE_TEST_SUITE_P(Table, LogFieldsDelays,
                         ::testing::Values(DelaysCase{"Smtp",
                                                      1000,
                                                      1'000'250,
                                                      1'001'900,
                                                      300,
                                                      1200,
                                                      {250, 150, 300, 1200},
                                                      "0.25/0.15/0.30/1.20"},
                                           DelaysCase{"LocalNoConnection",
                                                      1000,
                                                      1'000'010,
                                                      1'000'030,
                                                      0,
                                                      15,
                                                      {10, 5, 0, 15},
                                                      "0.01/0.00/0.00/0.01"},
                                           DelaysCase{"NothingMeasured",
                                                      1000,
                                                      1'002'000,
                                                      1'002'500,
                                                      0,
                                                      0,
                                                      {2000, 500, 0, 0},
                                                      "2.00/0.50/0.00/0.00"},
                                           // A module that claims more than courierd saw: setup
                                           // first, then transfer, is cut.
                                           DelaysCase{"SetupClaimTooLong",
                                                      1000,
                                                      1'000'000,
                                                      1'000'100,
                                                      5000,
                                                      5000,
                                                      {0, 0, 100, 0},
                                                      "0.00/0.00/0.10/0.00"},
                                           DelaysCase{"TransferClaimTooLong",
                                                      1000,
                                                      1'000'000,
                                                      1'000'100,
                                                      40,
                                                      1'000'000'000,
                                                      {0, 0, 40, 60},
                                                      "0.00/0.00/0.04/0.06"},
                                           DelaysCase{"HugeClaims",
                                                      1000,
                                                      1'000'000,
                                                      1'000'100,
                                                      UINT64_MAX,
                                                      UINT64_MAX,
                                                      {0, 0, 100, 0},
                                                      "0.00/0.00/0.10/0.00"},
                                           // Clocks that went back: never negative.
                                           DelaysCase{"ArrivalInTheFuture",
                                                      2000,
                                                      1'000'000,
                                                      1'000'100,
                                                      0,
                                                      0,
                                                      {0, 100, 0, 0},
                                                      "0.00/0.10/0.00/0.00"},
                                           DelaysCase{"ResultBeforeDispatch",
                                                      1000,
                                                      1'000'500,
                                                      1'000'000,
                                                      10,
                                                      10,
                                                      {500, 0, 0, 0},
                                                      "0.50/0.00/0.00/0.00"},
                                           DelaysCase{"Days",
                                                      0,
                                                      200'000'000,
                                                      200'001'234,
                                                      0,
                                                      1000,
                                                      {200'000'000, 234, 0, 1000},
                                                      "200000.00/0.23/0.00/1.00"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LogFields, QueueDelaysHaveNoModule) {
  Delays d = queue_delays(1000, Time(Millis(1'003'456)));
  EXPECT_EQ(delays_text(d), "3.45/0.00/0.00/0.00");
  EXPECT_EQ(delay_seconds(d.total()), "3.45");
  EXPECT_EQ(delay_seconds(-5), "0.00");
}

struct DsnCase {
  const char* name;
  std::string reply;
  base::DeliveryStatus status;
  std::string dsn;
};

class LogFieldsDsn : public ::testing::TestWithParam<DsnCase> {};

TEST_P(LogFieldsDsn, CodeOfTheReply) {
  EXPECT_EQ(dsn_code(GetParam().reply, GetParam().status), GetParam().dsn);
}

using S = base::DeliveryStatus;
INSTANTIATE_TEST_SUITE_P(
    Table, LogFieldsDsn,
    ::testing::Values(DsnCase{"Sent", "250 2.0.0 Ok: queued as X", S::Delivered, "2.0.0"},
                      DsnCase{"Detailed", "550 5.1.1 <a@b>: no such user", S::PermFail, "5.1.1"},
                      DsnCase{"ThreeDigitParts", "554 5.7.10 REQUIRETLS", S::PermFail, "5.7.10"},
                      DsnCase{"Multiline", "451-4.7.1 greylisted\r\n451 4.7.1 later", S::TempFail,
                              "4.7.1"},
                      DsnCase{"NoEnhancedCode", "550 no such user", S::PermFail, "5.0.0"},
                      DsnCase{"NoReplyAtAll", "connection closed", S::TempFail, "4.0.0"},
                      DsnCase{"Empty", "", S::Delivered, "2.0.0"},
                      // A code whose class disagrees with the outcome is not believed.
                      DsnCase{"ClassDisagrees", "250 2.0.0 ok", S::TempFail, "4.0.0"},
                      DsnCase{"ExpiredFromTemp", "451 4.4.1 no host", S::TempFail, "4.4.1"},
                      DsnCase{"TooLongPart", "550 5.1234.1 x", S::PermFail, "5.0.0"},
                      DsnCase{"NotACode", "550 5.1.1x", S::PermFail, "5.0.0"},
                      DsnCase{"AtTheEnd", "250 2.6.0", S::Delivered, "2.6.0"}),
    [](const auto& info) { return std::string(info.param.name); });

struct OrigCase {
  const char* name;
  std::string rcpt;
  std::string orcpt;
  std::string orig;
};

class LogFieldsOrigTo : public ::testing::TestWithParam<OrigCase> {};

TEST_P(LogFieldsOrigTo, ShownOnlyWhenItDiffers) {
  EXPECT_EQ(orig_to_of(GetParam().rcpt, GetParam().orcpt), GetParam().orig);
}

INSTANTIATE_TEST_SUITE_P(
    Table, LogFieldsOrigTo,
    ::testing::Values(
        OrigCase{"None", "bob@l.test", "", ""},
        OrigCase{"Alias", "bob@l.test", "rfc822;postmaster@l.test", "postmaster@l.test"},
        OrigCase{"Xtext", "bob@l.test", "rfc822;a+2Bb@l.test", "a+b@l.test"},
        OrigCase{"Same", "bob@l.test", "rfc822;bob@l.test", ""},
        OrigCase{"SameButCase", "bob@l.test", "RFC822;Bob@L.test", ""},
        OrigCase{"OtherType", "bob@l.test", "x400;whatever", ""},
        OrigCase{"Malformed", "bob@l.test", "no-semicolon", ""},
        // A decoded control character (a forged log line) is no address: nothing is shown.
        OrigCase{"ControlChars", "bob@l.test", "rfc822;a+0A+0Did+3DX@l.test", ""}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(LogFields, AttemptLineIsPostfixLike) {
  Delays d{250, 150, 300, 1200};
  EXPECT_EQ(attempt_line({"Q1", "bob@l.test", "postmaster@l.test", "mx[127.0.0.1]:25", d, "2.0.0",
                          "sent", "", "250 2.0.0 Ok\r\n"}),
            "id=Q1 to=<bob@l.test> orig_to=<postmaster@l.test> relay=mx[127.0.0.1]:25 delay=1.90 "
            "delays=0.25/0.15/0.30/1.20 dsn=2.0.0 status=sent (250 2.0.0 Ok)");
  EXPECT_EQ(attempt_line({"Q2", "a\nb@l.test", "", "none", Delays{}, "4.4.1", "deferred",
                          " retry_in=30.0s host_failed=yes", "451-4.4.1 a\r\n451 4.4.1 b"}),
            "id=Q2 to=<a?b@l.test> relay=none delay=0.00 delays=0.00/0.00/0.00/0.00 dsn=4.4.1 "
            "retry_in=30.0s host_failed=yes status=deferred (451-4.4.1 a 451 4.4.1 b)");
  // A long reply is cut, and stays on one line.
  std::string line = attempt_line(
      {"Q3", "c@l.test", "", "local", Delays{}, "5.0.0", "bounced", "", std::string(5000, 'x')});
  EXPECT_LT(line.size(), 1200u);
  EXPECT_EQ(line.back(), ')');
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace estafette::courierd
