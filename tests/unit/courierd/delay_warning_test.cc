// courierd's Scheduler: delay warnings (warntime) -- when they fall due, once per message, for
// which recipients (NOTIFY), and none for the null sender or once the message expires.
#include <gtest/gtest.h>

#include "courierd/scheduler.h"
#include "tests/unit/courierd/scheduler_fixture.h"

namespace estafette::courierd {
namespace {

using namespace std::chrono_literals;

Limits warn_limits() {
  Limits l = fast_limits();
  l.warn_time = 60s;
  return l;
}

// A message with the recipients' NOTIFY/ORCPT and its sender ("" is the null sender).
queue::StoredMessage dsn_message(const std::string& id, std::vector<std::string> rcpts,
                                 std::vector<queue::RecipientDsn> dsn,
                                 std::string sender = "sender@origin.test") {
  queue::StoredMessage m = message(id, std::move(rcpts));
  m.envelope.sender = std::move(sender);
  m.envelope.dsn = std::move(dsn);
  return m;
}

struct Fixture : SchedulerFixture {
  explicit Fixture(Limits limits = warn_limits()) : SchedulerFixture(limits) {}
};

TEST(CourierdDelayWarning, OnceAfterWarnTimeForRecipientsThatWantIt) {
  Fixture f;
  f.scheduler.add(
      dsn_message("Q1", {"a@x.test", "b@x.test", "c@x.test", "d@x.test"},
                  {{"", ""}, {"NEVER", ""}, {"SUCCESS,FAILURE", ""}, {"DELAY", "rfc822;D"}}),
      kT0);
  // The warning time is a wakeup of its own.
  auto job = f.scheduler.next_job(kT0);
  ASSERT_TRUE(job);
  f.scheduler.complete(job->id,
                       std::vector<RcptOutcome>(4, {Outcome::TempFail, "451 4.4.1 try later"}),
                       false, kT0 + 1s);
  EXPECT_TRUE(f.scheduler.take_delay_warnings(kT0 + 59s).empty());
  ASSERT_TRUE(f.scheduler.next_wakeup());
  EXPECT_LE(*f.scheduler.next_wakeup(), kT0 + 60s);

  auto warnings = f.scheduler.take_delay_warnings(kT0 + 60s);
  ASSERT_EQ(warnings.size(), 1u);
  const auto& w = warnings[0];
  EXPECT_EQ(w.message.envelope.id, "Q1");
  EXPECT_EQ(w.expires, kT0 + 3600s);
  ASSERT_EQ(w.recipients.size(), 2u);  // the default (a) and DELAY (d)
  EXPECT_EQ(w.recipients[0].recipient, "a@x.test");
  EXPECT_EQ(w.recipients[0].last_error, "451 4.4.1 try later");
  EXPECT_EQ(w.recipients[1].rcpt_index, 3u);
  EXPECT_TRUE(f.scheduler.take_delay_warnings(kT0 + 600s).empty());  // only once
}

// A warning that could not be queued (a full disk) is given back and falls due again then;
// not for a message delivered meanwhile.
TEST(CourierdDelayWarning, RetriedWhenItCouldNotBeQueued) {
  Fixture f;
  f.scheduler.add(dsn_message("Q1", {"a@x.test"}, {{"", ""}}), kT0);
  f.scheduler.add(dsn_message("Q2", {"b@y.test"}, {{"", ""}}), kT0);
  ASSERT_EQ(f.scheduler.take_delay_warnings(kT0 + 60s).size(), 2u);
  f.scheduler.retry_delay_warning("Q1", kT0 + 90s);
  f.scheduler.retry_delay_warning("Q2", kT0 + 90s);
  f.scheduler.retry_delay_warning("Q3", kT0 + 90s);  // not queued: nothing
  ASSERT_TRUE(f.scheduler.next_wakeup());
  EXPECT_LE(*f.scheduler.next_wakeup(), kT0 + 90s);
  EXPECT_TRUE(f.scheduler.take_delay_warnings(kT0 + 89s).empty());
  // Q2 is delivered before then.
  for (int i = 0; i < 2; ++i) {
    auto job = f.scheduler.next_job(kT0 + 80s);
    ASSERT_TRUE(job);
    bool q2 = job->queue_id == "Q2";
    f.scheduler.complete(job->id, {{q2 ? Outcome::Delivered : Outcome::TempFail, "x"}}, false,
                         kT0 + 80s);
  }
  auto again = f.scheduler.take_delay_warnings(kT0 + 90s);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].message.envelope.id, "Q1");
  EXPECT_TRUE(f.scheduler.take_delay_warnings(kT0 + 900s).empty());  // once more, not twice
}

