// courierd's Scheduler: destinations, the MAXDELS/MAXHOST/MAXRCPT limits, round-robin fairness,
// retry schedule and jitter bounds, host backoff, expiry, bounce collection, recovery input.
#include "courierd/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "tests/unit/courierd/scheduler_fixture.h"

namespace estafette::courierd {
namespace {

using namespace std::chrono_literals;

config::Config test_config() {
  config::Config c;
  c.local_domains = {"local.test"};
  c.routes.exact["routed.test"] = config::HostPort{"relay.test", 2525};
  return c;
}

Limits test_limits() {
  Limits l = fast_limits();
  l.max_deliveries = 100;
  l.max_per_host = 10;
  l.initial_per_host = 5;
  l.max_rcpt = 100;
  l.requeue_delay = 500ms;
  return l;
}

struct Fixture : SchedulerFixture {
  explicit Fixture(Limits limits = test_limits(), double random = 0.5)
      : SchedulerFixture(limits, test_config(), random) {}
};

TEST(CourierdScheduler, DestinationForRecipients) {
  auto c = test_config();
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@local.test"),
            (Destination{"local", "local"}));
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@LOCAL.test"),
            (Destination{"local", "local"}));
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@routed.test"),
            (Destination{"esmtp", "relay.test:2525"}));
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@Example.COM"),
            (Destination{"esmtp", "example.com", true}));
  c.local_domains.push_back(".sub.test");  // every subdomain of sub.test, not sub.test itself
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@h1.foo.SUB.test"),
            (Destination{"local", "local"}));
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@sub.test"),
            (Destination{"esmtp", "sub.test", true}));
  // local_transport = lmtp:...: the local mailboxes go to esmtpclient, one destination per
  // LMTP server; program targets stay with the local module.
  c.local_transport = *config::parse_transport("lmtp:unix:/run/dovecot/lmtp");
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@local.test"),
            (Destination{"esmtp", "lmtp:unix:/run/dovecot/lmtp"}));
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@local.test", true),
            (Destination{"local", "local"}));
  c.local_transport = *config::parse_transport("lmtp:inet:[::1]:24");
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@x.sub.test"),
            (Destination{"esmtp", "lmtp:inet:[::1]:24"}));
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@example.com"),
            (Destination{"esmtp", "example.com", true}));
  c.local_transport = {};
  c.routes.smarthost = config::HostPort{"smart.test", 25};
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@example.com"),
            (Destination{"esmtp", "smart.test:25"}));
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@local.test"),
            (Destination{"local", "local"}));
  // A program target goes to the local module whatever its address.
  EXPECT_EQ(destination_for(c, routing::Router(c), "list@example.com", true),
            (Destination{"local", "local"}));
}

TEST(CourierdScheduler, GroupsRecipientsByDestinationAndSplitsAtMaxRcpt) {
  auto limits = test_limits();
  limits.max_rcpt = 2;
  Fixture f(limits);
  ASSERT_EQ(f.scheduler.add(message("m1", {"a@x.test", "b@local.test", "c@x.test", "d@x.test",
                                           "e@x.test", "f@local.test"}),
                            kT0),
            Scheduler::AddResult::Added);
  auto jobs = f.drain(kT0);
  std::map<std::string, std::vector<std::size_t>> sizes;
  std::set<std::size_t> seen;
  for (auto& j : jobs) {
    EXPECT_EQ(j.queue_id, "m1");
    EXPECT_LE(j.recipients.size(), 2u);
    EXPECT_EQ(j.recipients.size(), j.rcpt_indexes.size());
    sizes[j.module + "/" + j.destination].push_back(j.recipients.size());
    for (auto i : j.rcpt_indexes) EXPECT_TRUE(seen.insert(i).second);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(sizes["esmtp/x.test"], (std::vector<std::size_t>{2, 2}));
  EXPECT_EQ(sizes["local/local"], (std::vector<std::size_t>{2}));
  EXPECT_EQ(f.scheduler.in_flight(), 3u);
}

TEST(CourierdScheduler, MaxHostLimitsJobsPerDestination) {
  auto limits = test_limits();
  limits.max_per_host = 2;
  Fixture f(limits);
  for (int i = 0; i < 5; ++i)
    f.scheduler.add(message("m" + std::to_string(i), {"a@busy.test"}), kT0);
  f.scheduler.add(message("other", {"a@other.test"}), kT0);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(f.scheduler.in_flight("esmtp", "busy.test"), 2u);
  EXPECT_EQ(f.scheduler.in_flight("esmtp", "other.test"), 1u);
  // A finished job frees one slot for busy.test.
  for (auto& j : jobs) {
    if (j.destination != "busy.test") continue;
    auto r = f.scheduler.complete(j.id, all(j, Outcome::Delivered), false, kT0);
    EXPECT_TRUE(r.message_finished);
    break;
  }
  auto more = f.drain(kT0);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].destination, "busy.test");
  EXPECT_EQ(f.scheduler.in_flight("esmtp", "busy.test"), 2u);
}

