// LmtpReplies: the replies after an LMTP end of data, one per accepted recipient in RCPT order.
// Each row: which recipients were accepted, the replies that came (the connection may die
// before the last), and the result of every recipient ("-" no result: not accepted).
#include "lib/smtp/lmtp_replies.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::smtp {
namespace {

struct Row {
  const char* name;
  std::vector<bool> accepted;
  std::vector<Reply> replies;
  bool complete;                      // after the replies
  std::vector<std::string> expected;  // per recipient: "D reply", "T reply", "P reply" or "-"
};

Reply r(int code, const char* text) {
  return Reply{code, "", {text}};
}

const std::vector<Row> kRows = {
    {"all_delivered", {true, true}, {r(250, "a"), r(250, "b")}, true, {"D 250 a", "D 250 b"}},
    {"mixed_in_rcpt_order",
     {true, true, true},
     {r(250, "a"), r(452, "full"), r(550, "gone")},
     true,
     {"D 250 a", "T 452 full", "P 550 gone"}},
    {"refused_rcpts_are_skipped",
     {false, true, false, true},
     {r(250, "b"), r(552, "quota")},
     true,
     {"-", "D 250 b", "-", "P 552 quota"}},
    {"fewer_replies_the_rest_deferred",
     {true, true, true},
     {r(250, "a")},
     false,
     {"D 250 a", "T lost", "T lost"}},
    {"no_reply_at_all_nothing_delivered", {true, true}, {}, false, {"T lost", "T lost"}},
    {"a_3xx_is_no_delivery", {true}, {r(354, "huh")}, true, {"T 354 huh"}},
    {"a_1xx_or_6xx_is_deferred",
     {true, true},
     {r(199, "x"), r(650, "y")},
     true,
     {"T 199 x", "T 650 y"}},
    {"none_accepted_none_expected", {false, false}, {}, true, {"-", "-"}},
};

class LmtpRepliesTest : public ::testing::TestWithParam<Row> {};

TEST_P(LmtpRepliesTest, Results) {
  const Row& row = GetParam();
  LmtpReplies replies(row.accepted);
  for (const auto& reply : row.replies) ASSERT_TRUE(replies.take(reply).has_value());
  EXPECT_EQ(replies.complete(), row.complete);
  replies.finish("lost");
  EXPECT_TRUE(replies.complete());
  ASSERT_EQ(row.expected.size(), row.accepted.size());
  for (std::size_t i = 0; i < row.accepted.size(); ++i) {
    std::string got = "-";
    if (const auto& s = replies.status(i)) {
      got = *s == base::DeliveryStatus::Delivered  ? "D "
            : *s == base::DeliveryStatus::TempFail ? "T "
                                                   : "P ";
      got += replies.reply(i);
    }
    EXPECT_EQ(got, row.expected[i]) << "recipient " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, LmtpRepliesTest, ::testing::ValuesIn(kRows),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LmtpReplies, ExtraReplyBelongsToNobody) {
  LmtpReplies replies({true, false});
  EXPECT_EQ(replies.take(r(250, "a")), 0u);
  EXPECT_TRUE(replies.complete());
  EXPECT_FALSE(replies.take(r(250, "extra")).has_value());
  EXPECT_EQ(replies.reply(0), "250 a");
}

TEST(LmtpReplies, IndexesFollowRcptOrder) {
  LmtpReplies replies({false, true, true});
  EXPECT_EQ(replies.expected(), 2u);
  EXPECT_EQ(replies.take(r(250, "b")), 1u);
  EXPECT_EQ(replies.take(r(250, "c")), 2u);
  EXPECT_EQ(replies.received(), 2u);
}

}  // namespace
}  // namespace estafette::smtp
