#include "esmtpd/recipient_lookups.h"

#include <exception>

#include "lib/base/log.h"

namespace estafette::esmtpd {

smtp::RecipientVerdict RecipientLookups::expand(const routing::Router& router,
                                                const std::string& address) {
  auto e = router.expand(address, routing::MailboxCheck::Now);
  return smtp::RecipientVerdict{e.ours, e.reply};
}

RecipientLookups::RecipientLookups(event::Loop& loop, Options options, Lookup lookup)
    : loop_(loop),
      options_(options),
      lookup_(std::move(lookup)),
      waker_(loop, [this] { deliver(); }) {
  if (options_.threads == 0) options_.threads = 1;
  for (std::size_t i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { work(); });
}

RecipientLookups::~RecipientLookups() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wanted_.notify_all();
  for (auto& t : workers_) t.join();
  for (auto& [id, w] : waiting_) loop_.cancel_timer(w.timer);
}

bool RecipientLookups::submit(std::shared_ptr<const routing::Router> router, std::string address,
                              Done done) {
  auto id = next_id_;
  {
    std::lock_guard lock(mutex_);
    // Requests answered 451 already (their time is over) make room; the deadlines are in order.
    auto now = event::Clock::now();
    while (!queue_.empty() && queue_.front().deadline <= now) queue_.pop_front();
    if (stopping_ || queue_.size() >= options_.max_queued) return false;
    queue_.push_back(Job{id, std::move(router), std::move(address), now + options_.timeout});
  }
  ++next_id_;
  wanted_.notify_one();
  auto timer = loop_.add_timer(options_.timeout, [this, id] { answer(id, Outcome::Failed, {}); });
  waiting_.emplace(id, Waiting{std::move(done), timer});
  return true;
}

void RecipientLookups::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wanted_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (event::Clock::now() >= job.deadline) continue;  // answered 451 already: do not start it
    Answer a{job.id, true, {}};
    try {
      a.verdict = lookup_(*job.router, job.address);
    } catch (const std::exception& e) {
      base::log("esmtpd").error("recipient lookup <" + job.address + "> failed: " + e.what());
      a.ok = false;
    }
    job.router.reset();  // a reloaded Router goes as soon as no lookup needs it
    {
      std::lock_guard lock(mutex_);
      answers_.push_back(std::move(a));
    }
    waker_.wake();
  }
}

void RecipientLookups::deliver() {
  std::vector<Answer> answers;
  {
    std::lock_guard lock(mutex_);
    answers.swap(answers_);
  }
  for (auto& a : answers) answer(a.id, a.ok ? Outcome::Answered : Outcome::Failed, a.verdict);
}

void RecipientLookups::answer(std::uint64_t id, Outcome outcome,
                              const smtp::RecipientVerdict& verdict) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;  // timed out before: the late answer is dropped
  Waiting w = std::move(it->second);
  waiting_.erase(it);
  loop_.cancel_timer(w.timer);  // safe when it is the timer that fired
  w.done(outcome, verdict);
}

}  // namespace estafette::esmtpd
