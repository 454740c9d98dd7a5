#include "courierd/scheduler.h"

#include <string.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "lib/smtp/address.h"
#include "lib/smtp/esmtp_params.h"

namespace estafette::courierd {

namespace {

// Recipient i of a message being cancelled or deleted is done: bounced with kCancelledReply or
// dropped without a DSN, as the removal says.
void finish_removed(Scheduler::Message& m, std::size_t i, JobReport& report) {
  m.rcpts[i].state = Scheduler::Message::Rcpt::State::Done;
  --m.pending;
  if (m.removal == Scheduler::Message::Removal::Cancel)
    report.bounced.push_back(
        Bounce{i, m.stored.envelope.recipients[i], std::string(kCancelledReply), false});
  else
    report.dropped.push_back(i);
}

}  // namespace

Destination destination_for(const config::Config& config, const routing::Router& router,
                            const std::string& recipient, bool program) {
  std::string domain = smtp::domain_of(recipient);
  if (program) return {std::string(kLocalModule), std::string(kLocalModule)};
  if (const config::Transport* t = router.transport_of(domain)) {
    // LMTP is SMTP's sibling: esmtpclient speaks it, one destination per LMTP server.
    if (t->lmtp()) {
      return {std::string(kEsmtpModule), t->to_string()};
    }
    return {std::string(kLocalModule), std::string(kLocalModule)};
  }
  Destination d{std::string(kEsmtpModule), domain, true, {}};
  if (auto route = config.routes.lookup(domain)) {
    d.key = route->to_string();
    d.mx_lookup = false;
    if (const auto* limits = config.destinations.for_route(smtp::to_lower(d.key)))
      d.limits = *limits;
  } else if (const auto* limits = config.destinations.for_domain(domain)) {
    d.limits = *limits;
  }
  return d;
}

Limits Limits::from(const config::Config& config) {
  Limits l;
  l.max_deliveries = std::max<std::size_t>(1, config.max_deliveries);
  l.max_per_host = std::max<std::size_t>(1, config.max_per_host);
  l.initial_per_host = std::clamp<std::size_t>(config.initial_host_concurrency, 1, l.max_per_host);
  l.max_rcpt = std::max<std::size_t>(1, config.max_rcpt);
  l.retry_base = config.retry_base;
  l.retry_max = config.retry_max;
  l.host_backoff = config.host_backoff;
  l.queue_lifetime = std::chrono::duration_cast<Millis>(config.queue_lifetime);
  l.warn_time = config.warn_time;
  l.requeue_delay = std::min(Millis(1000), config.retry_base);
  return l;
}

Scheduler::Scheduler(const config::Config& config, Limits limits, Random random)
    : config_(config),
      router_(std::make_shared<routing::Router>(config)),
      limits_(limits),
      random_(std::move(random)) {}

std::string Scheduler::dest_id(const std::string& module, const std::string& key) {
  return module + '\n' + key;
}

Scheduler::Dest& Scheduler::dest(const Destination& where) {
  auto [it, inserted] = dests_.try_emplace(dest_id(where.module, where.key));
  Dest& d = it->second;
  d.limits = where.limits;  // the latest word: the destinations file may name it anew
  if (inserted) {
    d.module = where.module;
    d.key = where.key;
    d.window = std::clamp<std::size_t>(limits_.initial_per_host, 1, max_window(d));
  }
  d.window = std::min(d.window, max_window(d));
  return d;
}

Millis Scheduler::retry_delay(unsigned attempts) const {
  Millis delay = limits_.retry_base;
  for (unsigned i = 1; i < attempts && delay < limits_.retry_max; ++i) delay *= 2;
  return std::min(delay, limits_.retry_max);
}

Scheduler::AddResult Scheduler::add(queue::StoredMessage stored, Time now, const RouteFn& route) {
  const queue::QueueId id = stored.envelope.id;
  if (messages_.count(id)) return AddResult::Duplicate;
  Message m;
  m.rcpts.resize(stored.envelope.recipients.size());
  for (std::size_t i = 0; i < m.rcpts.size(); ++i) {
    bool done = i < stored.done.size() && stored.done[i];
    m.rcpts[i].state = done ? Message::Rcpt::State::Done : Message::Rcpt::State::Waiting;
    if (!done) ++m.pending;
  }
  if (m.pending == 0) return AddResult::NothingPending;
  if (stored.held) {
    for (auto& r : m.rcpts)
      if (r.state == Message::Rcpt::State::Waiting) r.state = Message::Rcpt::State::Held;
  }
  // Group the pending recipients by destination (and, for an MX site, by domain: a job goes to
  // one domain's MX hosts), keeping the order of first appearance.
  struct Group {
    std::string dest;
    std::string domain;
    Batch batch;
  };
  std::vector<Group> groups;
  for (std::size_t i = 0; i < m.rcpts.size(); ++i) {
    if (m.rcpts[i].state != Message::Rcpt::State::Waiting) continue;  // done, or held
    const std::string& rcpt = stored.envelope.recipients[i];
    bool program = stored.envelope.programs.count(i) > 0;
    auto d = route ? route(rcpt, program) : destination_for(config_, *router_, rcpt, program);
    dest(d);
    auto did = dest_id(d.module, d.key);
    std::string domain = d.mx_lookup ? smtp::domain_of(rcpt) : std::string();
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](auto& x) { return x.dest == did && x.domain == domain; });
    if (g == groups.end()) {
      groups.push_back({did, std::move(domain), Batch{id, {}}});
      g = groups.end() - 1;
    }
    g->batch.rcpts.push_back(i);
  }
  // A delay warning, if any pending recipient may want one before the message expires, and
  // none was sent before a restart (stored.warned).
  if (limits_.warn_time.count() > 0 && !stored.envelope.sender.empty() && !stored.warned) {
    Time warn_at = Time(std::chrono::seconds(stored.envelope.arrival)) + limits_.warn_time;
    bool wanted = false;
    for (std::size_t i = 0; i < m.rcpts.size() && !wanted; ++i)
      wanted = m.rcpts[i].state != Message::Rcpt::State::Done &&
               (smtp::notify_flags(stored.envelope.dsn_of(i).notify) & smtp::kNotifyDelay);
    if (wanted &&
        warn_at < Time(std::chrono::seconds(stored.envelope.arrival)) + limits_.queue_lifetime)
      warn_timers_.emplace(warn_at, id);
  }
  m.stored = std::move(stored);
  // Kept for every queued message: drop what no delivery needs.
  std::string().swap(m.stored.envelope.client_ip);
  std::string().swap(m.stored.envelope.helo);
  std::vector<bool>().swap(m.stored.done);
  messages_.emplace(id, std::move(m));
  for (auto& g : groups) make_ready(g.dest, std::move(g.batch), false);
  (void)now;
  return AddResult::Added;
}

