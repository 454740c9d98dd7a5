// event::BlockingPool: results reach Done on the loop thread, a Work's captures die on its
// worker, a throwing Work is Failed, many Works on several threads (a ThreadSanitizer case:
// thread_tests), and destruction with Works pending calls no Done. The queue bound and the
// timeout are RecipientLookups' tests (tests/unit/esmtpd/recipient_lookups_test.cc).
#include "lib/event/blocking_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>

namespace estafette::event {
namespace {

using namespace std::chrono_literals;
using Outcome = BlockingPool::Outcome;

void run_until(Loop& loop, const std::function<bool()>& done,
               std::chrono::milliseconds limit = 5000ms) {
  auto until = Clock::now() + limit;
  std::function<void()> tick = [&] {
    if (done() || Clock::now() > until) {
      loop.stop();
      return;
    }
    loop.add_timer(2ms, tick);
  };
  loop.add_timer(0ms, tick);
  loop.run();
}

// Records the thread it is destroyed on.
struct Capture {
  explicit Capture(std::atomic<std::thread::id>* died_on) : died_on(died_on) {}
  ~Capture() { died_on->store(std::this_thread::get_id()); }
  std::atomic<std::thread::id>* died_on;
};

TEST(BlockingPool, ResultsReachDoneOnTheLoopAndCapturesDieOnTheWorker) {
  Loop loop;
  BlockingPool pool(loop, {.threads = 2, .max_queued = 8, .timeout = 10s}, "test");
  std::atomic<std::thread::id> died_on{};
  std::atomic<std::thread::id> worked_on{};
  auto result = std::make_shared<int>(0);
  auto capture = std::make_shared<Capture>(&died_on);
  bool called = false;
  const auto loop_thread = std::this_thread::get_id();
  ASSERT_TRUE(pool.submit(
      [result, capture = std::move(capture), &worked_on] {
        worked_on = std::this_thread::get_id();
        *result = 42;
      },
      [result, &called, loop_thread](Outcome o) {
        EXPECT_EQ(std::this_thread::get_id(), loop_thread);
        EXPECT_EQ(o, Outcome::Answered);
        EXPECT_EQ(*result, 42);
        called = true;
      }));
  run_until(loop, [&] { return called; });
  EXPECT_TRUE(called);
  EXPECT_NE(worked_on.load(), loop_thread);
  EXPECT_EQ(died_on.load(), worked_on.load());
  EXPECT_EQ(pool.pending(), 0u);
}

TEST(BlockingPool, AThrowingWorkIsFailed) {
  Loop loop;
  BlockingPool pool(loop, {.threads = 1, .max_queued = 8, .timeout = 10s}, "test");
  std::optional<Outcome> outcome;
  ASSERT_TRUE(pool.submit([] { throw std::runtime_error("no"); }, [&](Outcome o) { outcome = o; }));
  run_until(loop, [&] { return outcome.has_value(); });
  EXPECT_EQ(outcome, Outcome::Failed);
}

TEST(BlockingPool, ManyWorksOnSeveralThreads) {
  Loop loop;
  BlockingPool pool(loop, {.threads = 4, .max_queued = 1000, .timeout = 10s}, "test");
  constexpr int kWorks = 500;
  std::atomic<int> ran{0};
  int answered = 0;
  long sum = 0;
  for (int i = 0; i < kWorks; ++i) {
    auto result = std::make_shared<int>(0);
    ASSERT_TRUE(pool.submit(
        [result, i, &ran] {
          *result = i;
          ++ran;
        },
        [result, &answered, &sum](Outcome o) {
          EXPECT_EQ(o, Outcome::Answered);
          sum += *result;
          ++answered;
        }));
  }
  run_until(loop, [&] { return answered == kWorks; });
  EXPECT_EQ(answered, kWorks);
  EXPECT_EQ(ran.load(), kWorks);
  EXPECT_EQ(sum, static_cast<long>(kWorks) * (kWorks - 1) / 2);
}

TEST(BlockingPool, DestroyedWithWorksPendingCallsNoDone) {
  Loop loop;
  std::atomic<bool> release{false};
  bool called = false;
  std::thread releaser;
  {
    BlockingPool pool(loop, {.threads = 1, .max_queued = 8, .timeout = 10s}, "test");
    ASSERT_TRUE(pool.submit(
        [&release] {
          while (!release) std::this_thread::sleep_for(1ms);
        },
        [&called](Outcome) { called = true; }));
    ASSERT_TRUE(pool.submit([] {}, [&called](Outcome) { called = true; }));
    releaser = std::thread([&release] {
      std::this_thread::sleep_for(50ms);
      release = true;
    });
  }  // waits for the running Work; the queued one never starts
  releaser.join();
  run_until(
      loop, [] { return false; }, 100ms);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace estafette::event
