// What estafette hold/release/cancel/delete print and exit with for each of courierd's replies.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "lib/admin/commands.h"

namespace estafette::admin {
namespace {

using ipc::QueueOp;
using ipc::QueueOpReply;
using ipc::QueueOpRequest;
using ipc::QueueOpStatus;

struct Case {
  const char* name;
  QueueOpRequest request;
  QueueOpReply reply;
  std::string text;
  bool error;
  int exit_code;
};

class DescribeQueueOp : public ::testing::TestWithParam<Case> {};

TEST_P(DescribeQueueOp, TextAndExitCode) {
  const Case& c = GetParam();
  QueueOpOutcome got = describe_queue_op(c.request, c.reply);
  EXPECT_EQ(got.text, c.text);
  EXPECT_EQ(got.error, c.error);
  EXPECT_EQ(got.exit_code, c.exit_code);
}

const QueueOpReply kOne{QueueOpStatus::Ok, 1, 2, 0, ""};

INSTANTIATE_TEST_SUITE_P(
    All, DescribeQueueOp,
    ::testing::Values(
        Case{"hold",
             {QueueOp::Hold, false, "Q1"},
             kOne,
             "estafette: hold: 1 message(s) on hold, 2 recipient(s)\n",
             false,
             0},
        Case{"hold_in_flight",
             {QueueOp::Hold, false, "Q1"},
             {QueueOpStatus::Ok, 1, 1, 1, ""},
             "estafette: hold: 1 message(s) on hold, 1 recipient(s); 1 in a delivery attempt now: "
             "held if that attempt fails\n",
             false,
             0},
        Case{"release_all",
             {QueueOp::Release, true, ""},
             {QueueOpStatus::Ok, 3, 4, 0, ""},
             "estafette: release: 3 message(s) released, 4 recipient(s) ready for delivery\n",
             false,
             0},
        Case{"cancel",
             {QueueOp::Cancel, false, "Q1"},
             kOne,
             "estafette: cancel: Q1 cancelled, 2 recipient(s) bounced to the sender\n",
             false,
             0},
        Case{"delete_in_flight",
             {QueueOp::Delete, false, "Q1"},
             {QueueOpStatus::Ok, 1, 0, 1, ""},
             "estafette: delete: Q1 deleted, 0 recipient(s) dropped; 1 in a delivery attempt "
             "now: finished when that attempt ends\n",
             false,
             0},
        Case{"not_found",
             {QueueOp::Cancel, false, "Q9"},
             {QueueOpStatus::NotFound, 0, 0, 0, ""},
             "estafette: cancel: no message Q9 in the queue\n",
             true,
             1},
        Case{"failed",
             {QueueOp::Hold, true, ""},
             {QueueOpStatus::Failed, 0, 0, 0, "disk full"},
             "estafette: hold: failed: disk full\n",
             true,
             75}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(QueueOpRequests, IdsStdinAndAll) {
  std::string why;
  std::istringstream none;
  auto r = queue_op_requests("hold", {"Q1", "Q2"}, none, &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].op, QueueOp::Hold);
  EXPECT_EQ((*r)[1].queue_id, "Q2");
  std::istringstream in("Q3\n Q4\tQ5\n");
  r = queue_op_requests("delete", {"Q1", "-"}, in, &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[3].queue_id, "Q5");
  for (const char* all : {"ALL", "--all"}) {
    r = queue_op_requests("cancel", {all}, none, &why);
    ASSERT_TRUE(r) << why;
    ASSERT_EQ(r->size(), 1u);
    EXPECT_TRUE((*r)[0].all);
  }
  EXPECT_FALSE(queue_op_requests("cancel", {"ALL", "Q1"}, none, &why));
  EXPECT_FALSE(queue_op_requests("delete", {}, none, &why));
  EXPECT_FALSE(queue_op_requests("flush", {"Q1"}, none, &why));
  std::istringstream empty("");
  EXPECT_FALSE(queue_op_requests("delete", {"-"}, empty, &why));
  std::istringstream bad(std::string(65, 'x'));
  EXPECT_FALSE(queue_op_requests("delete", {"-"}, bad, &why));
  EXPECT_FALSE(queue_op_requests("delete", {std::string("Q\x01")}, none, &why));
  std::string many;
  for (std::size_t i = 0; i <= kMaxQueueOpIds; ++i) many += "Q ";
  std::istringstream flood(many);
  EXPECT_FALSE(queue_op_requests("delete", {"-"}, flood, &why));
  EXPECT_NE(why.find("more than"), std::string::npos) << why;
}

TEST(DescribeQueueOp, AllForCancelAndDelete) {
  auto out = describe_queue_op({QueueOp::Delete, true, ""}, {QueueOpStatus::Ok, 3, 4, 0, ""});
  EXPECT_EQ(out.text, "estafette: delete: 3 message(s) deleted, 4 recipient(s) dropped\n");
  out = describe_queue_op({QueueOp::Cancel, true, ""}, {QueueOpStatus::Ok, 2, 2, 1, ""});
  EXPECT_EQ(out.text,
            "estafette: cancel: 2 message(s) cancelled, 2 recipient(s) bounced to the sender; 1 "
            "in a delivery attempt now: finished when that attempt ends\n");
}

TEST(ParseDuration, Table) {
  const std::vector<std::pair<std::string, std::optional<std::uint64_t>>> table = {
      {"90s", 90},
      {"30m", 1800},
      {"2h", 7200},
      {"3d", 259200},
      {"1s", 1},
      {"007m", 420},
      {"36600d", 36600ull * 86400},
      {"0s", std::nullopt},
      {"", std::nullopt},
      {"s", std::nullopt},
      {"90", std::nullopt},
      {"2w", std::nullopt},
      {"2H", std::nullopt},
      {"-5m", std::nullopt},
      {"+5m", std::nullopt},
      {" 5m", std::nullopt},
      {"5 m", std::nullopt},
      {"1.5h", std::nullopt},
      {"5mm", std::nullopt},
      {"36601d", std::nullopt},                 // over kMaxOlderThanSeconds
      {"999999999999d", std::nullopt},          // 12 digits: no overflow, too large
      {"99999999999999999999s", std::nullopt},  // too long to be a number we take
  };
  for (const auto& [text, want] : table) EXPECT_EQ(parse_duration(text), want) << text;
}

ipc::QueueSelection sel(bool by_sender = false, std::string sender = "", std::string domain = "",
                        std::string destination = "", std::uint64_t older_than_s = 0,
                        std::string reason = "") {
  return ipc::QueueSelection{by_sender,         std::move(sender),
                             std::move(domain), std::move(destination),
                             older_than_s,      std::move(reason)};
}

TEST(ParseSelection, Table) {
  using Options = std::vector<std::pair<std::string, std::string>>;
  struct Row {
    Options options;
    std::optional<ipc::QueueSelection> want;
  };
  const std::vector<Row> table = {
      {{{"--sender", "Alice@Example.TEST"}}, sel(true, "Alice@Example.TEST")},
      {{{"--sender", "<>"}}, sel(true, "")},
      {{{"--sender", "<a@b.test>"}}, sel(true, "a@b.test")},
      {{{"--rcpt-domain", "Dead.TEST"}}, sel(false, "", "dead.test")},
      {{{"--rcpt-domain", "[127.0.0.1]"}}, sel(false, "", "[127.0.0.1]")},
      {{{"--destination", "127.0.0.1:9"}}, sel(false, "", "", "127.0.0.1:9")},
      {{{"--older-than", "2h"}}, sel(false, "", "", "", 7200)},
      {{{"--reason", "Connection refused"}}, sel(false, "", "", "", 0, "Connection refused")},
      {{{"--sender", "<>"}, {"--older-than", "90s"}, {"--reason", "4.4.1"}},
       sel(true, "", "", "", 90, "4.4.1")},
      {{}, sel()},  // no option: empty (the caller then wants ids)
      {{{"--sender", ""}}, std::nullopt},
      {{{"--sender", "a b@c"}}, std::nullopt},
      {{{"--sender", "<a@b"}}, std::nullopt},
      {{{"--sender", "@b.test"}}, std::nullopt},
      {{{"--rcpt-domain", "a@b.test"}}, std::nullopt},
      {{{"--rcpt-domain", "b.test "}}, std::nullopt},
      {{{"--destination", "a b"}}, std::nullopt},
      {{{"--older-than", "2"}}, std::nullopt},
      {{{"--reason", "a\tb"}}, std::nullopt},
      {{{"--reason", std::string(ipc::kMaxSelectorSize + 1, 'x')}}, std::nullopt},
      {{{"--sender", "a@b"}, {"--sender", "c@d"}}, std::nullopt},
      {{{"--color", "red"}}, std::nullopt},
  };
  for (const auto& row : table) {
    std::string why;
    auto got = parse_selection(row.options, &why);
    std::string name =
        row.options.empty() ? "none" : row.options[0].first + " " + row.options[0].second;
    EXPECT_EQ(got, row.want) << name;
    if (!row.want) {
      EXPECT_FALSE(why.empty()) << name;
    }
  }
}

TEST(DescribeSelection, LinesCountAndExitCode) {
  EXPECT_EQ(describe_selected(QueueOp::Hold, {"Q1", 2, 0}), "Q1: 2 recipient(s) held\n");
  EXPECT_EQ(describe_selected(QueueOp::Flush, {"Q2", 1, 0}),
            "Q2: 1 recipient(s) ready for delivery\n");
  EXPECT_EQ(describe_selected(QueueOp::Cancel, {"Q3", 1, 1}),
            "Q3: 1 recipient(s) bounced, 1 in a delivery attempt\n");
  EXPECT_EQ(describe_selected(QueueOp::Delete, {"Q4", 3, 0}), "Q4: 3 recipient(s) dropped\n");
  EXPECT_EQ(describe_selected(QueueOp::Release, {"Q5", 3, 0}), "Q5: 3 recipient(s) released\n");
  auto out = describe_selection(QueueOp::Flush, {QueueOpStatus::Ok, 2, 3, 0, ""});
  EXPECT_EQ(out.text, "estafette: flush: 2 message(s), 3 recipient(s) ready for delivery\n");
  EXPECT_EQ(out.exit_code, 0);
  out = describe_selection(QueueOp::Hold, {QueueOpStatus::Ok, 2, 3, 0, ""});
  EXPECT_EQ(out.text, "estafette: hold: 2 message(s) on hold, 3 recipient(s)\n");
  out = describe_selection(QueueOp::Delete, {QueueOpStatus::NotFound, 0, 0, 0, ""});
  EXPECT_EQ(out.text, "estafette: delete: no message matches the selection\n");
  EXPECT_TRUE(out.error);
  EXPECT_EQ(out.exit_code, 1);
  out = describe_selection(QueueOp::Release, {QueueOpStatus::Failed, 0, 0, 0, "disk full"});
  EXPECT_EQ(out.exit_code, 75);
}

}  // namespace
}  // namespace estafette::admin