TEST(CourierdScheduler, MaxDelsLimitsJobsInTotal) {
  auto limits = test_limits();
  limits.max_deliveries = 3;
  Fixture f(limits);
  for (int i = 0; i < 6; ++i)
    f.scheduler.add(message("m" + std::to_string(i), {"a@d" + std::to_string(i) + ".test"}), kT0);
  auto jobs = f.drain(kT0);
  EXPECT_EQ(jobs.size(), 3u);
  EXPECT_EQ(f.scheduler.in_flight(), 3u);
  f.scheduler.complete(jobs[0].id, all(jobs[0], Outcome::Delivered), false, kT0);
  EXPECT_EQ(f.drain(kT0).size(), 1u);
  EXPECT_EQ(f.scheduler.in_flight(), 3u);
}

TEST(CourierdScheduler, RoundRobinServesEveryReadyDestination) {
  auto limits = test_limits();
  limits.max_per_host = 50;
  limits.max_deliveries = 50;
  Fixture f(limits);
  for (int i = 0; i < 40; ++i)
    f.scheduler.add(message("busy" + std::to_string(i), {"u@busy.test"}), kT0);
  f.scheduler.add(message("a", {"u@a.test"}), kT0);
  f.scheduler.add(message("b", {"u@b.test"}), kT0);
  std::set<std::string> first;
  for (int i = 0; i < 3; ++i) {
    auto j = f.scheduler.next_job(kT0);
    ASSERT_TRUE(j);
    first.insert(j->destination);
  }
  EXPECT_EQ(first, (std::set<std::string>{"busy.test", "a.test", "b.test"}));
}

TEST(CourierdScheduler, RetryDelayDoublesUpToTheMaximum) {
  Fixture f;
  EXPECT_EQ(f.scheduler.retry_delay(1), 1000ms);
  EXPECT_EQ(f.scheduler.retry_delay(2), 2000ms);
  EXPECT_EQ(f.scheduler.retry_delay(3), 4000ms);
  EXPECT_EQ(f.scheduler.retry_delay(4), 8000ms);
  EXPECT_EQ(f.scheduler.retry_delay(5), 10000ms);
  EXPECT_EQ(f.scheduler.retry_delay(200), 10000ms);
}

TEST(CourierdScheduler, TempFailRetriesWithJitterWithinTwentyPercent) {
  for (double random : {0.0, 0.5, 0.999999}) {
    Fixture f(test_limits(), random);
    f.scheduler.add(message("m", {"a@x.test"}), kT0);
    Time now = kT0;
    for (unsigned attempt = 1; attempt <= 5; ++attempt) {
      auto j = f.scheduler.next_job(now);
      ASSERT_TRUE(j) << "attempt " << attempt;
      auto r = f.scheduler.complete(j->id, all(*j, Outcome::TempFail, "451 4.4.1 try later"), false,
                                    now);
      ASSERT_EQ(r.deferred.size(), 1u);
      EXPECT_FALSE(r.message_finished);
      auto base = f.scheduler.retry_delay(attempt);
      auto delay = r.deferred[0].retry_at - now;
      EXPECT_GE(delay, base * 8 / 10);
      EXPECT_LE(delay, base * 12 / 10);
      if (random == 0.0) {
        EXPECT_EQ(delay, base * 8 / 10);
      }
      // Nothing to do until the retry is due; the wakeup says when.
      EXPECT_FALSE(f.scheduler.next_job(r.deferred[0].retry_at - 1ms));
      ASSERT_TRUE(f.scheduler.next_wakeup());
      EXPECT_EQ(*f.scheduler.next_wakeup(), r.deferred[0].retry_at);
      now = r.deferred[0].retry_at;
    }
  }
}

