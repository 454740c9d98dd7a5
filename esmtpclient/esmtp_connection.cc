#include "esmtpclient/esmtp_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "lib/base/log.h"

namespace estafette::esmtpclient {

namespace {
constexpr std::size_t kSendfileChunk = 1 << 20;
Poco::Logger& logger() {
  return base::log("esmtpclient");
}
}  // namespace

Connection::Connection(event::Loop& loop, ConnectionOwner& owner, std::uint64_t id, std::string key,
                       std::string helo_name, smtp::ClientTimeouts timeouts)
    : loop_(loop),
      owner_(owner),
      id_(id),
      key_(std::move(key)),
      session_(std::move(helo_name), timeouts),
      opened_(loop.now()) {}

Connection::~Connection() {
  if (!closed_ && fd_) log_close("shutdown");
  if (timer_) loop_.cancel_timer(timer_);
  if (fd_) loop_.remove_fd(fd_.get());
}

void Connection::connect(const sockaddr* addr, socklen_t len, std::string remote) {
  remote_ = std::move(remote);
  opened_ = loop_.now();
  fd_.reset(::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int err = 0;
  if (!fd_) {
    err = errno;
  } else if (int one = 1;
             ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    err = errno;  // commands are written in batches already; Nagle only adds delay
  } else if (::connect(fd_.get(), addr, len) != 0 && errno != EINPROGRESS) {
    err = errno;
  }
  if (err != 0) {
    // Report from the loop: the caller is still setting up.
    std::string reason = "connect to " + remote_ + ": " + base::errno_text(err);
    connecting_ = true;  // nothing is written to this socket
    loop_.post(guard_.wrap([this, reason] { fail(reason); }));
    return;
  }
  connecting_ = true;
  loop_.add_fd(fd_.get(), EPOLLIN | EPOLLOUT, [this](std::uint32_t ev) { on_events(ev); });
  want_write_ = true;
  arm_timer();
}

void Connection::start(smtp::Transaction transaction, MessageBody body) {
  body_ = std::move(body);
  body_active_ = false;
  trailer_queued_ = false;
  ++transactions_;
  dispatch(session_.start(std::move(transaction)));
}

void Connection::quit() {
  if (closed_) return;
  close_reason_ = "shutdown";
  dispatch(session_.quit());
}

void Connection::on_events(std::uint32_t events) {
  if (closed_) return;
  if (connecting_) {
    on_connect_result();
    if (closed_ || connecting_) return;
  }
  if (events & EPOLLOUT) {
    flush();
    if (closed_) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_replies();
}

void Connection::on_connect_result() {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    fail("connect to " + remote_ + ": " + base::errno_text(err));
    return;
  }
  connecting_ = false;
  logger().debug("conn=" + std::to_string(id_) + " connected to " + remote_);
  dispatch(session_.on_connected());
}

void Connection::read_replies() {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      parser_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      while (auto reply = parser_.next()) {
        dispatch(session_.on_reply(*reply));
        if (closed_) return;
      }
      if (parser_.error() != smtp::ReplyParser::Error::None) {
        fail("bad reply from " + remote_ + ": " + parser_.error_text());
        return;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    fail(n == 0 ? "connection closed by " + remote_
                : "read from " + remote_ + ": " + base::errno_text(errno));
    return;
  }
}

void Connection::dispatch(smtp::Actions actions) {
  for (auto& action : actions) {
    if (closed_) return;
    if (auto* send = std::get_if<smtp::SendBytes>(&action)) {
      if (out_start_ == out_.size()) {
        out_.clear();
        out_start_ = 0;
      }
      out_ += send->bytes;
    } else if (std::holds_alternative<smtp::SendBody>(action)) {
      body_active_ = true;
      trailer_queued_ = false;
      body_pos_ = body_.offset;
    } else if (auto* done = std::get_if<smtp::TransactionDone>(&action)) {
      body_ = MessageBody{};
      body_active_ = false;
      owner_.on_transaction_done(*this, *done);
    } else if (std::holds_alternative<smtp::Ready>(action)) {
      owner_.on_ready(*this);
    } else if (std::holds_alternative<smtp::Close>(action)) {
      do_close();
      return;
    }
  }
  if (closed_) return;
  if (!connecting_ && fd_) flush();
  if (!closed_) arm_timer();
}

void Connection::flush() {
  bool progress = false;
  while (!closed_) {
    if (out_start_ < out_.size()) {
      ssize_t n =
          ::send(fd_.get(), out_.data() + out_start_, out_.size() - out_start_, MSG_NOSIGNAL);
      if (n > 0) {
        out_start_ += static_cast<std::size_t>(n);
        progress = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      fail("write to " + remote_ + ": " + base::errno_text(errno));
      return;
    }
    if (!body_active_) break;
    std::uint64_t end = body_.offset + body_.size;
    if (body_pos_ < end) {
      off_t off = static_cast<off_t>(body_pos_);
      std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(end - body_pos_, kSendfileChunk));
      ssize_t n = ::sendfile(fd_.get(), body_.fd.get(), &off, want);
      if (n > 0) {
        body_pos_ += static_cast<std::uint64_t>(n);
        progress = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      fail(n == 0 ? std::string("queue file is shorter than its recorded body")
                  : "sendfile to " + remote_ + ": " + base::errno_text(errno));
      return;
    }
    if (!trailer_queued_) {
      // The wire form ends with CRLF; be safe if it does not.
      std::string trailer = ".\r\n";
      if (body_.size >= 2) {
        char last[2] = {0, 0};
        if (::pread(body_.fd.get(), last, 2, static_cast<off_t>(end - 2)) != 2 || last[0] != '\r' ||
            last[1] != '\n')
          trailer = "\r\n.\r\n";
      } else if (body_.size > 0) {
        trailer = "\r\n.\r\n";
      }
      out_ += trailer;
      trailer_queued_ = true;
      continue;
    }
    // Body and trailer written.
    body_active_ = false;
    body_ = MessageBody{};
    dispatch(session_.on_body_sent());
    return;
  }
  if (closed_) return;
  if (progress && body_active_) arm_timer();  // data-block timeout restarts on progress
  update_interest();
}

void Connection::update_interest() {
  bool pending = out_start_ < out_.size() || body_active_;
  if (pending != want_write_ && fd_ && !connecting_) {
    want_write_ = pending;
    loop_.modify_fd(fd_.get(), EPOLLIN | (pending ? EPOLLOUT : 0u));
  }
}

void Connection::arm_timer() {
  if (timer_) loop_.cancel_timer(timer_);
  timer_ = loop_.add_timer(session_.timeout(), [this] {
    timer_ = 0;
    if (close_reason_.empty()) {
      close_reason_ =
          session_.idle() ? "idle" : std::string("timeout in ") + smtp::to_string(session_.state());
    }
    dispatch(session_.on_timeout());
  });
}

void Connection::fail(const std::string& reason) {
  if (closed_) return;
  if (close_reason_.empty()) close_reason_ = reason;
  dispatch(session_.on_closed(reason));
  do_close();
}

void Connection::do_close() {
  if (closed_) return;
  closed_ = true;
  if (fd_ && out_start_ < out_.size() && !connecting_) {  // a last QUIT, best effort
    [[maybe_unused]] auto n =
        ::send(fd_.get(), out_.data() + out_start_, out_.size() - out_start_, MSG_NOSIGNAL);
  }
  if (timer_) loop_.cancel_timer(timer_);
  timer_ = 0;
  if (fd_) {
    loop_.remove_fd(fd_.get());
    fd_.reset();
  }
  body_ = MessageBody{};
  log_close(close_reason_.empty() ? "QUIT" : close_reason_);
  owner_.on_closed(*this);
}

void Connection::log_close(const std::string& reason) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(loop_.now() - opened_);
  logger().information("conn=" + std::to_string(id_) + " remote=" + remote_ +
                       " transactions=" + std::to_string(transactions_) +
                       " time=" + std::to_string(ms.count()) + "ms closed=" + reason);
}

}  // namespace estafette::esmtpclient
