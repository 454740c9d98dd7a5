#include "lib/event/acceptor.h"

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include "lib/base/log.h"

namespace estafette::event {

namespace {

bool out_of_resources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

std::string millis(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

Acceptor::Acceptor(Loop& loop, int listen_fd, Options options, OnAccept on_accept)
    : loop_(loop),
      fd_(listen_fd),
      options_(std::move(options)),
      on_accept_(std::move(on_accept)),
      pause_(options_.min_pause) {
  arm();
}

Acceptor::~Acceptor() {
  if (retry_timer_) loop_.cancel_timer(retry_timer_);
  if (armed_) loop_.remove_fd(fd_);
}

void Acceptor::arm() {
  // remove/add rather than modify_fd: EPOLLEXCLUSIVE watches cannot be modified.
  loop_.add_fd(fd_, options_.events, [this](std::uint32_t) { on_ready(); });
  armed_ = true;
}

void Acceptor::on_ready() {
  for (std::size_t n = 0; options_.batch == 0 || n < options_.batch;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    ++attempts_;
    base::UniqueFd fd(
        ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      int error = errno;
      if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) return;
      if (out_of_resources(error)) {
        pause(error);
        return;
      }
      base::log(options_.logger).warning(std::string("accept: ") + base::errno_text(error));
      return;
    }
    if (paused_) resume();
    ++n;
    on_accept_(std::move(fd), peer, len);
  }
}

// Out of fds or memory: stop watching, try again after pause_ (logged once per run of failures).
void Acceptor::pause(int error) {
  ++failed_in_pause_;
  if (!paused_) {
    paused_ = true;
    paused_since_ = loop_.now();
    base::log(options_.logger)
        .warning(std::string("accept: ") + base::errno_text(error) +
                 "; pausing the listener (retry in " + millis(pause_) + ", up to every " +
                 millis(options_.max_pause) + " until an accept succeeds)");
  }
  if (armed_) {
    loop_.remove_fd(fd_);
    armed_ = false;
  }
  retry_timer_ = loop_.add_timer(pause_, [this] {
    retry_timer_ = 0;
    arm();  // level-triggered: a pending connection makes the loop call on_ready() at once
  });
  pause_ = std::min(pause_ * 2, options_.max_pause);
}

void Acceptor::resume() {
  base::log(options_.logger)
      .notice("accepting again after " + millis(loop_.now() - paused_since_) + " and " +
              std::to_string(failed_in_pause_) + " failed accepts");
  paused_ = false;
  failed_in_pause_ = 0;
  pause_ = options_.min_pause;
}

}  // namespace estafette::event