TEST(CourierdScheduler, HostFailureHoldsTheDestinationWithExponentialBackoff) {
  Fixture f;
  f.scheduler.add(message("m1", {"a@down.test"}), kT0);
  f.scheduler.add(message("m2", {"b@down.test"}), kT0);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 2u);
  auto r = f.scheduler.complete(jobs[0].id, all(jobs[0], Outcome::TempFail, "connect failed"), true,
                                kT0);
  EXPECT_EQ(f.scheduler.destination_count(), 1u);
  ASSERT_EQ(r.deferred.size(), 1u);
  EXPECT_EQ(r.deferred[0].retry_at, kT0 + 2000ms);
  EXPECT_TRUE(f.scheduler.held("esmtp", "down.test", kT0));
  // The second job, in flight when the host went down, fails during the hold: same outage, the
  // hold stays as it is.
  Time t1 = kT0 + 100ms;
  r = f.scheduler.complete(jobs[1].id, all(jobs[1], Outcome::TempFail, "connect failed"), true, t1);
  EXPECT_EQ(r.deferred[0].retry_at, kT0 + 2000ms);
  // A new message for the held host waits; another host is served.
  f.scheduler.add(message("m3", {"c@down.test"}), t1);
  f.scheduler.add(message("m4", {"d@up.test"}), t1);
  auto during = f.drain(t1 + 1000ms);
  ASSERT_EQ(during.size(), 1u);
  EXPECT_EQ(during[0].destination, "up.test");
  EXPECT_FALSE(f.drain(kT0 + 1999ms).size());
  // When the hold ends, one job probes the host; its failure doubles the backoff.
  Time t2 = kT0 + 2000ms;
  auto probe = f.drain(t2);
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_EQ(probe[0].destination, "down.test");
  r = f.scheduler.complete(probe[0].id, all(probe[0], Outcome::TempFail, "x"), true, t2);
  EXPECT_EQ(r.deferred[0].retry_at, t2 + 4000ms);
  EXPECT_FALSE(f.drain(t2 + 3999ms).size());
  // The next probe gets through: the other two messages go at once.
  Time t3 = t2 + 4000ms;
  probe = f.drain(t3);
  ASSERT_EQ(probe.size(), 1u);
  f.scheduler.complete(probe[0].id, all(probe[0], Outcome::Delivered), false, t3);
  auto after = f.drain(t3);
  EXPECT_EQ(after.size(), 2u);
  for (auto& j : after) EXPECT_EQ(j.destination, "down.test");
  // One success reset the backoff: the next host failure holds for host_backoff again.
  r = f.scheduler.complete(after[0].id, all(after[0], Outcome::TempFail, "x"), true, t3 + 200ms);
  EXPECT_EQ(r.deferred[0].retry_at, t3 + 200ms + 2000ms);
  // Once every job is done and the hold is over, nothing about the host is kept.
  f.scheduler.complete(after[1].id, all(after[1], Outcome::Delivered), false, t3 + 300ms);
  auto last = f.drain(t3 + 2200ms);
  ASSERT_EQ(last.size(), 1u);
  f.scheduler.complete(last[0].id, all(last[0], Outcome::Delivered), false, t3 + 2300ms);
  for (auto& j : during) f.scheduler.complete(j.id, all(j, Outcome::Delivered), false, t1);
  EXPECT_FALSE(f.scheduler.next_job(t3 + 3000ms));
  EXPECT_EQ(f.scheduler.message_count(), 0u);
  EXPECT_EQ(f.scheduler.destination_count(), 0u);
  EXPECT_FALSE(f.scheduler.next_wakeup());
}