void Scheduler::make_ready(const std::string& did, Batch batch, bool front) {
  auto mit = messages_.find(batch.queue_id);
  if (mit == messages_.end() || batch.rcpts.empty()) return;
  for (auto i : batch.rcpts) mit->second.rcpts[i].state = Message::Rcpt::State::Ready;
  Dest& d = dests_[did];
  if (front)
    d.ready.push_front(std::move(batch));
  else
    d.ready.push_back(std::move(batch));
  if (!d.in_rotation && d.in_flight < concurrency(d)) {
    // A held dest is skipped lazily by next_job(); its hold timer puts it back.
    d.in_rotation = true;
    rotation_.push_back(did);
  }
}

void Scheduler::consider(const std::string& did, Dest& d, Time now) {
  if (d.in_rotation || d.ready.empty() || d.in_flight >= concurrency(d)) return;
  // Over its rate, the timer armed when its last job started puts it back.
  if (d.held_until > now || d.next_start > now || paused_.count(d.module)) return;
  d.in_rotation = true;
  rotation_.push_back(did);
}

void Scheduler::release_due(Time now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto node = timers_.extract(timers_.begin());
    Timer& t = node.mapped();
    auto dit = dests_.find(t.dest);
    if (dit == dests_.end()) continue;  // never: a dest with timers is not forgotten
    --dit->second.timers;
    if (t.batch.rcpts.empty()) {
      consider(t.dest, dit->second, now);  // a hold ends
    } else if (auto mit = messages_.find(t.batch.queue_id); mit != messages_.end()) {
      std::erase_if(t.batch.rcpts, [&](std::size_t i) {
        return mit->second.rcpts[i].state != Message::Rcpt::State::Waiting;
      });
      make_ready(t.dest, std::move(t.batch), false);
    }
    forget_if_idle(t.dest);
  }
}

