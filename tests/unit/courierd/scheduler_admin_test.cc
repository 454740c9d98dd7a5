// courierd's Scheduler for the admin: snapshot() (what mailq shows) and flush() (retry now, for
// everything, one message or one domain, releasing host holds).
#include <gtest/gtest.h>

#include <algorithm>

#include "courierd/scheduler.h"
#include "tests/unit/courierd/scheduler_fixture.h"

namespace estafette::courierd {
namespace {

using namespace std::chrono_literals;

struct Fixture : SchedulerFixture {
  Fixture() : SchedulerFixture(fast_limits()) {
    config.routes.exact["routed.test"] = config::HostPort{"127.0.0.1", 9};
  }
  void fail_all(Time now, bool host_failed, const std::string& reply) {
    for (auto& j : drain(now))
      scheduler.complete(j.id, all(j, Outcome::TempFail, reply), host_failed, now);
  }
};

const QueuedMessage& entry(const std::vector<QueuedMessage>& all, const std::string& id) {
  auto it = std::find_if(all.begin(), all.end(), [&](auto& e) { return e.queue_id == id; });
  EXPECT_NE(it, all.end()) << id;
  return *it;
}

TEST(SchedulerAdmin, SnapshotShowsAttemptsNextRetryAndLastError) {
  Fixture f;
  auto m = message("m1", {"a@routed.test", "b@other.test"});
  m.body_size = 321;
  f.scheduler.add(m, kT0);
  for (auto& j : f.drain(kT0)) {
    Outcome o = j.destination == "other.test" ? Outcome::Delivered : Outcome::TempFail;
    f.scheduler.complete(j.id, all(j, o, "451 later"), false, kT0);
  }
  auto snap = f.scheduler.snapshot(kT0);
  ASSERT_EQ(snap.size(), 1u);
  const auto& e = entry(snap, "m1");
  EXPECT_EQ(e.sender, "sender@origin.test");
  EXPECT_EQ(e.size, 321u);
  EXPECT_EQ(e.arrival, 1'700'000'000);
  ASSERT_EQ(e.recipients.size(), 1u);  // the delivered one is not pending
  const auto& r = e.recipients[0];
  EXPECT_EQ(r.address, "a@routed.test");
  EXPECT_EQ(r.destination, "127.0.0.1:9");
  EXPECT_EQ(r.state, QueuedRecipient::State::Waiting);
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(r.last_error, "451 later");
  EXPECT_EQ(r.next_retry_ms, (kT0 + 1000ms).time_since_epoch().count());  // jitter 1.0 at 0.5
}

TEST(SchedulerAdmin, SnapshotOfFreshAndInFlightMail) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@x.test"}), kT0);
  auto snap = f.scheduler.snapshot(kT0);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].recipients[0].state, QueuedRecipient::State::Ready);
  EXPECT_EQ(snap[0].recipients[0].next_retry_ms, 0);
  EXPECT_EQ(snap[0].recipients[0].last_error, "");
  f.drain(kT0);
  snap = f.scheduler.snapshot(kT0);
  EXPECT_EQ(snap[0].recipients[0].state, QueuedRecipient::State::InFlight);
}

TEST(SchedulerAdmin, HeldDestinationShowsItsHoldAsNextRetry) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@dead.test"}), kT0);
  f.fail_all(kT0, true, "421 connect refused");
  auto snap = f.scheduler.snapshot(kT0);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].recipients[0].state, QueuedRecipient::State::Ready);
  EXPECT_EQ(snap[0].recipients[0].next_retry_ms, (kT0 + 2000ms).time_since_epoch().count());
  EXPECT_EQ(snap[0].recipients[0].attempts, 1u);
  EXPECT_EQ(snap[0].recipients[0].last_error, "421 connect refused");
}

struct FlushCase {
  const char* name;
  FlushScope scope;
  std::string target;
  std::size_t ready;             // what flush() reports
  std::vector<std::string> due;  // destinations of the jobs that start right after
};

class SchedulerFlush : public ::testing::TestWithParam<FlushCase> {};