// Mail queued behind a dead host is not attempted (only a probe is), so it must expire on its own.
TEST(CourierdScheduler, ExpiredMailBehindADeadHostBouncesWithoutAnAttempt) {
  Fixture f;
  const Time old = kT0 - 3600s;  // arrival: expires at kT0
  f.scheduler.add(message("m1", {"a@down.test"}, old), kT0 - 10s);
  auto probe = f.drain(kT0 - 10s);
  ASSERT_EQ(probe.size(), 1u);
  f.scheduler.complete(probe[0].id, all(probe[0], Outcome::TempFail, "refused"), true, kT0 - 10s);
  f.scheduler.add(message("m2", {"b@down.test", "c@up.test"}, old), kT0 - 9s);
  f.scheduler.add(message("m3", {"d@down.test"}, kT0 - 60s), kT0 - 9s);  // expires later
  f.scheduler.add(message("m4", {"e@up.test"}, old), kT0 - 9s);          // its host is up: tried
  auto up = f.drain(kT0 - 9s);
  ASSERT_EQ(up.size(), 2u);
  EXPECT_TRUE(f.scheduler.expire_held(kT0 - 1s).empty());  // nothing has expired yet

  auto expired = f.scheduler.expire_held(kT0 + 1s);
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_EQ(expired[0].message.envelope.id, "m1");
  ASSERT_EQ(expired[0].report.bounced.size(), 1u);
  EXPECT_EQ(expired[0].report.bounced[0].recipient, "a@down.test");
  EXPECT_TRUE(expired[0].report.bounced[0].expired);
  EXPECT_TRUE(expired[0].report.message_finished);
  EXPECT_EQ(expired[1].message.envelope.id, "m2");
  ASSERT_EQ(expired[1].report.bounced.size(), 1u);
  EXPECT_EQ(expired[1].report.bounced[0].rcpt_index, 0u);
  EXPECT_FALSE(expired[1].report.message_finished);  // c@up.test is in flight
  EXPECT_FALSE(f.scheduler.message("m1"));
  EXPECT_TRUE(f.scheduler.message("m2"));
  EXPECT_TRUE(f.scheduler.message("m3"));
  EXPECT_TRUE(f.scheduler.expire_held(kT0 + 2s).empty());

  // m3 expires in its turn; the up host's jobs finish as usual.
  expired = f.scheduler.expire_held(kT0 + 3541s);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].message.envelope.id, "m3");
  EXPECT_TRUE(expired[0].report.message_finished);
  for (auto& j : up) {
    auto r = f.scheduler.complete(j.id, all(j, Outcome::Delivered), false, kT0 + 3542s);
    EXPECT_TRUE(r.message_finished);
  }
  EXPECT_EQ(f.scheduler.message_count(), 0u);
}

// A destination that is down: whatever is queued for it, each round costs one connection (a
// probe) and one timer; the jobs in flight when it went down count as one failure; a probe that
// reaches the host (delivered, or deferred by a live host) opens its window again, from 2.
struct DeadHostCase {
  const char* name;
  std::size_t max_per_host;
  std::size_t queued;               // messages for down.test
  std::string probes;               // what each probe gets: h host failure, d delivered, t 451
  std::vector<Millis> holds;        // the hold after the outage, then after each failed probe
  std::size_t jobs_after_recovery;  // started at once after the last probe
};

const DeadHostCase kDeadHostCases[] = {
    {"one connection at a time", 1, 5, "hhd", {2s, 4s, 8s}, 1},
    {"five in flight fail as one outage", 10, 100, "hhhhd", {2s, 4s, 8s, 10s, 10s}, 2},
    {"a deferring host is up", 10, 100, "ht", {2s, 4s}, 2},
    {"a large queue costs one probe per round", 10, 100000, "hhhd", {2s, 4s, 8s, 10s}, 2},
};

TEST(CourierdScheduler, DeadHostIsProbedWithOneJobPerRound) {
  for (const auto& c : kDeadHostCases) {
    SCOPED_TRACE(c.name);
    auto limits = test_limits();
    limits.max_per_host = c.max_per_host;
    Fixture f(limits);
    for (std::size_t i = 0; i < c.queued; ++i)
      f.scheduler.add(message("m" + std::to_string(i), {"u@down.test"}), kT0);
    // The outage: every job in flight fails, 10 ms apart.
    auto jobs = f.drain(kT0);
    ASSERT_EQ(jobs.size(), std::min({c.queued, c.max_per_host, std::size_t{5}}));
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      Time at = kT0 + Millis(10 * i);
      auto r =
          f.scheduler.complete(jobs[i].id, all(jobs[i], Outcome::TempFail, "refused"), true, at);
      ASSERT_EQ(r.deferred.size(), 1u);
      EXPECT_EQ(r.deferred[0].retry_at, kT0 + c.holds[0]) << "job " << i;
    }
    Time hold_end = kT0 + c.holds[0];
    for (std::size_t round = 0; round < c.probes.size(); ++round) {
      SCOPED_TRACE("probe " + std::to_string(round));
      // Nothing before the hold ends, and nothing else wakes the scheduler meanwhile.
      EXPECT_FALSE(f.scheduler.next_job(hold_end - 1ms));
      ASSERT_TRUE(f.scheduler.next_wakeup());
      EXPECT_EQ(*f.scheduler.next_wakeup(), hold_end);
      auto probe = f.drain(hold_end);
      ASSERT_EQ(probe.size(), 1u);
      Time at = hold_end + 100ms;
      switch (c.probes[round]) {
        case 'h': {
          auto r = f.scheduler.complete(probe[0].id, all(probe[0], Outcome::TempFail, "refused"),
                                        true, at);
          ASSERT_EQ(r.deferred.size(), 1u);
          ASSERT_LT(round + 1, c.holds.size());
          hold_end = at + c.holds[round + 1];
          EXPECT_EQ(r.deferred[0].retry_at, hold_end);
          break;
        }
        case 'd':
          f.scheduler.complete(probe[0].id, all(probe[0], Outcome::Delivered), false, at);
          break;
        case 't':
          f.scheduler.complete(probe[0].id, all(probe[0], Outcome::TempFail, "451 later"), false,
                               at);
          break;
      }
    }
    EXPECT_EQ(f.drain(hold_end + 100ms).size(), c.jobs_after_recovery);
  }
}