void Scheduler::add_timer(Time at, const std::string& did, Batch batch) {
  ++dests_[did].timers;
  timers_.emplace(at, Timer{did, std::move(batch)});
}

Scheduler::Message* Scheduler::front_message(Dest& d) {
  while (!d.ready.empty()) {
    auto mit = messages_.find(d.ready.front().queue_id);
    if (mit != messages_.end()) return &mit->second;
    d.ready.pop_front();  // its message is gone
  }
  return nullptr;
}

void Scheduler::forget_if_idle(const std::string& did) {
  auto it = dests_.find(did);
  if (it == dests_.end()) return;
  const Dest& d = it->second;
  if (d.ready.empty() && d.in_flight == 0 && d.timers == 0 && !d.in_rotation) dests_.erase(it);
}

std::optional<Job> Scheduler::next_job(Time now) {
  release_due(now);
  if (in_flight_ >= limits_.max_deliveries) return std::nullopt;
  while (!rotation_.empty()) {
    std::string did = std::move(rotation_.front());
    rotation_.pop_front();
    Dest& d = dests_[did];
    d.in_rotation = false;
    if (d.held_until > now || d.next_start > now || d.in_flight >= concurrency(d) ||
        paused_.count(d.module)) {
      forget_if_idle(did);
      continue;
    }
    while (Message* front = front_message(d)) {
      Batch& batch = d.ready.front();
      Message& m = *front;
      Job job;
      job.id = next_job_id_++;
      job.queue_id = batch.queue_id;
      job.module = d.module;
      job.destination = d.key;
      std::size_t take = 0;
      for (; take < batch.rcpts.size() && job.rcpt_indexes.size() < max_rcpt(d); ++take) {
        std::size_t i = batch.rcpts[take];
        if (m.rcpts[i].state != Message::Rcpt::State::Ready) continue;
        m.rcpts[i].state = Message::Rcpt::State::InFlight;
        job.rcpt_indexes.push_back(i);
        job.recipients.push_back(m.stored.envelope.recipients[i]);
      }
      batch.rcpts.erase(batch.rcpts.begin(), batch.rcpts.begin() + static_cast<long>(take));
      if (batch.rcpts.empty()) d.ready.pop_front();
      if (job.rcpt_indexes.empty()) continue;
      ++d.in_flight;
      ++in_flight_;
      running_.emplace(job.id, Running{job, did});
      if (d.limits.interval.count() > 0) {
        d.next_start = now + d.limits.interval;
        add_timer(d.next_start, did, Batch{});  // puts it back into rotation, keeps next_start
      }
      consider(did, d, now);
      return job;
    }
    forget_if_idle(did);
  }
  return std::nullopt;
}

