// blocking_pool.h: a few threads for work that may block (NSS lookups, password hashing), so
// that a slow call delays only the sessions that wait for it, never the loop every session of
// the process shares.
//
// Threads: construct, submit() and destroy on the loop thread; the Work runs on a worker thread
// (and is destroyed there, so what it captured goes as soon as it is done); Done runs on the loop
// thread (from a Waker or a timer), never inside submit(). Work hands its result to Done through
// state they share (e.g. a shared_ptr both capture): the pool's mutex orders the worker's writes
// before the loop's reads.
// Bounds: at most `max_queued` works wait for a worker; submit() refuses more. A work not done
// within `timeout` gets Done(Failed); a worker's late answer is dropped, and a queued work whose
// time is over is never started. So a stuck call holds at most `threads` threads and
// `max_queued` small requests.
// Ownership: the caller keeps what Done touches alive or guards it (CallbackGuard). The loop must
// outlive the pool; destruction waits for the works in progress (at most one per thread) and
// calls no pending Done.
// Errors: a Work that throws is answered Done(Failed) at once and logged under `log_name`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lib/event/loop.h"

namespace estafette::event {

class BlockingPool final {
 public:
  enum class Outcome { Answered, Failed };  // Failed: timed out, or the work threw
  using Work = std::function<void()>;
  using Done = std::function<void(Outcome outcome)>;
  struct Options {
    std::size_t threads = 2;
    std::size_t max_queued = 64;
    std::chrono::milliseconds timeout{10000};
  };

  BlockingPool(Loop& loop, Options options, std::string log_name);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Loop thread. False (done is never called) when max_queued works wait already.
  bool submit(Work work, Done done);
  std::size_t pending() const { return waiting_.size(); }  // submitted, done not yet called

 private:
  struct Job {
    std::uint64_t id;
    Work work;
    Clock::time_point deadline;
  };
  struct Answer {
    std::uint64_t id;
    bool ok;
  };
  struct Waiting {
    Done done;
    TimerId timer;
  };
  void run();      // worker threads
  void deliver();  // loop thread
  void answer(std::uint64_t id, Outcome outcome);

  Loop& loop_;
  Options options_;
  std::string log_name_;
  Waker waker_;
  std::uint64_t next_id_ = 1;                           // loop thread only
  std::unordered_map<std::uint64_t, Waiting> waiting_;  // loop thread only
  std::mutex mutex_;
  std::condition_variable wanted_;
  std::deque<Job> queue_;             // guarded by mutex_
  std::vector<Answer> answers_;       // guarded by mutex_
  bool stopping_ = false;             // guarded by mutex_
  std::vector<std::thread> workers_;  // last: started when everything else is ready
};

}  // namespace estafette::event