// m1 -> a@one.test, b@two.test; m2 -> c@one.test; m3 -> d@routed.test (host held). All failed
// once, nothing is due at kT0 + 10 ms.
TEST_P(SchedulerFlush, MakesTheScopeReadyNow) {
  const auto& c = GetParam();
  Fixture f;
  f.scheduler.add(message("m1", {"a@one.test", "b@two.test"}), kT0);
  f.scheduler.add(message("m2", {"c@one.test"}), kT0);
  f.scheduler.add(message("m3", {"d@routed.test"}), kT0);
  for (auto& j : f.drain(kT0))
    f.scheduler.complete(j.id, {{Outcome::TempFail, "451 x"}}, j.destination == "127.0.0.1:9", kT0);
  Time now = kT0 + 10ms;
  EXPECT_TRUE(f.drain(now).empty());
  EXPECT_TRUE(f.scheduler.held("esmtp", "127.0.0.1:9", now));
  EXPECT_EQ(f.scheduler.flush(c.scope, c.target, now), c.ready);
  std::vector<std::string> due;
  for (auto& j : f.drain(now)) due.push_back(j.destination);
  std::sort(due.begin(), due.end());
  EXPECT_EQ(due, c.due);
  // Nothing in scope is counted twice by a second flush.
  EXPECT_EQ(f.scheduler.flush(c.scope, c.target, now), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SchedulerFlush,
    ::testing::Values(
        FlushCase{
            "All", FlushScope::All, "", 4, {"127.0.0.1:9", "one.test", "one.test", "two.test"}},
        FlushCase{"Message", FlushScope::Message, "m1", 2, {"one.test", "two.test"}},
        FlushCase{"HeldMessage", FlushScope::Message, "m3", 1, {"127.0.0.1:9"}},
        FlushCase{"Domain", FlushScope::Domain, "one.test", 2, {"one.test", "one.test"}},
        FlushCase{"RoutedDomain", FlushScope::Domain, "routed.test", 1, {"127.0.0.1:9"}},
        FlushCase{"Destination", FlushScope::Domain, "127.0.0.1:9", 1, {"127.0.0.1:9"}},
        FlushCase{"UnknownMessage", FlushScope::Message, "nope", 0, {}},
        FlushCase{"UnknownDomain", FlushScope::Domain, "nope.test", 0, {}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(SchedulerAdmin, FlushedHeldHostIsProbedWithOneJob) {
  Fixture f;
  for (int i = 0; i < 3; ++i)
    f.scheduler.add(message("m" + std::to_string(i), {"a@routed.test"}), kT0);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 3u);
  for (auto& j : jobs) f.scheduler.complete(j.id, {{Outcome::TempFail, "421"}}, true, kT0);
  Time now = kT0 + 10ms;
  EXPECT_EQ(f.scheduler.flush(FlushScope::All, "", now), 3u);
  EXPECT_FALSE(f.scheduler.held("esmtp", "127.0.0.1:9", now));
  EXPECT_EQ(f.drain(now).size(), 1u);  // a probe, not the whole window
}

// Flushing a dead host over and over probes it each time; the hold after a failed probe stays
// what it was (2 s here) instead of doubling per flush. Without flushes it doubles (4 s).
TEST(SchedulerAdmin, FlushedProbeThatFailsDoesNotLengthenTheHold) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@routed.test"}), kT0);
  f.fail_all(kT0, true, "421 connect refused");
  auto hold = [&](Time now) {
    return f.scheduler.snapshot(now)[0].recipients[0].next_retry_ms -
           now.time_since_epoch().count();
  };
  EXPECT_EQ(hold(kT0), 2000);
  Time now = kT0;
  for (int i = 0; i < 6; ++i) {
    now += 100ms;
    EXPECT_EQ(f.scheduler.flush(FlushScope::All, "", now), 1u);
    f.fail_all(now, true, "421 connect refused");
    EXPECT_EQ(hold(now), 2000) << "flush " << i;
  }
  // The hold runs out by itself and the probe fails: that one is a new failed round.
  now += 2000ms;
  f.fail_all(now, true, "421 connect refused");
  EXPECT_EQ(hold(now), 4000);
}

// One recipient counts once, even when it was waiting on a retry timer of a destination that
// another message's failure has put on hold.
TEST(SchedulerAdmin, FlushCountsEachRecipientOnce) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@routed.test"}), kT0);
  for (auto& j : f.drain(kT0))  // the host answered: a retry timer, no hold
    f.scheduler.complete(j.id, all(j, Outcome::TempFail, "451 later"), false, kT0);
  f.scheduler.add(message("m2", {"b@routed.test"}), kT0);
  f.fail_all(kT0, true, "421 connect refused");  // m2: the host is down now
  EXPECT_EQ(f.scheduler.flush(FlushScope::Message, "m1", kT0 + 10ms), 1u);
}

}  // namespace
}  // namespace estafette::courierd