JobReport Scheduler::complete(JobId job_id, const std::vector<RcptOutcome>& results,
                              bool host_failed, Time now) {
  JobReport report;
  auto rit = running_.find(job_id);
  if (rit == running_.end()) return report;
  Running running = std::move(rit->second);
  running_.erase(rit);
  Dest& d = dests_[running.dest];
  --d.in_flight;
  --in_flight_;
  report.queue_id = running.job.queue_id;
  auto mit = messages_.find(running.job.queue_id);
  if (mit == messages_.end()) {
    forget_if_idle(running.dest);
    return report;
  }
  Message& m = mit->second;
  using State = Message::Rcpt::State;

  const bool expired = now >= expires_at(m);
  const double jitter = 0.8 + 0.4 * std::clamp(random_(), 0.0, 1.0);
  std::map<Time, Batch> retries;
  Batch held{running.job.queue_id, {}};

  if (host_failed && d.held_until <= now) {
    // A new failed round: the first failure of an outage, or a failed probe. Jobs that were
    // already in flight and fail during the hold are part of the same outage.
    if (!d.flushed || d.host_failures == 0) ++d.host_failures;
    d.flushed = false;
    Millis backoff = limits_.host_backoff;
    for (unsigned i = 1; i < d.host_failures && backoff < limits_.retry_max; ++i) backoff *= 2;
    backoff = std::max(limits_.host_backoff, std::min(backoff, limits_.retry_max));
    d.held_until = now + backoff;
    d.window = 1;  // reopened one job at a time after a successful probe
    add_timer(d.held_until, running.dest, Batch{});  // puts the dest back into rotation
  }

  for (std::size_t n = 0; n < running.job.rcpt_indexes.size(); ++n) {
    std::size_t i = running.job.rcpt_indexes[n];
    auto& r = m.rcpts[i];
    if (r.state != State::InFlight) continue;
    RcptOutcome res = n < results.size() ? results[n] : RcptOutcome{Outcome::TempFail, ""};
    if (res.outcome == Outcome::TempFail && res.reply.empty())
      res.reply = "451 4.3.0 no result from the delivery module";
    const std::string& addr = m.stored.envelope.recipients[i];
    if (m.removal != Message::Removal::None && res.outcome == Outcome::TempFail) {
      finish_removed(m, i, report);  // cancelled or deleted while this attempt ran
      continue;
    }
    switch (res.outcome) {
      case Outcome::Delivered:
        r.state = State::Done;
        --m.pending;
        report.delivered.push_back(i);
        break;
      case Outcome::PermFail:
        r.state = State::Done;
        --m.pending;
        report.bounced.push_back(Bounce{i, addr, res.reply, false});
        break;
      case Outcome::TempFail:
        ++r.attempts;
        if (m.last_errors.empty()) m.last_errors.resize(m.rcpts.size());
        m.last_errors[i] = res.reply;
        if (m.stored.held) {
          r.state = State::Held;  // put on hold while this attempt ran: no retry, no expiry
          report.deferred.push_back(Deferral{i, addr, res.reply, now, true});
        } else if (expired) {
          r.state = State::Done;
          --m.pending;
          report.bounced.push_back(Bounce{i, addr, res.reply, true});
        } else if (host_failed) {
          held.rcpts.push_back(i);
          report.deferred.push_back(Deferral{i, addr, res.reply, d.held_until});
        } else {
          auto delay = std::chrono::duration_cast<Millis>(retry_delay(r.attempts) * jitter);
          Time at = now + delay;
          auto& b = retries[at];
          b.queue_id = running.job.queue_id;
          b.rcpts.push_back(i);
          r.state = State::Waiting;
          report.deferred.push_back(Deferral{i, addr, res.reply, at});
        }
        break;
    }
  }
  // The host answered (even if only to defer): it is up, and the window grows by one.
  if (!host_failed) {
    d.host_failures = 0;
    d.flushed = false;
    d.window = std::min(d.window + 1, max_window(d));
  }
  for (auto& [at, batch] : retries) add_timer(at, running.dest, std::move(batch));
  if (!held.rcpts.empty()) make_ready(running.dest, std::move(held), true);
  consider(running.dest, d, now);

  if (m.pending == 0) {
    messages_.erase(mit);
    report.message_finished = true;
  }
  forget_if_idle(running.dest);
  return report;
}

std::vector<ExpiredReport> Scheduler::expire_held(Time now) {
  using State = Message::Rcpt::State;
  std::vector<ExpiredReport> out;
  std::unordered_map<queue::QueueId, std::size_t> report_of;  // queue id -> index in out
  std::vector<std::string> touched;
  for (auto& [did, d] : dests_) {
    if (d.host_failures == 0) continue;  // up: its mail is tried, and bounced if it expired
    while (Message* front = front_message(d)) {
      Batch& batch = d.ready.front();
      Message& m = *front;
      if (now < expires_at(m)) break;
      auto [it, added] = report_of.try_emplace(batch.queue_id, out.size());
      if (added)
        out.push_back(ExpiredReport{m.stored, JobReport{batch.queue_id, {}, {}, {}, false, {}}});
      JobReport& report = out[it->second].report;
      for (std::size_t i : batch.rcpts) {
        auto& r = m.rcpts[i];
        if (r.state != State::Ready) continue;
        r.state = State::Done;
        --m.pending;
        report.bounced.push_back(Bounce{i, m.stored.envelope.recipients[i],
                                        "451 4.4.1 destination not reachable until the message "
                                        "expired",
                                        true});
      }
      bool finished = m.pending == 0;
      queue::QueueId id = std::move(batch.queue_id);
      d.ready.pop_front();
      if (finished) {
        messages_.erase(id);
        report.message_finished = true;
      }
    }
    touched.push_back(did);
  }
  for (const auto& did : touched) forget_if_idle(did);
  std::erase_if(out, [](const ExpiredReport& e) { return e.report.bounced.empty(); });
  return out;
}

