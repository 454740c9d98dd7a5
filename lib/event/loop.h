// loop.h: the one event loop of a process: epoll for fds, a timer heap, posted callbacks,
// signals (signalfd) and wakers (eventfd) that other threads use to hand work back to the loop.
// Everything except Waker::wake() runs on the loop's thread. Callbacks may add or remove any
// fd or timer, including their own, while being dispatched. CallbackGuard ties callbacks to the
// lifetime of the object that handed them out, so a late callback never reaches a dead object.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/base/fd.h"

namespace estafette::event {

using Clock = std::chrono::steady_clock;
using TimerId = std::uint64_t;

class Loop;

// A thread-safe doorbell: wake() from any thread makes the loop call the callback once (wakes
// that arrive before the loop gets to it are merged).
class Waker final {
 public:
  Waker(Loop& loop, std::function<void()> on_wake);
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  void wake();

 private:
  Loop& loop_;
  base::UniqueFd fd_;
  std::function<void()> on_wake_;
};

// A lifetime token for callbacks: an object owns a CallbackGuard and hands out wrap(fn) instead
// of fn; a wrapped callback does nothing once the guard is destroyed or cancel_all() was called
// after it was wrapped. Loop thread only (the token is not atomic); not copyable, since a copy
// would share the object's lifetime with another.
class CallbackGuard final {
 public:
  CallbackGuard() = default;
  CallbackGuard(const CallbackGuard&) = delete;
  CallbackGuard& operator=(const CallbackGuard&) = delete;

  template <class F>
  auto wrap(F fn) const {
    return [token = std::weak_ptr<const char>(token_), fn = std::move(fn)](auto&&... args) mutable {
      if (auto alive = token.lock()) fn(std::forward<decltype(args)>(args)...);
    };
  }
  // Every callback wrapped so far goes dead; later wraps work again.
  void cancel_all() { token_ = std::make_shared<const char>('\0'); }

 private:
  std::shared_ptr<const char> token_ = std::make_shared<const char>('\0');
};

class Loop final {
 public:
  using IoCallback = std::function<void(std::uint32_t events)>;

  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Watch fd for events (EPOLLIN, EPOLLOUT, ...; EPOLLERR/EPOLLHUP are always reported).
  void add_fd(int fd, std::uint32_t events, IoCallback callback);
  void modify_fd(int fd, std::uint32_t events);
  void remove_fd(int fd);  // safe to call for an fd that is not watched

  TimerId add_timer(Clock::duration delay, std::function<void()> callback);
  void cancel_timer(TimerId id);  // safe to call for a fired or cancelled timer

  // Runs callback on the loop after the current round of fd events and due timers, in the order
  // posted; a callback posted by a posted callback runs in the next round (never starves I/O).
  // Wrap it with a CallbackGuard when its target may be gone by then.
  void post(std::function<void()> callback);

  // Calls callback on the loop when signo arrives; the signal is blocked for the process.
  void on_signal(int signo, std::function<void()> callback);

  void run();  // until stop(); then a later run() runs again
  // From the loop thread. Called before run() (set-up code whose peer is already gone), it makes
  // the next run() return at once instead of being lost.
  void stop();
  Clock::time_point now() const { return Clock::now(); }

 private:
  struct Watch {
    IoCallback callback;
    std::uint64_t generation;
  };
  int next_timeout_ms() const;
  void fire_timers();
  void handle_signals();
  void run_posted();

  base::UniqueFd epoll_;
  base::UniqueFd signal_fd_;
  bool stop_requested_ = false;
  std::uint64_t generation_ = 0;
  std::unordered_map<int, std::shared_ptr<Watch>> watches_;
  TimerId next_timer_ = 1;
  std::multimap<Clock::time_point, TimerId> timer_order_;
  std::unordered_map<TimerId, std::pair<Clock::time_point, std::function<void()>>> timers_;
  std::unordered_map<int, std::function<void()>> signal_handlers_;
  std::vector<std::function<void()>> posted_;
};

}  // namespace estafette::event
