// committer.h: runs Backend::commit() on a worker thread in batches and reports each result back
// on the loop thread, so the loop never blocks on fsync.
//
// Threads: construct, commit(), pending() and destroy on the loop thread; done callbacks run on
// the loop thread (from a Waker), never inside commit(). The worker takes every message handed
// over since its last round and commits them with one Backend::commit() call.
// Ownership: the Committer owns a message from commit() on; it destroys a committed message and
// abort()s a failed one. The loop and the backend must outlive the Committer.
// Errors: a failed commit (or a throwing backend) reports done(false, errno of the failure or 0,
// from IncomingMessage::write_error()); the session answers 451, or 452 for a full disk.
// Destruction stops the worker after it has committed everything handed over, and reports those
// results before returning; commit() called from a done callback during destruction reports
// done(false, 0) at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/event/loop.h"
#include "lib/metrics/shm_file.h"
#include "lib/queue/backend.h"

namespace estafette::queue {

class Committer final {
 public:
  using Done = std::function<void(bool ok, int error)>;

  // Starts the worker thread. metrics (optional, must outlive the Committer): each round's
  // batch size and duration (the writes left and the fsyncs) are observed there.
  Committer(event::Loop& loop, Backend& backend, metrics::Writer* metrics = nullptr);
  ~Committer();  // stops and joins it, reports the rest
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Loop thread; done(ok, error) is called later on the loop thread.
  void commit(std::unique_ptr<IncomingMessage> message, Done done);
  // Commits handed over whose done has not been called yet.
  std::size_t pending() const { return pending_; }
  // Backend::commit() calls made so far (for statistics and tests).
  std::uint64_t rounds() const;

 private:
  struct Job {
    std::unique_ptr<IncomingMessage> message;
    Done done;
    bool ok = false;
    int error = 0;  // the message's write_error() when it failed
  };
  void work();     // worker thread
  void deliver();  // loop thread

  Backend& backend_;
  metrics::Writer* metrics_;
  event::Waker waker_;
  std::size_t pending_ = 0;  // loop thread only
  mutable std::mutex mutex_;
  std::condition_variable wanted_;
  std::vector<Job> incoming_;  // guarded by mutex_
  std::vector<Job> finished_;  // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  std::uint64_t rounds_ = 0;   // guarded by mutex_
  std::thread worker_;         // last: started when everything else is ready
};

}  // namespace estafette::queue