std::vector<DelayWarning> Scheduler::take_delay_warnings(Time now) {
  std::vector<DelayWarning> out;
  while (!warn_timers_.empty() && warn_timers_.begin()->first <= now) {
    queue::QueueId id = std::move(warn_timers_.begin()->second);
    warn_timers_.erase(warn_timers_.begin());
    auto mit = messages_.find(id);
    if (mit == messages_.end()) continue;  // delivered or bounced in time
    Message& m = mit->second;
    if (now >= expires_at(m)) continue;  // it bounces instead
    m.stored.warned = true;              // the caller records it (Backend::set_warned)
    DelayWarning w{m.stored, {}, expires_at(m)};
    const auto& env = m.stored.envelope;
    for (std::size_t i = 0; i < m.rcpts.size(); ++i) {
      if (m.rcpts[i].state == Message::Rcpt::State::Done) continue;
      if (!(smtp::notify_flags(env.dsn_of(i).notify) & smtp::kNotifyDelay)) continue;
      w.recipients.push_back(
          {i, env.recipients[i], i < m.last_errors.size() ? m.last_errors[i] : std::string()});
    }
    if (!w.recipients.empty()) out.push_back(std::move(w));
  }
  return out;
}

void Scheduler::retry_delay_warning(const queue::QueueId& id, Time at) {
  auto mit = messages_.find(id);
  if (mit == messages_.end()) return;
  mit->second.stored.warned = false;
  warn_timers_.emplace(at, id);
}

RemovalReport Scheduler::requeue(JobId job_id, Time now) {
  using State = Message::Rcpt::State;
  RemovalReport out;
  auto rit = running_.find(job_id);
  if (rit == running_.end()) return out;
  Running running = std::move(rit->second);
  running_.erase(rit);
  Dest& d = dests_[running.dest];
  --d.in_flight;
  --in_flight_;
  auto mit = messages_.find(running.job.queue_id);
  if (mit != messages_.end()) {
    Message& m = mit->second;
    Batch b{running.job.queue_id, {}};
    out.report.queue_id = running.job.queue_id;
    for (auto i : running.job.rcpt_indexes) {
      auto& r = m.rcpts[i];
      if (r.state != State::InFlight) continue;
      if (m.removal == Message::Removal::None) {
        r.state = m.stored.held ? State::Held : State::Waiting;
        if (!m.stored.held) b.rcpts.push_back(i);
        continue;
      }
      finish_removed(m, i, out.report);
    }
    if (!b.rcpts.empty()) add_timer(now + limits_.requeue_delay, running.dest, std::move(b));
    if (!out.report.bounced.empty() || !out.report.dropped.empty()) {
      out.found = true;
      out.message = m.stored;
      if (m.pending == 0) {
        messages_.erase(mit);
        out.report.message_finished = true;
      }
    }
  }
  consider(running.dest, d, now);
  forget_if_idle(running.dest);
  return out;
}

HoldResult Scheduler::hold(const queue::QueueId& id) {
  using State = Message::Rcpt::State;
  HoldResult out;
  auto mit = messages_.find(id);
  if (mit == messages_.end()) return out;
  out.found = true;
  Message& m = mit->second;
  if (m.removal != Message::Removal::None) return out;
  m.stored.held = true;
  // Their entries in ready lists and retry timers go stale: next_job() and release_due() take
  // only recipients in the state those lists are for.
  for (auto& r : m.rcpts) {
    if (r.state == State::Waiting || r.state == State::Ready) {
      r.state = State::Held;
      ++out.recipients;
    } else if (r.state == State::InFlight) {
      ++out.in_flight;
    }
  }
  return out;
}