// The concurrency window: it starts at initial_per_host, grows by one per job that reached the
// host (delivered or deferred), stops at MAXHOST, and a host failure closes it. Each step
// completes the oldest job in flight (d delivered, t deferred by the host, h host failure) and
// starts what the window allows.
struct WindowCase {
  const char* name;
  std::size_t max_per_host;
  std::size_t initial;
  std::string steps;
  std::vector<std::size_t> in_flight;  // at the start, then after each step
};

const WindowCase kWindowCases[] = {
    {"starts at the initial window", 10, 3, "", {3}},
    {"grows by one per delivery", 10, 3, "ddd", {3, 4, 5, 6}},
    {"a deferral is an answer too", 10, 3, "tt", {3, 4, 5}},
    {"stops at MAXHOST", 4, 3, "ddd", {3, 4, 4, 4}},
    {"an initial window above MAXHOST is MAXHOST", 2, 5, "d", {2, 2}},
    {"a host failure closes it", 10, 3, "dh", {3, 4, 3}},
};

TEST(CourierdScheduler, ConcurrencyWindowGrowsPerAnswerUpToMaxHost) {
  for (const auto& c : kWindowCases) {
    SCOPED_TRACE(c.name);
    auto limits = test_limits();
    limits.max_per_host = c.max_per_host;
    limits.initial_per_host = c.initial;
    Fixture f(limits);
    for (int i = 0; i < 100; ++i)
      f.scheduler.add(message("m" + std::to_string(i), {"u@x.test"}), kT0);
    std::deque<Job> running;
    for (auto& j : f.drain(kT0)) running.push_back(j);
    ASSERT_EQ(c.in_flight.size(), c.steps.size() + 1);
    EXPECT_EQ(f.scheduler.in_flight("esmtp", "x.test"), c.in_flight[0]);
    for (std::size_t n = 0; n < c.steps.size(); ++n) {
      SCOPED_TRACE("step " + std::to_string(n));
      Job j = running.front();
      running.pop_front();
      Time at = kT0 + Millis(n + 1);
      switch (c.steps[n]) {
        case 'd':
          f.scheduler.complete(j.id, all(j, Outcome::Delivered), false, at);
          break;
        case 't':
          f.scheduler.complete(j.id, all(j, Outcome::TempFail, "451 later"), false, at);
          break;
        case 'h':
          f.scheduler.complete(j.id, all(j, Outcome::TempFail, "refused"), true, at);
          break;
      }
      for (auto& more : f.drain(at)) running.push_back(more);
      EXPECT_EQ(f.scheduler.in_flight("esmtp", "x.test"), c.in_flight[n + 1]);
    }
  }
}

// A host that takes connections but never answers (firewalled, overloaded) keeps its jobs until
// the module's timeouts: it must not take the delivery slots (MAXDELS) of the other destinations,
// however much is queued for it.
TEST(CourierdScheduler, AHostThatNeverAnswersKeepsOnlyItsInitialWindow) {
  auto limits = test_limits();
  limits.max_deliveries = 20;
  limits.max_per_host = 20;
  limits.initial_per_host = 5;
  Fixture f(limits);
  for (int i = 0; i < 1000; ++i)
    f.scheduler.add(message("dead" + std::to_string(i), {"u@silent.test"}), kT0);
  for (int i = 0; i < 100; ++i)
    f.scheduler.add(message("live" + std::to_string(i), {"u@up.test"}), kT0);
  std::size_t delivered = 0;
  Time now = kT0;
  for (int round = 0; round < 50; ++round) {
    for (auto& j : f.drain(now)) {
      if (j.destination != "up.test") continue;  // silent.test never answers
      f.scheduler.complete(j.id, all(j, Outcome::Delivered), false, now);
      ++delivered;
    }
    now += 1ms;
  }
  EXPECT_EQ(delivered, 100u);
  EXPECT_EQ(f.scheduler.in_flight("esmtp", "silent.test"), 5u);
}

