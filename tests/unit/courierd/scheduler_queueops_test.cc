// courierd's Scheduler for estafette hold/release/cancel/delete: held mail gets no attempt and
// does not expire, a hold arriving during an attempt applies when it fails, release makes it
// ready at once; cancel bounces and delete drops every pending recipient, and recipients in
// flight finish as the operation says when their attempt (or its module) comes back.
#include <gtest/gtest.h>

#include <algorithm>

#include "courierd/scheduler.h"
#include "tests/unit/courierd/scheduler_fixture.h"

namespace estafette::courierd {
namespace {

using namespace std::chrono_literals;

struct Fixture : SchedulerFixture {
  Fixture() : SchedulerFixture(fast_limits()) {}
  JobReport finish(const Job& j, Outcome o, Time now, const std::string& reply = "451 later") {
    return scheduler.complete(j.id, all(j, o, reply), false, now);
  }
  static const Job& to(const std::vector<Job>& jobs, const std::string& dest) {
    auto it =
        std::find_if(jobs.begin(), jobs.end(), [&](auto& j) { return j.destination == dest; });
    EXPECT_NE(it, jobs.end()) << dest;
    return *it;
  }
  std::vector<QueuedRecipient::State> states(Time now) {
    std::vector<QueuedRecipient::State> out;
    for (auto& e : scheduler.snapshot(now))
      for (auto& r : e.recipients) out.push_back(r.state);
    return out;
  }
};

TEST(SchedulerQueueOps, HoldStopsAttemptsUntilRelease) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@x.test", "b@y.test"}), kT0);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 2u);
  f.finish(Fixture::to(jobs, "x.test"), Outcome::TempFail, kT0);  // a waits for its retry

  HoldResult held = f.scheduler.hold("m1");
  EXPECT_TRUE(held.found);
  EXPECT_EQ(held.recipients, 1u);  // a
  EXPECT_EQ(held.in_flight, 1u);   // b: held when its attempt fails
  JobReport r = f.finish(Fixture::to(jobs, "y.test"), Outcome::TempFail, kT0);
  ASSERT_EQ(r.deferred.size(), 1u);
  EXPECT_TRUE(r.deferred[0].held);
  EXPECT_FALSE(r.message_finished);

  EXPECT_TRUE(f.drain(kT0 + 60s).empty());  // a's retry timer fires: nothing
  auto snap = f.scheduler.snapshot(kT0 + 60s);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_TRUE(snap[0].held);
  EXPECT_EQ(f.states(kT0), (std::vector<QueuedRecipient::State>{QueuedRecipient::State::Held,
                                                                QueuedRecipient::State::Held}));
  EXPECT_EQ(f.scheduler.message_ids(true), std::vector<queue::QueueId>{"m1"});
  EXPECT_TRUE(f.scheduler.message_ids(false).empty());
  EXPECT_EQ(f.scheduler.flush(FlushScope::All, "", kT0 + 60s), 0u);  // flush leaves it

  HoldResult released = f.scheduler.release("m1", kT0 + 61s);
  EXPECT_TRUE(released.found);
  EXPECT_EQ(released.recipients, 2u);
  auto again = f.drain(kT0 + 61s);
  ASSERT_EQ(again.size(), 2u);  // at once, both
  for (auto& j : again) f.finish(j, Outcome::Delivered, kT0 + 61s);
  EXPECT_FALSE(f.scheduler.contains("m1"));
}

TEST(SchedulerQueueOps, HeldMailDoesNotExpireUntilReleased) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@x.test"}), kT0);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 1u);
  f.scheduler.hold("m1");
  // Its attempt fails after queue_lifetime: held, not bounced.
  JobReport r = f.finish(jobs[0], Outcome::TempFail, kT0 + 2h);
  EXPECT_TRUE(r.bounced.empty());
  ASSERT_EQ(r.deferred.size(), 1u);
  EXPECT_TRUE(f.scheduler.expire_held(kT0 + 3h).empty());
  EXPECT_TRUE(f.drain(kT0 + 3h).empty());
  EXPECT_TRUE(f.scheduler.contains("m1"));
  // Released, it counts from its arrival again: the next temporary failure bounces it.
  f.scheduler.release("m1", kT0 + 3h);
  auto again = f.drain(kT0 + 3h);
  ASSERT_EQ(again.size(), 1u);
  r = f.finish(again[0], Outcome::TempFail, kT0 + 3h);
  ASSERT_EQ(r.bounced.size(), 1u);
  EXPECT_TRUE(r.bounced[0].expired);
}

TEST(SchedulerQueueOps, HoldRecordedInTheQueueIsKeptAtStartUp) {
  Fixture f;
  auto m = message("m1", {"a@x.test", "b@x.test"});
  m.held = true;
  m.done[1] = true;
  EXPECT_EQ(f.scheduler.add(m, kT0), Scheduler::AddResult::Added);
  EXPECT_TRUE(f.drain(kT0).empty());
  EXPECT_EQ(f.scheduler.destination_count(), 0u);  // nothing waits anywhere
  EXPECT_EQ(f.states(kT0), std::vector<QueuedRecipient::State>{QueuedRecipient::State::Held});
  EXPECT_EQ(f.scheduler.release("m1", kT0).recipients, 1u);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].recipients, std::vector<std::string>{"a@x.test"});
}

