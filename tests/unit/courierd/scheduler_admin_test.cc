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

// selected(): each criterion alone, then together (AND). Pure, on what mailq shows.
TEST(SchedulerSelect, SelectedTable) {
  QueuedMessage m;
  m.queue_id = "m1";
  m.arrival = 1'700'000'000;  // kT0
  m.sender = "Alice@Origin.TEST";
  m.recipients = {
      {"bob@Dead.test", "127.0.0.1:9", QueuedRecipient::State::Waiting, 2, 0,
       "451 4.4.1 connect to 127.0.0.1:9: Connection refused"},
      {"carol@up.test", "up.test", QueuedRecipient::State::Ready, 0, 0, ""},
  };
  QueuedMessage bounce = m;
  bounce.sender = "";
  const Time now = kT0 + 2h;
  struct Row {
    std::string name;
    Selection s;
    bool want;
    bool want_bounce;
  };
  auto sender = [](std::string a) {
    Selection s;
    s.sender = std::move(a);
    return s;
  };
  auto with = [](auto set) {
    Selection s;
    set(s);
    return s;
  };
  const std::vector<Row> table = {
      {"sender_exact", sender("Alice@Origin.TEST"), true, false},
      {"sender_domain_case", sender("Alice@origin.test"), true, false},
      {"sender_local_case", sender("alice@origin.test"), false, false},
      {"sender_other", sender("bob@origin.test"), false, false},
      {"null_sender", sender(""), false, true},
      {"rcpt_domain", with([](Selection& s) { s.rcpt_domain = "dead.test"; }), true, true},
      {"rcpt_domain_case", with([](Selection& s) { s.rcpt_domain = "DEAD.TEST"; }), true, true},
      {"rcpt_domain_other", with([](Selection& s) { s.rcpt_domain = "test"; }), false, false},
      {"destination_route", with([](Selection& s) { s.destination = "127.0.0.1:9"; }), true, true},
      {"destination_domain", with([](Selection& s) { s.destination = "up.test"; }), true, true},
      {"destination_other", with([](Selection& s) { s.destination = "127.0.0.1"; }), false, false},
      {"older_than_2h", with([](Selection& s) { s.older_than = 2h; }), true, true},
      {"older_than_2h_1s", with([](Selection& s) { s.older_than = 2h + 1s; }), false, false},
      {"reason", with([](Selection& s) { s.reason = "connection REFUSED"; }), true, true},
      {"reason_code", with([](Selection& s) { s.reason = "4.4.1"; }), true, true},
      {"reason_other", with([](Selection& s) { s.reason = "timed out"; }), false, false},
      {"and_all_match", with([](Selection& s) {
         s.sender = "Alice@origin.test";
         s.rcpt_domain = "up.test";
         s.reason = "refused";
         s.older_than = 1h;
       }),
       true, false},
      {"and_one_fails", with([](Selection& s) {
         s.rcpt_domain = "up.test";
         s.reason = "timed out";
       }),
       false, false},
  };
  for (const auto& row : table) {
    EXPECT_EQ(selected(row.s, m, now), row.want) << row.name;
    EXPECT_EQ(selected(row.s, bounce, now), row.want_bounce) << row.name;
  }
}

// select() picks from the live index, by id, and skips a message being removed; the flush of a
// set of messages makes only theirs ready and counts per message.
TEST(SchedulerSelect, SelectAndFlushOfSelectedMessages) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@routed.test", "b@other.test"}), kT0);
  f.scheduler.add(message("m2", {"c@routed.test"}, kT0 + 10min), kT0 + 10min);
  f.scheduler.add(message("m3", {"d@other.test"}, kT0 + 10min), kT0 + 10min);
  for (auto& j : f.drain(kT0 + 10min)) {
    f.scheduler.complete(j.id,
                         all(j, Outcome::TempFail,
                             j.destination == "other.test" ? "451 4.2.1 mailbox busy"
                                                           : "451 4.4.1 Connection refused"),
                         false, kT0 + 10min);
  }
  const Time now = kT0 + 10min + 10ms;
  auto ids = [&](const Selection& s) {
    std::vector<std::string> out;
    for (const auto& m : f.scheduler.select(s, now)) out.push_back(m.queue_id);
    return out;
  };
  Selection by_dest;
  by_dest.destination = "127.0.0.1:9";
  EXPECT_EQ(ids(by_dest), (std::vector<std::string>{"m1", "m2"}));
  Selection busy;
  busy.reason = "busy";
  EXPECT_EQ(ids(busy), (std::vector<std::string>{"m1", "m3"}));
  Selection old;
  old.older_than = 5min;
  EXPECT_EQ(ids(old), (std::vector<std::string>{"m1"}));
  Selection domain;
  domain.rcpt_domain = "other.test";
  domain.older_than = 5min;
  EXPECT_EQ(ids(domain), (std::vector<std::string>{"m1"}));

  auto ready = f.scheduler.flush(std::set<queue::QueueId>{"m1", "m3"}, now);
  EXPECT_EQ(ready, (std::map<queue::QueueId, std::size_t>{{"m1", 2}, {"m3", 1}}));
  auto snap = f.scheduler.snapshot(now);
  for (const auto& m : snap)
    for (const auto& r : m.recipients)
      EXPECT_EQ(r.state, m.queue_id == "m2" ? QueuedRecipient::State::Waiting
                                            : QueuedRecipient::State::Ready)
          << m.queue_id << " " << r.address;

  f.scheduler.cancel("m2", false);  // being removed: no longer offered
  EXPECT_EQ(ids(by_dest), (std::vector<std::string>{"m1"}));
}

}  // namespace
}  // namespace estafette::courierd