TEST(CourierdScheduler, TempFailurePastLifetimeBounces) {
  Fixture f;
  Time arrival = kT0 - 3600s;
  f.scheduler.add(message("old", {"a@x.test", "b@x.test"}, arrival), kT0);
  auto j = f.scheduler.next_job(kT0);
  ASSERT_TRUE(j);
  auto r = f.scheduler.complete(
      j->id, {{Outcome::TempFail, "451 4.4.1 no answer"}, {Outcome::Delivered, "250 ok"}}, false,
      kT0);
  ASSERT_EQ(r.bounced.size(), 1u);
  EXPECT_TRUE(r.bounced[0].expired);
  EXPECT_EQ(r.bounced[0].recipient, "a@x.test");
  EXPECT_EQ(r.bounced[0].reply, "451 4.4.1 no answer");
  EXPECT_EQ(r.delivered, (std::vector<std::size_t>{1}));
  EXPECT_TRUE(r.deferred.empty());
  EXPECT_TRUE(r.message_finished);
  EXPECT_EQ(f.scheduler.message_count(), 0u);
}

TEST(CourierdScheduler, CollectsBouncesAndFinishesWhenEveryRecipientIsDone) {
  Fixture f;
  f.scheduler.add(message("m", {"a@x.test", "b@x.test", "c@x.test"}), kT0);
  auto j = f.scheduler.next_job(kT0);
  ASSERT_TRUE(j);
  auto r = f.scheduler.complete(j->id,
                                {{Outcome::Delivered, "250 ok"},
                                 {Outcome::PermFail, "550 5.1.1 unknown user"},
                                 {Outcome::TempFail, "452 4.2.2 full"}},
                                false, kT0);
  EXPECT_EQ(r.delivered, (std::vector<std::size_t>{0}));
  ASSERT_EQ(r.bounced.size(), 1u);
  EXPECT_EQ(r.bounced[0].rcpt_index, 1u);
  EXPECT_EQ(r.bounced[0].reply, "550 5.1.1 unknown user");
  EXPECT_FALSE(r.bounced[0].expired);
  ASSERT_EQ(r.deferred.size(), 1u);
  EXPECT_FALSE(r.message_finished);
  auto j2 = f.scheduler.next_job(r.deferred[0].retry_at);
  ASSERT_TRUE(j2);
  EXPECT_EQ(j2->recipients, (std::vector<std::string>{"c@x.test"}));
  EXPECT_EQ(j2->rcpt_indexes, (std::vector<std::size_t>{2}));
  r = f.scheduler.complete(j2->id, all(*j2, Outcome::PermFail, "550 no"), false,
                           r.deferred[0].retry_at);
  EXPECT_EQ(r.bounced.size(), 1u);
  EXPECT_TRUE(r.message_finished);
  EXPECT_FALSE(f.scheduler.contains("m"));
}

TEST(CourierdScheduler, MissingResultsCountAsTemporaryFailures) {
  Fixture f;
  f.scheduler.add(message("m", {"a@x.test", "b@x.test"}), kT0);
  auto j = f.scheduler.next_job(kT0);
  auto r = f.scheduler.complete(j->id, {{Outcome::Delivered, "250 ok"}}, false, kT0);
  EXPECT_EQ(r.delivered.size(), 1u);
  EXPECT_EQ(r.deferred.size(), 1u);
}

