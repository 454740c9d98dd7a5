#include "lib/smtp/hop_count.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/smtp/split_feeder.h"

namespace estafette::smtp {
namespace {

using testing::all_splits;

struct HopCase {
  std::string name;
  std::string message;
  std::size_t received;
  bool header_done;
};

std::string PrintHopCase(const ::testing::TestParamInfo<HopCase>& info) {
  return info.param.name;
}

void PrintTo(const HopCase& c, std::ostream* os) {
  *os << c.name;
}

class SmtpHopCounter : public ::testing::TestWithParam<HopCase> {};

TEST_P(SmtpHopCounter, CountsTheHeaderSectionAtAnySplit) {
  const HopCase& c = GetParam();
  for (const auto& split : all_splits(c.message)) {
    HopCounter counter;
    for (auto chunk : split.chunks) counter.feed(chunk);
    EXPECT_EQ(counter.received(), c.received) << split.name;
    EXPECT_EQ(counter.header_done(), c.header_done) << split.name;
  }
  EXPECT_EQ(count_received(c.message), c.received);
}

INSTANTIATE_TEST_SUITE_P(
    Messages, SmtpHopCounter,
    ::testing::Values(
        HopCase{"none", "Subject: x\r\n\r\nReceived: in the body\r\n", 0, true},
        HopCase{
            "two_crlf",
            "Received: from a\r\n\tby b; date\r\nreceived : from c\r\nSubject: x\r\n\r\nbody\r\n",
            2, true},
        HopCase{"plain_lf", "RECEIVED: a\nX: y\nReceived:b\n\nReceived: body\n", 2, true},
        HopCase{"continuation_not_counted", "X: a\r\n Received: b\r\n\tReceived: c\r\n\r\n", 0,
                true},
        HopCase{"other_names", "Received-SPF: pass\r\nX-Received: a\r\nReceivedx: b\r\n\r\n", 0,
                true},
        HopCase{"no_body_yet", "Received: a\r\nReceived: b\r\n", 2, false},
        HopCase{"long_name", "Xxxxxxxxxxxxxxxxxxxxxxxxxxxx: Received: a\r\n\r\n", 0, true},
        HopCase{"empty", "", 0, false}),
    PrintHopCase);

TEST(SmtpHopCounter, FiftyReceivedLines) {
  std::string message;
  for (int i = 0; i < 50; ++i) message += "Received: from h" + std::to_string(i) + "\r\n\tby x\r\n";
  message += "Subject: loop\r\n\r\n";
  message += std::string(100000, 'b');
  HopCounter counter;
  counter.feed(message);
  EXPECT_EQ(counter.received(), 50u);
  counter.reset();
  EXPECT_EQ(counter.received(), 0u);
  EXPECT_FALSE(counter.header_done());
}

}  // namespace
}  // namespace estafette::smtp
