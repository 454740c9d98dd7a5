#include "lib/event/loop.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

namespace estafette::event {

namespace {
[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + base::errno_text(errno));
}
}  // namespace

Loop::Loop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!epoll_) fail("epoll_create1");
}

Loop::~Loop() = default;

void Loop::add_fd(int fd, std::uint32_t events, IoCallback callback) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl add");
  watches_[fd] = std::make_shared<Watch>(Watch{std::move(callback), ++generation_});
}

void Loop::modify_fd(int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) fail("epoll_ctl mod");
}

void Loop::remove_fd(int fd) {
  if (watches_.erase(fd) > 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

TimerId Loop::add_timer(Clock::duration delay, std::function<void()> callback) {
  TimerId id = next_timer_++;
  auto when = Clock::now() + delay;
  timers_.emplace(id, std::make_pair(when, std::move(callback)));
  timer_order_.emplace(when, id);
  return id;
}

void Loop::cancel_timer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  auto range = timer_order_.equal_range(it->second.first);
  for (auto o = range.first; o != range.second; ++o) {
    if (o->second == id) {
      timer_order_.erase(o);
      break;
    }
  }
  timers_.erase(it);
}

void Loop::post(std::function<void()> callback) {
  posted_.push_back(std::move(callback));
}

void Loop::run_posted() {
  // Only what was posted before this round: a callback that posts again waits for the next.
  std::vector<std::function<void()>> batch;
  batch.swap(posted_);
  for (auto& callback : batch) callback();
}

void Loop::on_signal(int signo, std::function<void()> callback) {
  signal_handlers_[signo] = std::move(callback);
  sigset_t set;
  sigemptyset(&set);
  for (auto& [s, _] : signal_handlers_) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) fail("sigprocmask");
  int fd = ::signalfd(signal_fd_ ? signal_fd_.get() : -1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) fail("signalfd");
  if (!signal_fd_) {
    signal_fd_.reset(fd);
    add_fd(fd, EPOLLIN, [this](std::uint32_t) { handle_signals(); });
  }
}

void Loop::handle_signals() {
  signalfd_siginfo info;
  while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
    auto it = signal_handlers_.find(static_cast<int>(info.ssi_signo));
    if (it != signal_handlers_.end()) it->second();
  }
}

int Loop::next_timeout_ms() const {
  if (!posted_.empty()) return 0;
  if (timer_order_.empty()) return -1;
  auto delta = timer_order_.begin()->first - Clock::now();
  if (delta <= Clock::duration::zero()) return 0;
  // Round up so a timer never fires early.
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(delta).count());
}

void Loop::fire_timers() {
  auto now = Clock::now();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    TimerId id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    auto callback = std::move(it->second.second);
    timers_.erase(it);
    callback();
  }
}

void Loop::run() {
  std::vector<epoll_event> events(256);
  while (!stop_requested_) {
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                         next_timeout_ms());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    std::uint64_t dispatch_generation = generation_;
    for (int i = 0; i < n && !stop_requested_; ++i) {
      auto it = watches_.find(events[i].data.fd);
      if (it == watches_.end()) continue;
      // Hold a reference: the callback may remove itself. Skip watches registered during this
      // dispatch round (the fd number may have been reused for a new watch).
      auto watch = it->second;
      if (watch->generation > dispatch_generation) continue;
      watch->callback(events[i].events);
    }
    fire_timers();
    run_posted();
  }
  stop_requested_ = false;
}

void Loop::stop() {
  stop_requested_ = true;
}

Waker::Waker(Loop& loop, std::function<void()> on_wake)
    : loop_(loop), fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), on_wake_(std::move(on_wake)) {
  if (!fd_) fail("eventfd");
  loop_.add_fd(fd_.get(), EPOLLIN, [this](std::uint32_t) {
    std::uint64_t value;
    while (::read(fd_.get(), &value, sizeof value) == sizeof value) {
    }
    on_wake_();
  });
}

Waker::~Waker() {
  loop_.remove_fd(fd_.get());
}

void Waker::wake() {
  std::uint64_t one = 1;
  // A full counter (never in practice) still leaves the fd readable, so the wake is not lost.
  [[maybe_unused]] auto n = ::write(fd_.get(), &one, sizeof one);
}

}  // namespace estafette::event