TEST(CourierdScheduler, RequeueAfterModuleLossDoesNotCountAnAttempt) {
  Fixture f(test_limits(), 0.0);
  f.scheduler.add(message("m", {"a@x.test"}), kT0);
  auto j = f.scheduler.next_job(kT0);
  f.scheduler.requeue(j->id, kT0);
  EXPECT_EQ(f.scheduler.in_flight(), 0u);
  EXPECT_FALSE(f.scheduler.next_job(kT0 + 499ms));
  auto j2 = f.scheduler.next_job(kT0 + 500ms);
  ASSERT_TRUE(j2);
  auto r = f.scheduler.complete(j2->id, all(*j2, Outcome::TempFail, "x"), false, kT0 + 500ms);
  EXPECT_EQ(r.deferred[0].retry_at, kT0 + 500ms + 800ms);  // first attempt: base * 0.8
  EXPECT_FALSE(f.scheduler.held("esmtp", "x.test", kT0 + 500ms));
}

TEST(CourierdScheduler, RecoveryInputSkipsDoneRecipientsAndDuplicates) {
  Fixture f;
  auto m = message("m", {"a@x.test", "b@x.test", "c@x.test"});
  m.done = {true, false, true};
  EXPECT_EQ(f.scheduler.add(m, kT0), Scheduler::AddResult::Added);
  EXPECT_EQ(f.scheduler.add(m, kT0), Scheduler::AddResult::Duplicate);
  auto j = f.scheduler.next_job(kT0);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->recipients, (std::vector<std::string>{"b@x.test"}));
  auto finished = message("f", {"a@x.test"});
  finished.done = {true};
  EXPECT_EQ(f.scheduler.add(finished, kT0), Scheduler::AddResult::NothingPending);
  EXPECT_FALSE(f.scheduler.contains("f"));
}

TEST(CourierdScheduler, PausedModuleGetsNoJobsUntilResumed) {
  Fixture f;
  f.scheduler.set_module_paused("local", true, kT0);
  f.scheduler.add(message("m1", {"a@local.test"}), kT0);
  f.scheduler.add(message("m2", {"a@x.test"}), kT0);
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].module, "esmtp");
  f.scheduler.set_module_paused("local", false, kT0);
  jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].module, "local");
  EXPECT_EQ(jobs[0].destination, "local");
}

// What the scheduler keeps per queued message is what delivery, retries and bounces need: the
// SMTP client's address and HELO, and the done flags once read, are dropped (memory per message).
TEST(CourierdScheduler, IndexedMessagesKeepOnlyWhatDeliveryNeeds) {
  static_assert(sizeof(Scheduler::Message::Rcpt) <= 8);
  Fixture f;
  auto m = message("m", {"a@x.test", "b@x.test"});
  m.envelope.client_ip = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff";
  m.envelope.helo = "a-rather-long-helo-name.client.example.org";
  m.done = {true, false};
  ASSERT_EQ(f.scheduler.add(m, kT0), Scheduler::AddResult::Added);
  const auto* kept = f.scheduler.message("m");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->stored.envelope.id, "m");
  EXPECT_EQ(kept->stored.envelope.sender, m.envelope.sender);
  EXPECT_EQ(kept->stored.envelope.recipients, m.envelope.recipients);
  EXPECT_EQ(kept->stored.envelope.arrival, m.envelope.arrival);
  EXPECT_EQ(kept->stored.path, m.path);
  EXPECT_EQ(kept->stored.body_size, m.body_size);
  EXPECT_EQ(kept->stored.envelope.client_ip.capacity(), std::string().capacity());
  EXPECT_EQ(kept->stored.envelope.helo.capacity(), std::string().capacity());
  EXPECT_EQ(kept->stored.done.capacity(), 0u);
  EXPECT_EQ(kept->pending, 1u);  // the done flags were read first
}

TEST(CourierdScheduler, LargeQueueDispatchStaysCheap) {
  // 20000 queued messages, MAXDELS 10: every dispatch/complete cycle touches only its job.
  auto limits = test_limits();
  limits.max_deliveries = 10;
  Fixture f(limits);
  for (int i = 0; i < 20000; ++i)
    f.scheduler.add(message("m" + std::to_string(i), {"u@d" + std::to_string(i % 50) + ".test"}),
                    kT0);
  std::size_t done = 0;
  auto start = std::chrono::steady_clock::now();
  while (auto j = f.scheduler.next_job(kT0)) {
    auto r = f.scheduler.complete(j->id, all(*j, Outcome::Delivered), false, kT0);
    done += r.message_finished;
  }
  EXPECT_EQ(done, 20000u);
  EXPECT_EQ(f.scheduler.message_count(), 0u);
  EXPECT_EQ(f.scheduler.destination_count(), 0u);  // idle destinations are forgotten
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace estafette::courierd