HoldResult Scheduler::release(const queue::QueueId& id, Time now, const RouteFn& route) {
  using State = Message::Rcpt::State;
  HoldResult out;
  auto mit = messages_.find(id);
  if (mit == messages_.end()) return out;
  out.found = true;
  Message& m = mit->second;
  if (!m.stored.held || m.removal != Message::Removal::None) return out;
  m.stored.held = false;
  std::map<std::string, Batch> by_dest;  // ready now, per destination
  for (std::size_t i = 0; i < m.rcpts.size(); ++i) {
    if (m.rcpts[i].state == State::InFlight) ++out.in_flight;
    if (m.rcpts[i].state != State::Held) continue;
    const std::string& rcpt = m.stored.envelope.recipients[i];
    bool program = m.stored.envelope.programs.count(i) > 0;
    auto d = route ? route(rcpt, program) : destination_for(config_, *router_, rcpt, program);
    dest(d);
    auto& batch = by_dest[dest_id(d.module, d.key)];
    batch.queue_id = id;
    batch.rcpts.push_back(i);
    ++out.recipients;
  }
  for (auto& [did, batch] : by_dest) {
    make_ready(did, std::move(batch), false);
    consider(did, dests_[did], now);
  }
  return out;
}

RemovalReport Scheduler::cancel(const queue::QueueId& id, bool bounce) {
  using State = Message::Rcpt::State;
  RemovalReport out;
  auto mit = messages_.find(id);
  if (mit == messages_.end()) return out;
  out.found = true;
  Message& m = mit->second;
  out.report.queue_id = id;
  if (m.removal != Message::Removal::None) return out;
  m.removal = bounce ? Message::Removal::Cancel : Message::Removal::Delete;
  for (std::size_t i = 0; i < m.rcpts.size(); ++i) {
    auto& r = m.rcpts[i];
    if (r.state == State::Done) continue;
    if (r.state == State::InFlight) {
      ++out.in_flight;
      continue;
    }
    finish_removed(m, i, out.report);  // stale in ready lists and timers, like a held one
  }
  out.message = m.stored;
  if (m.pending == 0) {
    messages_.erase(mit);
    out.report.message_finished = true;
  }
  return out;
}

