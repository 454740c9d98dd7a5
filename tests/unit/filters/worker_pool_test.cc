// The libmilter shim's worker pool (filters/libmilter_shim/worker_pool.h): it grows when tasks
// block, stops growing at its bound (tasks wait, noticed once), retires idle workers above its
// minimum (the process's thread count, /proc/self/status, comes back down) and joins everything
// on stop(). In thread_tests, so that the ThreadSanitizer build runs it.
#include "filters/libmilter_shim/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

namespace {

using estafette::milter_shim::WorkerPool;
using namespace std::chrono_literals;

// The process's thread count (kernel tasks: a thread that returned counts no more).
int process_threads() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

// A gate the blocking tasks wait at; every wait has a timeout.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [this] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

template <typename Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 5s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(ShimWorkerPool, BlockedTasksDoNotDelayOthers) {
  WorkerPool pool({1, 16, 30s});
  Gate gate;
  std::atomic<int> blocked{0}, fast{0};
  for (int i = 0; i < 8; ++i)  // more than the old fixed pool's 4
    pool.run([&] {
      ++blocked;
      gate.wait();
    });
  ASSERT_TRUE(eventually([&] { return blocked == 8; })) << blocked;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 8; ++i) pool.run([&] { ++fast; });
  EXPECT_TRUE(eventually([&] { return fast == 8; }, 2s)) << fast;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_GE(pool.live(), 9u);
  EXPECT_LE(pool.live(), 16u);
  EXPECT_FALSE(pool.take_full_notice());
  gate.open();
  pool.stop();
  EXPECT_EQ(pool.live(), 0u);
}

TEST(ShimWorkerPool, AtTheBoundTasksWaitAndItIsNoticedOnce) {
  WorkerPool pool({1, 3, 30s});
  Gate gate;
  std::atomic<int> blocked{0}, fast{0};
  for (int i = 0; i < 3; ++i)
    pool.run([&] {
      ++blocked;
      gate.wait();
    });
  ASSERT_TRUE(eventually([&] { return blocked == 3; }));
  for (int i = 0; i < 4; ++i) pool.run([&] { ++fast; });
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(fast, 0) << "a task ran although every worker was busy";
  EXPECT_EQ(pool.live(), 3u);
  EXPECT_TRUE(pool.take_full_notice());
  EXPECT_FALSE(pool.take_full_notice());
  gate.open();
  EXPECT_TRUE(eventually([&] { return fast == 4; }));
  // Full again later: not noticed again (the log line is once per module).
  Gate second;
  for (int i = 0; i < 4; ++i) pool.run([&] { second.wait(); });
  EXPECT_FALSE(pool.take_full_notice());
  second.open();
  pool.stop();
}

TEST(ShimWorkerPool, IdleWorkersAboveTheMinimumRetireAndAreJoined) {
  const int before = process_threads();
  ASSERT_GT(before, 0);
  WorkerPool pool({2, 16, 150ms});
  Gate gate;
  std::atomic<int> blocked{0};
  for (int i = 0; i < 10; ++i)
    pool.run([&] {
      ++blocked;
      gate.wait();
    });
  ASSERT_TRUE(eventually([&] { return blocked == 10; }));
  EXPECT_EQ(pool.live(), 10u);
  EXPECT_EQ(process_threads(), before + 10);
  gate.open();
  EXPECT_TRUE(eventually([&] { return pool.live() == 2; })) << pool.live();
  EXPECT_TRUE(eventually([&] { return process_threads() == before + 2; })) << process_threads();
  // The minimum stays past the idle time.
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(pool.live(), 2u);
  // Retired threads are joined by the next run() (and by stop()); the pool still works.
  std::atomic<bool> ran{false};
  pool.run([&] { ran = true; });
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
  pool.stop();
  EXPECT_EQ(pool.live(), 0u);
  EXPECT_EQ(process_threads(), before);
}

TEST(ShimWorkerPool, StopRunsQueuedTasksThenJoins) {
  WorkerPool pool({1, 1, 30s});
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i)
    pool.run([&] {
      std::this_thread::sleep_for(1ms);
      ++done;
    });
  pool.stop();
  EXPECT_EQ(done, 20);
  // Usable again after stop(), as after a module's fini and a new init.
  pool.run([&] { ++done; });
  pool.stop();
  EXPECT_EQ(done, 21);
}

}  // namespace
