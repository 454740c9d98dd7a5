#include "lib/event/blocking_pool.h"

#include <exception>

#include "lib/base/log.h"

namespace estafette::event {

BlockingPool::BlockingPool(Loop& loop, Options options, std::string log_name)
    : loop_(loop),
      options_(options),
      log_name_(std::move(log_name)),
      waker_(loop, [this] { deliver(); }) {
  if (options_.threads == 0) options_.threads = 1;
  for (std::size_t i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { run(); });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wanted_.notify_all();
  for (auto& t : workers_) t.join();
  for (auto& [id, w] : waiting_) loop_.cancel_timer(w.timer);
}

bool BlockingPool::submit(Work work, Done done) {
  auto id = next_id_;
  {
    std::lock_guard lock(mutex_);
    // Works answered Failed already (their time is over) make room; the deadlines are in order.
    auto now = Clock::now();
    while (!queue_.empty() && queue_.front().deadline <= now) queue_.pop_front();
    if (stopping_ || queue_.size() >= options_.max_queued) return false;
    queue_.push_back(Job{id, std::move(work), now + options_.timeout});
  }
  ++next_id_;
  wanted_.notify_one();
  auto timer = loop_.add_timer(options_.timeout, [this, id] { answer(id, Outcome::Failed); });
  waiting_.emplace(id, Waiting{std::move(done), timer});
  return true;
}

void BlockingPool::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wanted_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (Clock::now() >= job.deadline) continue;  // answered Failed already: do not start it
    Answer a{job.id, true};
    try {
      job.work();
    } catch (const std::exception& e) {
      base::log(log_name_).error(std::string("blocking work failed: ") + e.what());
      a.ok = false;
    }
    job.work = nullptr;  // what it captured goes now, on this thread
    {
      std::lock_guard lock(mutex_);
      answers_.push_back(a);
    }
    waker_.wake();
  }
}

void BlockingPool::deliver() {
  std::vector<Answer> answers;
  {
    std::lock_guard lock(mutex_);
    answers.swap(answers_);
  }
  for (const auto& a : answers) answer(a.id, a.ok ? Outcome::Answered : Outcome::Failed);
}

void BlockingPool::answer(std::uint64_t id, Outcome outcome) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;  // timed out before: the late answer is dropped
  Waiting w = std::move(it->second);
  waiting_.erase(it);
  loop_.cancel_timer(w.timer);  // safe when it is the timer that fired
  w.done(outcome);
}

}  // namespace estafette::event
