// The IPC side of courierd's scheduler (admin_service.h): the scheduler's snapshot converted to
// the wire's QueueEntry field by field and state by state, and the wire's flush scope to the
// scheduler's, and the wire's selection to the scheduler's.
#include "courierd/admin_service.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace estafette::courierd {
namespace {

TEST(AdminServiceConversion, QueuedMessageToQueueEntry) {
  QueuedMessage m{"q1", 1'700'000'000, 321, "sender@origin.test", true, "virus", {}};
  m.recipients.push_back(
      {"a@x.test", "mx:mx.x.test", QueuedRecipient::State::Waiting, 2, 1'700'000'060'000, "451 x"});
  m.recipients.push_back({"b@y.test", "local", QueuedRecipient::State::Held, 0, 0, ""});
  ipc::QueueEntry e = to_ipc(m);
  ipc::QueueEntry want{"q1", 1'700'000'000, 321, "sender@origin.test", true, "virus", {}};
  want.recipients.push_back(
      {"a@x.test", "mx:mx.x.test", ipc::RcptState::Waiting, 2, 1'700'000'060'000, "451 x"});
  want.recipients.push_back({"b@y.test", "local", ipc::RcptState::Held, 0, 0, ""});
  EXPECT_EQ(e, want);
}

TEST(AdminServiceConversion, EveryRecipientState) {
  const std::vector<std::pair<QueuedRecipient::State, ipc::RcptState>> table = {
      {QueuedRecipient::State::Waiting, ipc::RcptState::Waiting},
      {QueuedRecipient::State::Ready, ipc::RcptState::Ready},
      {QueuedRecipient::State::InFlight, ipc::RcptState::InFlight},
      {QueuedRecipient::State::Held, ipc::RcptState::Held},
  };
  for (const auto& [ours, wire] : table) {
    QueuedRecipient r;
    r.state = ours;
    EXPECT_EQ(to_ipc(r).state, wire);
  }
}

TEST(AdminServiceConversion, FlushScopeFromTheWire) {
  EXPECT_EQ(from_ipc(ipc::FlushScope::All), FlushScope::All);
  EXPECT_EQ(from_ipc(ipc::FlushScope::Message), FlushScope::Message);
  EXPECT_EQ(from_ipc(ipc::FlushScope::Domain), FlushScope::Domain);
}

// The wire's selection: by_sender says whether the sender counts ("" is then the null sender);
// 0 s is any age.
TEST(AdminServiceConversion, SelectionFromTheWire) {
  ipc::QueueSelection wire{true, "", "dead.test", "127.0.0.1:9", 7200, "refused"};
  Selection s = from_ipc(wire);
  ASSERT_TRUE(s.sender);
  EXPECT_EQ(*s.sender, "");
  EXPECT_EQ(s.rcpt_domain, "dead.test");
  EXPECT_EQ(s.destination, "127.0.0.1:9");
  EXPECT_EQ(s.older_than, std::chrono::hours(2));
  EXPECT_EQ(s.reason, "refused");
  s = from_ipc(ipc::QueueSelection{false, "", "x.test", "", 0, ""});
  EXPECT_FALSE(s.sender);
  EXPECT_EQ(s.older_than, Millis(0));
}

// estafette-metrics' queue shape: recipients and the oldest arrival per destination, the
// biggest destinations first, the rest as "other".
TEST(AdminServiceQueueShape, PerDestinationBoundedWithOther) {
  auto rcpt = [](std::string destination) {
    return QueuedRecipient{
        "r@x.test", std::move(destination), QueuedRecipient::State::Waiting, 1, 0, ""};
  };
  std::vector<QueuedMessage> messages = {
      {"q1", 1000, 10, "", false, "", {rcpt("dead.test"), rcpt("dead.test"), rcpt("local")}},
      {"q2", 900, 10, "", false, "", {rcpt("dead.test"), rcpt("b.test")}},
      {"q3", 1100, 10, "", true, "", {rcpt("c.test")}},
      {"q4", 800, 10, "", false, "", {}},  // nothing pending: counts nowhere
  };
  ipc::QueueShapeReply all = queue_shape(messages, 10);
  const std::vector<ipc::QueueShapeRow> want = {
      {"dead.test", 3, 900}, {"b.test", 1, 900}, {"c.test", 1, 1100}, {"local", 1, 1000}};
  EXPECT_EQ(all.rows, want);
  EXPECT_EQ(all.other_recipients, 0u);
  ipc::QueueShapeReply bounded = queue_shape(messages, 2);
  ASSERT_EQ(bounded.rows.size(), 2u);
  EXPECT_EQ(bounded.rows[0].destination, "dead.test");
  EXPECT_EQ(bounded.rows[1].destination, "b.test");
  EXPECT_EQ(bounded.other_recipients, 2u);
  EXPECT_EQ(bounded.other_oldest, 1000);
  EXPECT_TRUE(queue_shape({}, 10).rows.empty());
}

}  // namespace
}  // namespace estafette::courierd
