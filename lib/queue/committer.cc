#include "lib/queue/committer.h"

#include <chrono>
#include <exception>

#include "lib/base/log.h"

namespace estafette::queue {

Committer::Committer(event::Loop& loop, Backend& backend, metrics::Writer* metrics)
    : backend_(backend),
      metrics_(metrics),
      waker_(loop, [this] { deliver(); }),
      worker_([this] { work(); }) {}

Committer::~Committer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wanted_.notify_one();
  worker_.join();
  deliver();
}

void Committer::commit(std::unique_ptr<IncomingMessage> message, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      incoming_.push_back(Job{std::move(message), std::move(done)});
      ++pending_;
      wanted_.notify_one();
      return;
    }
  }
  backend_.abort(std::move(message));
  done(false, 0);
}

std::uint64_t Committer::rounds() const {
  std::lock_guard lock(mutex_);
  return rounds_;
}

void Committer::work() {
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock lock(mutex_);
      wanted_.wait(lock, [this] { return stopping_ || !incoming_.empty(); });
      if (incoming_.empty()) return;  // stopping, and everything handed over is done
      batch.swap(incoming_);
    }
    std::vector<IncomingMessage*> messages;
    messages.reserve(batch.size());
    for (auto& job : batch) messages.push_back(job.message.get());
    std::vector<bool> ok;
    const auto started = std::chrono::steady_clock::now();
    try {
      ok = backend_.commit(std::move(messages));
    } catch (const std::exception& e) {
      base::log("queue").error(std::string("queue: commit threw: ") + e.what());
    }
    if (metrics_) {
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
      metrics_->observe(metrics::Metric::CommitBatchSize, static_cast<double>(batch.size()));
      metrics_->observe(metrics::Metric::CommitSeconds, took.count());
    }
    if (ok.size() != batch.size()) ok.assign(batch.size(), false);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].ok = ok[i];
      if (ok[i]) {
        batch[i].message.reset();
      } else {
        batch[i].error = batch[i].message->write_error();
        try {
          backend_.abort(std::move(batch[i].message));
        } catch (const std::exception& e) {
          base::log("queue").error(std::string("queue: abort threw: ") + e.what());
        }
      }
    }
    {
      std::lock_guard lock(mutex_);
      ++rounds_;
      for (auto& job : batch) finished_.push_back(std::move(job));
    }
    waker_.wake();
  }
}

void Committer::deliver() {
  std::vector<Job> finished;
  {
    std::lock_guard lock(mutex_);
    finished.swap(finished_);
  }
  for (auto& job : finished) {
    --pending_;
    if (job.done) job.done(job.ok, job.error);
  }
}

}  // namespace estafette::queue
