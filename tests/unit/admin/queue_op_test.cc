// What estafette hold/release/cancel/delete print and exit with for each of courierd's replies.
#include <gtest/gtest.h>

#include <sstream>

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

}  // namespace
}  // namespace estafette::admin
