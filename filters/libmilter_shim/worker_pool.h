// worker_pool.h: the threads the libmilter shim (shim.cc) runs xxfi_* callbacks on. A pool that
// grows: a task that finds no idle worker starts one, up to Limits::max, so a callback that
// blocks holds only its own thread; idle workers above Limits::keep retire after Limits::idle.
//
// Threads: run() and take_full_notice() from any thread (the shim calls run() on esmtpd's loop);
// tasks run on the pool's threads. Ownership: the pool owns every thread it starts, and joins
// each one, retired ones included (run() and stop() join those that retired), so after stop()
// none of them is left running code of the module (which may be dlclose()d next).
// Errors: run() throws std::system_error when no thread can be started and none runs (the task
// is not queued then); when some run, the task waits for one of them. At the bound tasks wait
// in order; the first time that happens take_full_notice() says so once, for the caller to log.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace estafette::milter_shim {

class WorkerPool final {
 public:
  using Task = std::function<void()>;
  struct Limits {
    unsigned keep = 4;                      // workers kept when idle
    unsigned max = 64;                      // workers at most
    std::chrono::milliseconds idle{30000};  // a worker above keep retires after this idle time
  };

  explicit WorkerPool(Limits limits) : limits_(limits) {
    if (limits_.max == 0) limits_.max = 1;
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  ~WorkerPool() { stop(); }

  // Queues task; an idle worker takes it, or a new one when none is idle and fewer than max run.
  void run(Task task) {
    std::vector<std::thread> retired;
    {
      std::lock_guard lock(mu_);
      retired = take_retired();
      ready_.push_back(std::move(task));
      if (!stopping_ && ready_.size() > idle_) {
        if (live_ < limits_.max) {
          try {
            start_worker();
          } catch (const std::system_error&) {
            if (live_ == 0) {
              ready_.pop_back();
              throw;
            }
            note_full();  // the running workers take it in turn
          }
        } else {
          note_full();
        }
      }
    }
    cv_.notify_one();
    for (std::thread& t : retired) t.join();
  }

  // Runs every queued task (and those they queue), then joins every thread. The pool can be
  // used again afterwards.
  void stop() {
    std::map<std::uint64_t, std::thread> all;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (;;) {
      {
        std::lock_guard lock(mu_);
        all.swap(threads_);
        retired_.clear();
      }
      if (all.empty()) break;
      for (auto& [id, t] : all) t.join();
      all.clear();
    }
    std::lock_guard lock(mu_);
    stopping_ = false;
  }

  // True once: the first time a task waited because max workers were busy.
  bool take_full_notice() {
    std::lock_guard lock(mu_);
    bool notice = full_pending_;
    full_pending_ = false;
    return notice;
  }

  // Workers running (busy or idle; retired ones not counted).
  unsigned live() const {
    std::lock_guard lock(mu_);
    return live_;
  }
  const Limits& limits() const { return limits_; }

 private:
  // Under mu_.
  void start_worker() {
    std::uint64_t id = next_id_++;
    threads_.emplace(id, std::thread([this, id] { work(id); }));
    ++live_;
    ++idle_;
  }
  void note_full() {
    if (full_noted_) return;
    full_noted_ = true;
    full_pending_ = true;
  }
  // Under mu_: the threads of retired workers, to join outside the lock (they have returned
  // from work() or are about to).
  std::vector<std::thread> take_retired() {
    std::vector<std::thread> out;
    for (std::uint64_t id : retired_) {
      auto it = threads_.find(id);
      out.push_back(std::move(it->second));
      threads_.erase(it);
    }
    retired_.clear();
    return out;
  }

  // Counted idle from start_worker() on: a thread still starting takes a queued task too.
  void work(std::uint64_t id) {
    std::unique_lock lock(mu_);
    for (;;) {
      bool woken =
          cv_.wait_for(lock, limits_.idle, [this] { return stopping_ || !ready_.empty(); });
      if (!ready_.empty()) {
        Task task = std::move(ready_.front());
        ready_.pop_front();
        --idle_;
        lock.unlock();
        task();
        task = nullptr;  // its captures go before the lock is taken again
        lock.lock();
        ++idle_;
        continue;
      }
      if (stopping_ || (!woken && live_ > limits_.keep)) {
        --idle_;
        --live_;
        if (!stopping_) retired_.push_back(id);  // run() joins it (or stop())
        return;
      }
    }
  }

  Limits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> ready_;
  std::map<std::uint64_t, std::thread> threads_;  // every thread not yet joined
  std::vector<std::uint64_t> retired_;            // ids of workers that returned from work()
  std::uint64_t next_id_ = 1;
  unsigned live_ = 0;
  unsigned idle_ = 0;  // workers waiting for a task, or starting
  bool stopping_ = false;
  bool full_noted_ = false;
  bool full_pending_ = false;
};

}  // namespace estafette::milter_shim