TEST(SchedulerQueueOps, ReleaseOfAMessageNotHeldChangesNothing) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@x.test"}), kT0);
  HoldResult r = f.scheduler.release("m1", kT0);
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.recipients, 0u);
  EXPECT_EQ(f.drain(kT0).size(), 1u);
}

TEST(SchedulerQueueOps, UnknownIdsAreNotFound) {
  Fixture f;
  EXPECT_FALSE(f.scheduler.hold("nope").found);
  EXPECT_FALSE(f.scheduler.release("nope", kT0).found);
  EXPECT_FALSE(f.scheduler.cancel("nope", true).found);
  EXPECT_FALSE(f.scheduler.cancel("nope", false).found);
}

TEST(SchedulerQueueOps, CancelBouncesPendingAndInFlightFinishesWhenItReturns) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@x.test", "b@y.test", "c@z.test"}), kT0);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 3u);
  f.finish(Fixture::to(jobs, "x.test"), Outcome::TempFail, kT0);  // a waits
  RemovalReport c = f.scheduler.cancel("m1", true);
  ASSERT_TRUE(c.found);
  EXPECT_EQ(c.message.envelope.sender, "sender@origin.test");
  ASSERT_EQ(c.report.bounced.size(), 1u);
  EXPECT_EQ(c.report.bounced[0].recipient, "a@x.test");
  EXPECT_EQ(c.report.bounced[0].reply, kCancelledReply);
  EXPECT_EQ(c.in_flight, 2u);
  EXPECT_FALSE(c.report.message_finished);
  EXPECT_TRUE(f.scheduler.message_ids(false).empty());  // not offered to hold --all
  // A second cancel, or a hold, finds it being removed: nothing more.
  EXPECT_TRUE(f.scheduler.cancel("m1", true).report.bounced.empty());
  EXPECT_EQ(f.scheduler.hold("m1").recipients, 0u);

  // b was delivered meanwhile: it stays delivered. c fails temporarily: bounced as cancelled.
  JobReport rb = f.finish(Fixture::to(jobs, "y.test"), Outcome::Delivered, kT0);
  EXPECT_EQ(rb.delivered, std::vector<std::size_t>{1});
  EXPECT_FALSE(rb.message_finished);
  JobReport rc = f.finish(Fixture::to(jobs, "z.test"), Outcome::TempFail, kT0);
  ASSERT_EQ(rc.bounced.size(), 1u);
  EXPECT_EQ(rc.bounced[0].reply, kCancelledReply);
  EXPECT_TRUE(rc.deferred.empty());
  EXPECT_TRUE(rc.message_finished);
  EXPECT_FALSE(f.scheduler.contains("m1"));
  EXPECT_TRUE(f.drain(kT0 + 60s).empty());  // a's old retry timer finds nothing
}

TEST(SchedulerQueueOps, DeleteDropsEverythingWithoutABounce) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@x.test", "b@y.test"}), kT0);
  f.scheduler.hold("m1");
  RemovalReport d = f.scheduler.cancel("m1", false);
  ASSERT_TRUE(d.found);
  EXPECT_TRUE(d.report.bounced.empty());
  EXPECT_EQ(d.report.dropped, (std::vector<std::size_t>{0, 1}));
  EXPECT_TRUE(d.report.message_finished);
  EXPECT_FALSE(f.scheduler.contains("m1"));
  EXPECT_TRUE(f.drain(kT0).empty());
  EXPECT_TRUE(f.scheduler.snapshot(kT0).empty());
}

TEST(SchedulerQueueOps, ModuleLostDuringADeleteFinishesIt) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@x.test"}), kT0);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 1u);
  RemovalReport d = f.scheduler.cancel("m1", false);
  EXPECT_EQ(d.in_flight, 1u);
  EXPECT_FALSE(d.report.message_finished);
  RemovalReport lost = f.scheduler.requeue(jobs[0].id, kT0);
  ASSERT_TRUE(lost.found);
  EXPECT_EQ(lost.report.dropped, std::vector<std::size_t>{0});
  EXPECT_TRUE(lost.report.message_finished);
  EXPECT_FALSE(f.scheduler.contains("m1"));
}

TEST(SchedulerQueueOps, ModuleLostDuringAHoldKeepsItHeld) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@x.test"}), kT0);
  auto jobs = f.drain(kT0);
  f.scheduler.hold("m1");
  EXPECT_FALSE(f.scheduler.requeue(jobs[0].id, kT0).found);
  EXPECT_TRUE(f.drain(kT0 + 60s).empty());
  EXPECT_EQ(f.states(kT0), std::vector<QueuedRecipient::State>{QueuedRecipient::State::Held});
}

}  // namespace
}  // namespace estafette::courierd
