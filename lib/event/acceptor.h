// acceptor.h: accepts connections on a listening socket from the loop, and survives running
// out of fds or memory. A failing accept4 with EMFILE/ENFILE/ENOBUFS/ENOMEM leaves the
// connection in the backlog, so a level-triggered listener would wake the loop again at once
// and spin at 100% CPU; instead the Acceptor takes the listener off the loop, logs one line,
// and tries again after a pause (Options::min_pause, doubling to max_pause while the accepts
// keep failing, back to min_pause after a success); it logs one more line when it accepts again.
// EAGAIN ends a round; EINTR, ECONNABORTED and EPROTO are retried at once (the next pending
// connection); any other error is logged and ends the round (the listener stays armed).
//
// Loop thread only. The Acceptor borrows the loop and the listening fd (both outlive it; the
// owner closes the fd after destroying the Acceptor) and owns its watch and its retry timer,
// both removed by the destructor. Each accepted connection is non-blocking and close-on-exec
// and goes to on_accept with the peer's address; on_accept may not destroy the Acceptor.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "lib/base/fd.h"
#include "lib/event/loop.h"

namespace estafette::event {

class Acceptor final {
 public:
  struct Options {
    std::uint32_t events = EPOLLIN;  // e.g. EPOLLIN | EPOLLEXCLUSIVE for a shared socket
    std::size_t batch = 64;          // connections accepted per wake-up; 0 = until EAGAIN
    Clock::duration min_pause = std::chrono::milliseconds(100);
    Clock::duration max_pause = std::chrono::seconds(1);
    std::string logger = "event";  // base::log() name for the pause/resume lines
  };
  // peer/peer_len: the address accept4 returned (peer_len is 0 when the family has none).
  using OnAccept =
      std::function<void(base::UniqueFd fd, const sockaddr_storage& peer, socklen_t peer_len)>;

  // Starts watching listen_fd at once.
  Acceptor(Loop& loop, int listen_fd, Options options, OnAccept on_accept);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  int fd() const { return fd_; }
  bool paused() const { return paused_; }
  // accept4 calls so far, successful or not (for tests and counters).
  std::uint64_t attempts() const { return attempts_; }

 private:
  void arm();
  void on_ready();
  void pause(int error);
  void resume();

  Loop& loop_;
  int fd_;
  Options options_;
  OnAccept on_accept_;
  bool paused_ = false;
  bool armed_ = false;
  TimerId retry_timer_ = 0;
  Clock::duration pause_{};            // current pause; doubles while accepts keep failing
  Clock::time_point paused_since_{};   // start of the current run of failures
  std::uint64_t failed_in_pause_ = 0;  // failed accepts since paused_since_
  std::uint64_t attempts_ = 0;
};

}  // namespace estafette::event
