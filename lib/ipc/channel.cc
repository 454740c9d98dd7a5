#include "lib/ipc/channel.h"

#include <sys/socket.h>

#include <cerrno>

namespace estafette::ipc {

Channel::Channel(event::Loop& loop, base::UniqueFd fd, FrameHandler on_frame, CloseHandler on_close)
    : loop_(loop),
      fd_(std::move(fd)),
      on_frame_(std::move(on_frame)),
      on_close_(std::move(on_close)) {
  base::set_nonblocking(fd_.get());
  loop_.add_fd(fd_.get(), EPOLLIN, [this](std::uint32_t ev) { on_events(ev); });
}

Channel::~Channel() {
  if (fd_) loop_.remove_fd(fd_.get());
}

void Channel::send(std::string frame) {
  if (!fd_) return;
  if (out_start_ == out_.size()) {
    out_.clear();
    out_start_ = 0;
  }
  out_.append(frame);
  flush();
}

void Channel::flush() {
  while (fd_ && out_start_ < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + out_start_, out_.size() - out_start_, MSG_NOSIGNAL);
    if (n > 0) {
      out_start_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    close();
    return;
  }
  if (!fd_) return;
  bool pending = out_start_ < out_.size();
  if (pending != want_write_) {
    want_write_ = pending;
    loop_.modify_fd(fd_.get(), EPOLLIN | (pending ? EPOLLOUT : 0u));
  }
}

void Channel::on_events(std::uint32_t events) {
  if (events & EPOLLOUT) flush();
  if (!fd_) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n > 0) {
        splitter_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        if (static_cast<std::size_t>(n) < sizeof buf) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      // EOF or error: deliver what is complete, then close.
      while (auto f = splitter_.next()) on_frame_(*f);
      close();
      return;
    }
    // on_frame_ may destroy this channel's owner only through on_close; frames are handled here.
    while (fd_) {
      auto f = splitter_.next();
      if (!f) break;
      on_frame_(*f);
    }
    if (fd_ && splitter_.error()) close();
  }
}

void Channel::close() {
  if (!fd_) return;
  loop_.remove_fd(fd_.get());
  fd_.reset();
  if (on_close_) on_close_();
}

}  // namespace estafette::ipc