std::vector<queue::QueueId> Scheduler::message_ids(bool held) const {
  std::vector<queue::QueueId> out;
  for (const auto& [id, m] : messages_)
    if (m.stored.held == held && m.removal == Message::Removal::None) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

void Scheduler::set_module_paused(const std::string& module, bool paused, Time now) {
  if (!paused) {
    if (paused_.erase(module) == 0) return;
    for (auto& [did, d] : dests_)
      if (d.module == module) consider(did, d, now);
    return;
  }
  paused_.insert(module);
}

std::vector<QueuedMessage> Scheduler::snapshot(Time now) const {
  using State = Message::Rcpt::State;
  // When each waiting recipient is due, from the retry timers; and which destination each
  // recipient is in (its MX site may differ from what a lookup would say now).
  using RcptRef = std::pair<queue::QueueId, std::size_t>;
  std::map<RcptRef, Time> due;
  std::map<RcptRef, const Dest*> where;
  auto dest_of = [this](const std::string& did) -> const Dest* {
    auto it = dests_.find(did);
    return it == dests_.end() ? nullptr : &it->second;
  };
  for (const auto& [at, t] : timers_)
    for (auto i : t.batch.rcpts) {
      due.emplace(std::make_pair(t.batch.queue_id, i), at);
      where.emplace(std::make_pair(t.batch.queue_id, i), dest_of(t.dest));
    }
  for (const auto& [did, d] : dests_)
    for (const auto& b : d.ready)
      for (auto i : b.rcpts) where.emplace(std::make_pair(b.queue_id, i), &d);
  for (const auto& [jid, r] : running_)
    for (auto i : r.job.rcpt_indexes)
      where.emplace(std::make_pair(r.job.queue_id, i), dest_of(r.dest));
  std::vector<QueuedMessage> out;
  out.reserve(messages_.size());
  for (const auto& [id, m] : messages_) {
    const auto& env = m.stored.envelope;
    QueuedMessage e;
    e.queue_id = id;
    e.arrival = env.arrival;
    e.size = m.stored.body_size;
    e.sender = env.sender;
    e.held = m.stored.held;
    e.quarantine = env.quarantine;
    for (std::size_t i = 0; i < m.rcpts.size(); ++i) {
      const auto& r = m.rcpts[i];
      if (r.state == State::Done) continue;
      QueuedRecipient q;
      q.address = env.recipients[i];
      auto w = where.find({id, i});
      const Dest* in = w == where.end() ? nullptr : w->second;
      q.destination =
          in ? in->key
             : destination_for(config_, *router_, q.address, env.programs.count(i) > 0).key;
      q.attempts = r.attempts;
      if (i < m.last_errors.size()) q.last_error = m.last_errors[i];
      switch (r.state) {
        case State::Waiting: {
          q.state = QueuedRecipient::State::Waiting;
          auto it = due.find({id, i});
          if (it != due.end()) q.next_retry_ms = it->second.time_since_epoch().count();
          break;
        }
        case State::Ready: {
          q.state = QueuedRecipient::State::Ready;
          if (in && in->held_until > now)
            q.next_retry_ms = in->held_until.time_since_epoch().count();
          else if (in && in->next_start > now)  // waiting for its rate
            q.next_retry_ms = in->next_start.time_since_epoch().count();
          break;
        }
        case State::Held:
          q.state = QueuedRecipient::State::Held;
          break;
        case State::InFlight:
        case State::Done:
          q.state = QueuedRecipient::State::InFlight;
          break;
      }
      e.recipients.push_back(std::move(q));
    }
    out.push_back(std::move(e));
  }
  return out;
}

bool Scheduler::in_scope(FlushScope scope, const std::string& target, const Message& m,
                         std::size_t rcpt, const Dest& d) const {
  switch (scope) {
    case FlushScope::All:
      return true;
    case FlushScope::Message:
      return m.stored.envelope.id == target;
    case FlushScope::Domain:
      return d.key == target || smtp::domain_of(m.stored.envelope.recipients[rcpt]) == target;
  }
  return false;
}

std::size_t Scheduler::flush(FlushScope scope, const std::string& target, Time now) {
  std::set<std::string> release;  // dests whose hold ends
  if (scope == FlushScope::Domain)
    for (const auto& [did, d] : dests_)
      if (d.key == target) release.insert(did);
  return flush_where([&](const Message& m, std::size_t rcpt,
                         const Dest& d) { return in_scope(scope, target, m, rcpt, d); },
                     std::move(release), now, nullptr);
}

std::map<queue::QueueId, std::size_t> Scheduler::flush(const std::set<queue::QueueId>& ids,
                                                       Time now) {
  std::map<queue::QueueId, std::size_t> per_message;
  for (const auto& id : ids) per_message[id] = 0;
  flush_where([&](const Message& m, std::size_t,
                  const Dest&) { return ids.contains(m.stored.envelope.id); },
              {}, now, &per_message);
  return per_message;
}

std::size_t Scheduler::flush_where(const RcptFilter& in, std::set<std::string> release, Time now,
                                   std::map<queue::QueueId, std::size_t>* per_message) {
  using State = Message::Rcpt::State;
  std::size_t count = 0;
  // Ready recipients of held dests: released with their hold (counted before the waiting ones
  // below join the ready lists, so nothing is counted twice).
  for (auto& [did, d] : dests_) {
    if (d.held_until <= now) continue;
    std::size_t ready = 0;
    std::map<queue::QueueId, std::size_t> ready_of;
    for (const auto& b : d.ready) {
      auto mit = messages_.find(b.queue_id);
      if (mit == messages_.end()) continue;
      for (auto i : b.rcpts)
        if (mit->second.rcpts[i].state == State::Ready && in(mit->second, i, d)) {
          ++ready;
          if (per_message) ++ready_of[b.queue_id];
        }
    }
    if (ready > 0) release.insert(did);
    if (release.count(did)) {
      count += ready;
      for (const auto& [id, n] : ready_of) (*per_message)[id] += n;
    }
  }
  // Waiting recipients: out of their retry timers, into their dest's ready list.
  for (auto it = timers_.begin(); it != timers_.end();) {
    Timer& t = it->second;
    auto mit = messages_.find(t.batch.queue_id);
    auto dit = dests_.find(t.dest);
    if (t.batch.rcpts.empty() || mit == messages_.end() || dit == dests_.end()) {
      ++it;
      continue;
    }
    Batch now_ready{t.batch.queue_id, {}};
    std::erase_if(t.batch.rcpts, [&](std::size_t i) {
      if (!in(mit->second, i, dit->second)) return false;
      if (mit->second.rcpts[i].state == State::Waiting) now_ready.rcpts.push_back(i);
      return true;
    });
    if (!now_ready.rcpts.empty()) {
      count += now_ready.rcpts.size();
      if (per_message) (*per_message)[now_ready.queue_id] += now_ready.rcpts.size();
      release.insert(t.dest);
      make_ready(t.dest, std::move(now_ready), false);
    }
    if (t.batch.rcpts.empty()) {
      --dit->second.timers;
      it = timers_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& did : release) {
    auto dit = dests_.find(did);
    if (dit == dests_.end()) continue;
    // Its hold timer stays; when it fires, consider() finds nothing to do.
    if (dit->second.held_until > now) {
      dit->second.held_until = now;
      dit->second.flushed = true;
    }
    consider(did, dit->second, now);
  }
  return count;
}

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Exact local part, case-insensitive domain (RFC 5321 2.4).
bool same_address(std::string_view a, std::string_view b) {
  auto at_a = a.rfind('@');
  auto at_b = b.rfind('@');
  if (at_a == std::string_view::npos || at_b == std::string_view::npos) return a == b;
  return a.substr(0, at_a) == b.substr(0, at_b) && iequal(a.substr(at_a), b.substr(at_b));
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// `part` (lower case) in `text`, any case. memmem is linear (two-way), so a remote reply built
// to be slow to search (a long "aaa...") costs no more than any other on courierd's loop.
bool icontains(std::string_view text, std::string_view part) {
  const std::string folded = lower(text);
  return ::memmem(folded.data(), folded.size(), part.data(), part.size()) != nullptr;
}

}  // namespace

bool selected(const Selection& s, const QueuedMessage& m, Time now) {
  if (s.sender && !same_address(*s.sender, m.sender)) return false;
  if (s.older_than > Millis(0) && Time(std::chrono::seconds(m.arrival)) + s.older_than > now)
    return false;
  auto any_rcpt = [&](auto&& pred) {
    return std::any_of(m.recipients.begin(), m.recipients.end(), pred);
  };
  if (!s.rcpt_domain.empty() && !any_rcpt([&](const QueuedRecipient& r) {
        return iequal(smtp::domain_of(r.address), s.rcpt_domain);
      }))
    return false;
  if (!s.destination.empty() &&
      !any_rcpt([&](const QueuedRecipient& r) { return iequal(r.destination, s.destination); }))
    return false;
  const std::string reason = lower(s.reason);
  if (!reason.empty() && !any_rcpt([&](const QueuedRecipient& r) {
        return !r.last_error.empty() && icontains(r.last_error, reason);
      }))
    return false;
  return true;
}

std::vector<QueuedMessage> Scheduler::select(const Selection& selection, Time now) const {
  std::vector<QueuedMessage> out;
  for (auto& m : snapshot(now)) {
    const Message* own = message(m.queue_id);
    if (own && own->removal == Message::Removal::None && selected(selection, m, now))
      out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.queue_id < b.queue_id; });
  return out;
}

std::optional<Time> Scheduler::next_wakeup() const {
  std::optional<Time> at;
  if (!timers_.empty()) at = timers_.begin()->first;
  if (!warn_timers_.empty() && (!at || warn_timers_.begin()->first < *at))
    at = warn_timers_.begin()->first;
  return at;
}

const Scheduler::Message* Scheduler::message(const queue::QueueId& id) const {
  auto it = messages_.find(id);
  return it == messages_.end() ? nullptr : &it->second;
}

std::size_t Scheduler::in_flight(const std::string& module, const std::string& key) const {
  auto it = dests_.find(dest_id(module, key));
  return it == dests_.end() ? 0 : it->second.in_flight;
}

bool Scheduler::held(const std::string& module, const std::string& key, Time now) const {
  auto it = dests_.find(dest_id(module, key));
  return it != dests_.end() && it->second.held_until > now;
}

}  // namespace estafette::courierd