TEST(CourierdDelayWarning, NoneWhenDeliveredInTimeOrNotWanted) {
  Fixture f;
  f.scheduler.add(message("Q1", {"a@x.test"}), kT0);
  f.scheduler.add(dsn_message("Q2", {"a@x.test"}, {}, ""), kT0);             // null sender
  f.scheduler.add(dsn_message("Q3", {"a@x.test"}, {{"NEVER", ""}}), kT0);    // NOTIFY=NEVER
  f.scheduler.add(dsn_message("Q4", {"a@x.test"}, {{"FAILURE", ""}}), kT0);  // no DELAY
  while (auto job = f.scheduler.next_job(kT0)) {
    if (job->queue_id == "Q1")
      f.scheduler.complete(job->id, {{Outcome::Delivered, "250 ok"}}, false, kT0 + 1s);
    else
      f.scheduler.complete(job->id, {{Outcome::TempFail, "451 later"}}, false, kT0 + 1s);
  }
  EXPECT_TRUE(f.scheduler.take_delay_warnings(kT0 + 120s).empty());
}

TEST(CourierdDelayWarning, DisabledOrPastTheLifetime) {
  Limits off = warn_limits();
  off.warn_time = 0s;
  Fixture f(off);
  f.scheduler.add(message("Q1", {"a@x.test"}), kT0);
  EXPECT_TRUE(f.scheduler.take_delay_warnings(kT0 + 3000s).empty());

  Limits late = warn_limits();
  late.warn_time = 7200s;  // after queuetime: the message bounces instead
  Fixture g(late);
  g.scheduler.add(message("Q1", {"a@x.test"}), kT0);
  EXPECT_TRUE(g.scheduler.take_delay_warnings(kT0 + 7200s).empty());

  // Recovered long after its warning time (a restart): warned at once, unless expired.
  Fixture h;
  h.scheduler.add(message("Q1", {"a@x.test"}), kT0 + 3000s);
  EXPECT_EQ(h.scheduler.take_delay_warnings(kT0 + 3000s).size(), 1u);
  Fixture k;
  k.scheduler.add(message("Q1", {"a@x.test"}), kT0 + 4000s);
  EXPECT_TRUE(k.scheduler.take_delay_warnings(kT0 + 4000s).empty());
}

TEST(CourierdDelayWarning, NotAgainForAMessageWarnedBeforeARestart) {
  // The warning taken marks the message as warned, as the queue then records it.
  Fixture f;
  f.scheduler.add(message("Q1", {"a@x.test"}), kT0);
  auto warnings = f.scheduler.take_delay_warnings(kT0 + 60s);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(warnings[0].message.warned);

  // Recovered after a restart: the stored flag keeps it from being warned again, while a
  // message of the same age not yet warned is warned at once.
  Fixture g;
  queue::StoredMessage warned = message("Q1", {"a@x.test"});
  warned.warned = true;
  g.scheduler.add(std::move(warned), kT0 + 3000s);
  g.scheduler.add(message("Q2", {"a@x.test"}), kT0 + 3000s);
  auto after = g.scheduler.take_delay_warnings(kT0 + 3000s);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].message.envelope.id, "Q2");
  EXPECT_TRUE(g.scheduler.take_delay_warnings(kT0 + 3500s).empty());
  // It is still queued and delivered as usual.
  EXPECT_EQ(g.scheduler.message_count(), 2u);
  std::vector<queue::QueueId> jobs;
  while (auto job = g.scheduler.next_job(kT0 + 3000s)) jobs.push_back(job->queue_id);
  EXPECT_EQ(jobs, (std::vector<queue::QueueId>{"Q1", "Q2"}));
}

}  // namespace
}  // namespace estafette::courierd
