// courierd's Scheduler with MX sites and per-destination limits: domains routed to one site
// share MAXHOST, the window and the host backoff; a site's jobs hold one domain; the
// destinations file's concurrency, max_rcpt and rate (timers on a fake clock, never deferrals).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "courierd/scheduler.h"
#include "tests/unit/courierd/scheduler_fixture.h"

namespace estafette::courierd {
namespace {

using namespace std::chrono_literals;

const std::string kSite = "mx:mx.site.test";

// MAXHOST 2, the rest as the defaults (MAXDELS and MAXRCPT 100).
Limits test_limits() {
  Limits l = fast_limits();
  l.max_per_host = 2;
  l.initial_per_host = 2;
  return l;
}

struct SiteFixture : SchedulerFixture {
  explicit SiteFixture(Limits limits = test_limits()) : SchedulerFixture(limits) {
    // a.test, b.test and c.test share one MX host; other.test is on its own.
    router = [this](const std::string& rcpt, bool program) {
      Destination d = destination_for(config, routing::Router(config), rcpt, program);
      if (d.mx_lookup && d.key != "other.test") {
        d.key = kSite;
        d.limits = site_limits;
      }
      return d;
    };
  }
  Scheduler::AddResult add(const std::string& id, std::vector<std::string> rcpts) {
    return scheduler.add(message(id, std::move(rcpts)), kT0, router);
  }
  config::DestinationLimits site_limits;
  Scheduler::RouteFn router;
};

TEST(SchedulerSites, DomainsOfOneSiteShareMaxHost) {
  SiteFixture f;
  f.add("m1", {"u@a.test"});
  f.add("m2", {"u@b.test"});
  f.add("m3", {"u@c.test"});
  f.add("m4", {"u@a.test"});
  f.add("m5", {"u@other.test"});
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 3u);  // two for the site (MAXHOST 2), one for other.test
  EXPECT_EQ(f.scheduler.in_flight("esmtp", kSite), 2u);
  EXPECT_EQ(f.scheduler.in_flight("esmtp", "other.test"), 1u);
  EXPECT_EQ(f.scheduler.in_flight("esmtp", "a.test"), 0u);
  // Each finished job lets exactly one more of the site's messages go, whatever its domain.
  std::set<std::string> seen;
  for (auto& j : jobs)
    if (j.destination == kSite) seen.insert(j.queue_id);
  for (int round = 0; round < 2; ++round) {
    auto done =
        std::find_if(jobs.begin(), jobs.end(), [](const Job& j) { return j.destination == kSite; });
    ASSERT_NE(done, jobs.end());
    f.scheduler.complete(done->id, all(*done, Outcome::Delivered), false, kT0);
    jobs.erase(done);
    auto more = f.drain(kT0);
    ASSERT_EQ(more.size(), 1u);
    EXPECT_EQ(more[0].destination, kSite);
    seen.insert(more[0].queue_id);
    jobs.push_back(more[0]);
    EXPECT_EQ(f.scheduler.in_flight("esmtp", kSite), 2u);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"m1", "m2", "m3", "m4"}));
}

TEST(SchedulerSites, ASiteJobHoldsOneDomain) {
  SiteFixture f;
  f.add("m1", {"x@a.test", "y@b.test", "z@a.test", "w@b.test", "v@c.test"});
  auto jobs = f.drain(kT0);
  // MAXHOST 2: two jobs now, the third after one completes.
  ASSERT_EQ(jobs.size(), 2u);
  f.scheduler.complete(jobs[0].id, all(jobs[0], Outcome::Delivered), false, kT0);
  auto more = f.drain(kT0);
  ASSERT_EQ(more.size(), 1u);
  jobs.push_back(more[0]);
  std::set<std::vector<std::string>> got;
  for (const auto& j : jobs) {
    EXPECT_EQ(j.destination, kSite);
    got.insert(j.recipients);
  }
  EXPECT_EQ(got, (std::set<std::vector<std::string>>{
                     {"x@a.test", "z@a.test"}, {"y@b.test", "w@b.test"}, {"v@c.test"}}));
}

TEST(SchedulerSites, AHostFailureHoldsTheWholeSite) {
  SiteFixture f;
  f.add("m1", {"u@a.test"});
  auto jobs = f.drain(kT0);
  ASSERT_EQ(jobs.size(), 1u);
  f.scheduler.complete(jobs[0].id, all(jobs[0], Outcome::TempFail), true, kT0);
  EXPECT_TRUE(f.scheduler.held("esmtp", kSite, kT0));
  f.add("m2", {"u@b.test"});
  EXPECT_TRUE(f.drain(kT0 + 1000ms).empty());  // b.test waits behind a.test's failed host
  auto probe = f.drain(kT0 + 2000ms);
  ASSERT_EQ(probe.size(), 1u);  // one probe for the site when the hold ends
  EXPECT_EQ(probe[0].destination, kSite);
}

