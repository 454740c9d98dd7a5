// pickup/bounce: what a user gets back when a maildrop file is refused: the reason on one
// printable line, the original attached (whole, its header only when too big, or the first bytes
// of a file that did not parse, quoted safely for DATA).
#include "pickup/bounce.h"

#include <gtest/gtest.h>

namespace estafette::pickup {
namespace {

BounceInput base_input() {
  BounceInput in;
  in.hostname = "mta.test";
  in.to = "alice@mta.test";
  in.date = "Sun, 06 Dec 2026 22:00:00 +0000";
  in.message_id = "<1.2.pickup@mta.test>";
  in.reason = "the recipient <x@y> was refused: 550 5.1.1 no\r\nsuch user";
  in.file_name = "123.456";
  return in;
}

// No line of the wire is a lone "." (it would end DATA).
bool safe_for_data(const std::string& wire) {
  return wire.find("\r\n.\r\n") == std::string::npos && !wire.starts_with(".\r\n") &&
         wire.ends_with("\r\n");
}

TEST(PickupBounce, AttachesTheOriginal) {
  auto in = base_input();
  in.parsed = true;
  in.sender = "alice@mta.test";
  in.recipients = {"x@y"};
  std::string original = "Subject: hello\r\n\r\n..dot\r\nbody\r\n";
  in.wire = original;
  auto b = compose_bounce(in);
  EXPECT_TRUE(b.wire.starts_with("From: MAILER-DAEMON@mta.test"));
  EXPECT_NE(b.wire.find("To: alice@mta.test\r\n"), std::string::npos);
  EXPECT_NE(b.wire.find("Auto-Submitted: auto-replied\r\n"), std::string::npos);
  // The reason on one line, control characters gone.
  EXPECT_NE(b.wire.find("550 5.1.1 no  such user\r\n"), std::string::npos) << b.wire;
  EXPECT_NE(b.wire.find("Recipient: <x@y>\r\n"), std::string::npos);
  EXPECT_NE(b.wire.find("Content-Type: message/rfc822\r\n"), std::string::npos);
  EXPECT_NE(b.wire.find(original), std::string::npos);
  EXPECT_FALSE(b.eight_bit);
  EXPECT_TRUE(safe_for_data(b.wire));
}

TEST(PickupBounce, HeaderOnlyWhenTooBig) {
  auto in = base_input();
  in.parsed = true;
  in.max_size = 100000;
  std::string original = "Subject: big\r\n\r\n" + std::string(200000, 'x') + "\r\n";
  in.wire = original;
  auto b = compose_bounce(in);
  EXPECT_LT(b.wire.size(), in.max_size);
  EXPECT_NE(b.wire.find("Content-Type: text/rfc822-headers\r\n"), std::string::npos);
  EXPECT_NE(b.wire.find("Subject: big\r\n"), std::string::npos);
  EXPECT_TRUE(safe_for_data(b.wire));
}

TEST(PickupBounce, QuotesAFileThatDidNotParse) {
  auto in = base_input();
  static constexpr char kHead[] = "garbage\n.\nMAIL FROM:<x>\r\n\0bin\xff";
  std::string raw = std::string(kHead, sizeof kHead - 1) + std::string(100000, 'y');
  in.raw = raw;
  auto b = compose_bounce(in);
  EXPECT_NE(b.wire.find("..\r\nMAIL FROM:<x>\r\n?bin"), std::string::npos);
  EXPECT_TRUE(b.eight_bit);
  EXPECT_LT(b.wire.size(), 70000u);  // cut to a bound
  EXPECT_TRUE(safe_for_data(b.wire));
}

TEST(PickupBounce, BoundaryNotInTheAttachment) {
  auto in = base_input();
  in.parsed = true;
  std::string original = "X: --=_estafette_bounce_1.2.pickup_mta.test\r\n\r\nb\r\n";
  in.wire = original;
  auto b = compose_bounce(in);
  auto at = b.wire.find("boundary=\"");
  ASSERT_NE(at, std::string::npos);
  auto boundary = b.wire.substr(at + 10, b.wire.find('"', at + 10) - at - 10);
  EXPECT_EQ(original.find(boundary), std::string::npos) << boundary;
}

struct WireCase {
  std::string in, out;
};
class PickupToWire : public ::testing::TestWithParam<WireCase> {};
TEST_P(PickupToWire, Converts) {
  EXPECT_EQ(to_wire(GetParam().in), GetParam().out);
}
INSTANTIATE_TEST_SUITE_P(Table, PickupToWire,
                         ::testing::Values(WireCase{"", ""}, WireCase{"a", "a\r\n"},
                                           WireCase{"a\nb\r\nc\rd", "a\r\nb\r\nc\r\nd\r\n"},
                                           WireCase{".\n.a\n", "..\r\n..a\r\n"},
                                           WireCase{"x\n\n", "x\r\n\r\n"}));

}  // namespace
}  // namespace estafette::pickup
