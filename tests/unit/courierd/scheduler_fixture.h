// scheduler_fixture.h: what the courierd Scheduler tests share -- a fixed clock origin, short
// retry limits, a queued message and a scheduler over a config the test may still change.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "courierd/scheduler.h"

namespace estafette::courierd {

inline const Time kT0 = Time(Millis(1'700'000'000'000));

// Retries, host backoff and lifetime in seconds rather than the production minutes and days;
// each test sets on top the limits it is about.
inline Limits fast_limits() {
  using namespace std::chrono_literals;
  Limits l;
  l.retry_base = 1000ms;
  l.retry_max = 10000ms;
  l.host_backoff = 2000ms;
  l.queue_lifetime = 3600s;
  return l;
}

// A message from sender@origin.test that arrived at `arrival`, no recipient done yet.
inline queue::StoredMessage message(const std::string& id, std::vector<std::string> rcpts,
                                    Time arrival = kT0) {
  queue::StoredMessage m;
  m.envelope.id = id;
  m.envelope.sender = "sender@origin.test";
  m.envelope.arrival =
      std::chrono::duration_cast<std::chrono::seconds>(arrival.time_since_epoch()).count();
  m.envelope.recipients = std::move(rcpts);
  m.path = "/queue/msg/" + id;
  m.body_size = 100;
  m.done.assign(m.envelope.recipients.size(), false);
  return m;
}

// The same outcome for every recipient of a job.
inline std::vector<RcptOutcome> all(const Job& job, Outcome o, const std::string& reply = "") {
  return std::vector<RcptOutcome>(job.recipients.size(), RcptOutcome{o, reply});
}

// A scheduler over `config` (which it reads by reference, so a test may change it afterwards)
// whose jitter draws `random_value`.
struct SchedulerFixture {
  explicit SchedulerFixture(Limits limits, config::Config c = {}, double random = 0.5)
      : config(std::move(c)),
        random_value(random),
        scheduler(config, limits, [this] { return random_value; }) {}
  // Every job the scheduler hands out at `now`.
  std::vector<Job> drain(Time now) {
    std::vector<Job> jobs;
    while (auto j = scheduler.next_job(now)) jobs.push_back(*j);
    return jobs;
  }
  config::Config config;
  double random_value;
  Scheduler scheduler;
};

}  // namespace estafette::courierd
