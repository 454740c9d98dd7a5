// The event loop: fds, timers (order, cancel), signals, wakers from other threads, and removal
// of watches from inside callbacks.
#include "lib/event/loop.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace estafette::event {
namespace {

using namespace std::chrono_literals;

TEST(EventLoop, TimersFireInOrderAndCancel) {
  Loop loop;
  std::vector<int> order;
  loop.add_timer(30ms, [&] { order.push_back(3); });
  loop.add_timer(10ms, [&] { order.push_back(1); });
  auto cancelled = loop.add_timer(20ms, [&] { order.push_back(2); });
  loop.add_timer(40ms, [&] { loop.stop(); });
  loop.cancel_timer(cancelled);
  loop.cancel_timer(cancelled);  // twice is harmless
  auto t0 = Clock::now();
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
  EXPECT_GE(Clock::now() - t0, 40ms);
}

TEST(EventLoop, ReadsAndRemovesItselfInCallback) {
  Loop loop;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  base::UniqueFd a(sv[0]), b(sv[1]);
  int calls = 0;
  loop.add_fd(a.get(), EPOLLIN, [&](std::uint32_t ev) {
    EXPECT_TRUE(ev & EPOLLIN);
    char c;
    ASSERT_EQ(::read(a.get(), &c, 1), 1);
    ++calls;
    loop.remove_fd(a.get());
    loop.add_timer(20ms, [&] { loop.stop(); });
  });
  ASSERT_EQ(::write(b.get(), "xy", 2), 2);
  loop.run();
  EXPECT_EQ(calls, 1);  // removed after the first byte, the second never dispatched
}

TEST(EventLoop, WakerFromAnotherThread) {
  Loop loop;
  int wakes = 0;
  Waker waker(loop, [&] {
    ++wakes;
    loop.stop();
  });
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    waker.wake();
  });
  loop.add_timer(5s, [&] { loop.stop(); });  // guard against a lost wake
  loop.run();
  t.join();
  EXPECT_EQ(wakes, 1);
}

TEST(EventLoop, Signals) {
  Loop loop;
  bool got = false;
  loop.on_signal(SIGUSR1, [&] {
    got = true;
    loop.stop();
  });
  loop.add_timer(5s, [&] { loop.stop(); });
  ::kill(::getpid(), SIGUSR1);
  loop.run();
  EXPECT_TRUE(got);
}

TEST(EventLoop, PostRunsInOrderAfterTheRoundAndRepostsWaitForTheNext) {
  Loop loop;
  std::vector<std::string> order;
  loop.post([&] {
    order.push_back("a");
    loop.post([&] {
      order.push_back("c");
      loop.stop();
    });
  });
  loop.post([&] { order.push_back("b"); });
  // A timer due now fires in the same round, before the posted callbacks.
  loop.add_timer(0ms, [&] { order.push_back("timer"); });
  loop.run();
  EXPECT_EQ(order, (std::vector<std::string>{"timer", "a", "b", "c"}));
}

TEST(EventLoop, PostDoesNotStarveFds) {
  Loop loop;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  base::UniqueFd a(sv[0]), b(sv[1]);
  ASSERT_EQ(::write(b.get(), "x", 1), 1);
  int posts = 0;
  std::function<void()> again = [&] {
    ++posts;
    loop.post(again);
  };
  loop.post(again);
  loop.add_fd(a.get(), EPOLLIN, [&](std::uint32_t) { loop.stop(); });
  loop.run();
  EXPECT_LE(posts, 2);  // the fd was served while the chain of posts went on
}

TEST(CallbackGuard, WrappedCallbacksDieWithTheGuardOrCancelAll) {
  int calls = 0;
  std::function<void(int)> late;
  std::function<void()> cancelled, kept;
  {
    CallbackGuard guard;
    late = guard.wrap([&](int n) { calls += n; });
    late(1);
    EXPECT_EQ(calls, 1);
    cancelled = guard.wrap([&] { calls += 100; });
    guard.cancel_all();
    cancelled();
    EXPECT_EQ(calls, 1);
    kept = guard.wrap([&] { calls += 10; });
    kept();
    EXPECT_EQ(calls, 11);
  }
  late(1);
  kept();
  EXPECT_EQ(calls, 11);
}

TEST(CallbackGuard, AGuardedPostToADestroyedObjectDoesNothing) {
  Loop loop;
  struct Owner {
    CallbackGuard guard;
  };
  int hits = 0;
  auto owner = std::make_unique<Owner>();
  loop.post(owner->guard.wrap([&hits] { ++hits; }));
  loop.post([&] { loop.stop(); });
  owner.reset();
  loop.run();
  EXPECT_EQ(hits, 0);
}

// A stop() before run() (set-up code whose peer is already gone) ends the next run() at once;
// the run after that runs normally again.
TEST(EventLoop, StopBeforeRunEndsTheNextRun) {
  Loop loop;
  bool timer_fired = false;
  auto guard = loop.add_timer(5s, [&] {
    timer_fired = true;
    loop.stop();
  });
  loop.stop();
  auto t0 = Clock::now();
  loop.run();
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_FALSE(timer_fired);
  loop.cancel_timer(guard);
  loop.add_timer(10ms, [&] {
    timer_fired = true;
    loop.stop();
  });
  loop.run();
  EXPECT_TRUE(timer_fired);
}

}  // namespace
}  // namespace estafette::event