TEST(SchedulerSites, OwnConcurrencyAndMaxRcpt) {
  auto limits = test_limits();
  limits.max_per_host = 10;
  limits.initial_per_host = 5;
  SiteFixture f(limits);
  f.site_limits.concurrency = 1;
  f.site_limits.max_rcpt = 2;
  f.add("m1", {"a@a.test", "b@a.test", "c@a.test"});
  f.add("m2", {"a@b.test"});
  f.add("m3", {"a@other.test", "b@other.test", "c@other.test"});
  auto jobs = f.drain(kT0);
  std::map<std::string, std::vector<std::size_t>> sizes;
  for (const auto& j : jobs) sizes[j.destination].push_back(j.recipients.size());
  EXPECT_EQ(sizes[kSite], (std::vector<std::size_t>{2}));         // concurrency 1, max_rcpt 2
  EXPECT_EQ(sizes["other.test"], (std::vector<std::size_t>{3}));  // the global limits
  // The window grows to the site's concurrency, not to MAXHOST.
  for (int i = 0; i < 3; ++i) {
    auto j =
        std::find_if(jobs.begin(), jobs.end(), [](const Job& x) { return x.destination == kSite; });
    ASSERT_NE(j, jobs.end());
    f.scheduler.complete(j->id, all(*j, Outcome::Delivered), false, kT0);
    jobs.erase(j);
    auto more = f.drain(kT0);
    EXPECT_LE(f.scheduler.in_flight("esmtp", kSite), 1u);
    jobs.insert(jobs.end(), more.begin(), more.end());
  }
}

TEST(SchedulerSites, RateSpacesStartsAndMailWaits) {
  SiteFixture f;
  f.site_limits.interval = 500ms;
  for (int i = 0; i < 3; ++i) f.add("m" + std::to_string(i), {"u@a.test"});
  auto first = f.drain(kT0);
  ASSERT_EQ(first.size(), 1u);  // MAXHOST 2 would allow two: the rate allows one
  EXPECT_EQ(f.scheduler.next_wakeup(), kT0 + 500ms);
  EXPECT_TRUE(f.drain(kT0 + 499ms).empty());
  // The waiting mail is ready, not deferred: mailq shows when it may start.
  for (const auto& e : f.scheduler.snapshot(kT0 + 100ms)) {
    if (e.queue_id == first[0].queue_id) continue;
    ASSERT_EQ(e.recipients.size(), 1u);
    EXPECT_EQ(e.recipients[0].state, QueuedRecipient::State::Ready);
    EXPECT_EQ(e.recipients[0].destination, kSite);
    EXPECT_EQ(e.recipients[0].attempts, 0u);
    EXPECT_EQ(e.recipients[0].next_retry_ms, (kT0 + 500ms).time_since_epoch().count());
  }
  auto second = f.drain(kT0 + 500ms);
  ASSERT_EQ(second.size(), 1u);
  // Both done at once; the destination goes idle but keeps its next start.
  f.scheduler.complete(first[0].id, all(first[0], Outcome::Delivered), false, kT0 + 600ms);
  f.scheduler.complete(second[0].id, all(second[0], Outcome::Delivered), false, kT0 + 600ms);
  auto third = f.drain(kT0 + 600ms);
  EXPECT_TRUE(third.empty());
  third = f.drain(kT0 + 1000ms);
  ASSERT_EQ(third.size(), 1u);
  f.scheduler.complete(third[0].id, all(third[0], Outcome::Delivered), false, kT0 + 1000ms);
  f.add("late", {"u@b.test"});  // another domain of the site, before the next start
  EXPECT_TRUE(f.drain(kT0 + 1200ms).empty());
  EXPECT_EQ(f.drain(kT0 + 1500ms).size(), 1u);
  // Once its last timer has fired and nothing is left, the destination is forgotten.
  EXPECT_EQ(f.scheduler.next_wakeup(), kT0 + 2000ms);
}

TEST(SchedulerSites, FlushDoesNotBypassTheRate) {
  SiteFixture f;
  f.site_limits.interval = 1000ms;
  f.add("m1", {"u@a.test"});
  f.add("m2", {"u@a.test"});
  ASSERT_EQ(f.drain(kT0).size(), 1u);
  f.scheduler.flush(FlushScope::All, "", kT0 + 10ms);
  EXPECT_TRUE(f.drain(kT0 + 10ms).empty());
  EXPECT_EQ(f.drain(kT0 + 1000ms).size(), 1u);
}

TEST(SchedulerSites, ConfigLimitsWithoutARouter) {
  config::Config c;
  c.routes.exact["routed.test"] = config::HostPort{"Relay.test", 2525};
  c.destinations.domains["slow.test"] = config::DestinationLimits{1, 0ms, 0};
  c.destinations.routes["relay.test:2525"] = config::DestinationLimits{0, 250ms, 3};
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@SLOW.test"),
            (Destination{"esmtp", "slow.test", true, config::DestinationLimits{1, 0ms, 0}}));
  EXPECT_EQ(
      destination_for(c, routing::Router(c), "a@routed.test"),
      (Destination{"esmtp", "Relay.test:2525", false, config::DestinationLimits{0, 250ms, 3}}));
  EXPECT_EQ(destination_for(c, routing::Router(c), "a@fast.test"),
            (Destination{"esmtp", "fast.test", true}));

  Scheduler s(c, test_limits(), [] { return 0.5; });
  s.add(message("m1", {"a@slow.test"}), kT0);
  s.add(message("m2", {"b@slow.test"}), kT0);
  s.add(message("m3", {"a@routed.test", "b@routed.test", "c@routed.test", "d@routed.test"}), kT0);
  s.add(message("m4", {"e@routed.test"}), kT0);
  std::map<std::string, std::vector<std::size_t>> sizes;
  while (auto j = s.next_job(kT0)) sizes[j->destination].push_back(j->recipients.size());
  EXPECT_EQ(sizes["slow.test"], (std::vector<std::size_t>{1}));        // concurrency=1
  EXPECT_EQ(sizes["Relay.test:2525"], (std::vector<std::size_t>{3}));  // max_rcpt=3, rate
}

}  // namespace
}  // namespace estafette::courierd
