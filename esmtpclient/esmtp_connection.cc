#include "esmtpclient/esmtp_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "lib/base/log.h"
#include "lib/base/net.h"

namespace estafette::esmtpclient {

namespace {
constexpr std::size_t kSendfileChunk = 1 << 20;
constexpr std::size_t kTlsBodyBlock = 64 * 1024;  // body read per block when TLS carries it
Poco::Logger& logger() {
  return base::log("esmtpclient");
}
}  // namespace

Connection::Connection(event::Loop& loop, ConnectionOwner& owner, std::uint64_t id, std::string key,
                       std::string helo_name, smtp::ClientTimeouts timeouts,
                       smtp::ClientSecurity security, TlsSetup tls, smtp::Protocol protocol)
    : loop_(loop),
      owner_(owner),
      id_(id),
      key_(std::move(key)),
      session_(std::move(helo_name), timeouts, std::move(security), protocol),
      tls_setup_(std::move(tls)),
      opened_(loop.now()) {}

std::string Connection::tls_summary() const {
  std::string policy = tls_setup_.policy.empty() ? "none" : tls_setup_.policy;
  return (tls_info_.empty() ? "tls=none" : "tls=" + tls_info_) + " policy=" + policy;
}

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
             addr->sa_family != AF_UNIX &&
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
  txn_started_.reset();
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
  if (handshaking_) {
    step_handshake();
    return;
  }
  tls_wants_write_ = false;
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
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&local), &local_len) == 0)
    local_ip_ = base::address_text(reinterpret_cast<sockaddr*>(&local));
  logger().debug("conn=" + std::to_string(id_) + " connected to " + remote_);
  if (session_.tls_active()) {  // implicit TLS: the session was made with TLS on
    start_tls();                // and hears of the connection once TLS is up
    return;
  }
  dispatch(session_.on_connected());
}

void Connection::start_tls() {
  if (!tls_setup_.context) {
    fail("TLS asked for without a TLS context");
    return;
  }
  if (parser_.has_partial()) {
    // Plaintext after the 220 would be read as if it came through TLS (CVE-2011-1431 class).
    fail("response injection: " + remote_ + " sent more after its 220 to STARTTLS");
    return;
  }
  try {
    tls_ = std::make_unique<tls::Stream>(tls_setup_.context, fd_.get(), tls_setup_.options);
  } catch (const std::exception& e) {
    fail(std::string("TLS setup: ") + e.what());
    return;
  }
  handshaking_ = true;
  step_handshake();
}

void Connection::step_handshake() {
  auto status = tls_->handshake();
  if (status == tls::Stream::Status::WantRead || status == tls::Stream::Status::WantWrite) {
    tls_wants_write_ = status == tls::Stream::Status::WantWrite;
    update_interest();
    return;
  }
  handshaking_ = false;
  tls_wants_write_ = false;
  if (tls_setup_.metrics)
    tls_setup_.metrics->add(
        metrics::Metric::ClientTlsHandshakes,
        static_cast<std::size_t>(status == tls::Stream::Status::Ok ? metrics::Handshake::Ok
                                                                   : metrics::Handshake::Failed));
  if (status != tls::Stream::Status::Ok) {
    tls_failed_ = true;
    tls_error_ = tls_->reason();
    fail("451 4.7.5 TLS handshake with " + remote_ + " failed: " + tls_->reason());
    return;
  }
  tls::SessionInfo info = tls_->info();
  tls_session_ = info;
  std::string cert;
  switch (info.peer_cert) {
    case tls::SessionInfo::PeerCert::Verified:
      cert = "verified";
      break;
    case tls::SessionInfo::PeerCert::Failed:
      cert = "unverified (" + info.verify_error + ")";
      break;
    case tls::SessionInfo::PeerCert::None:
      cert = "none";
      break;
    case tls::SessionInfo::PeerCert::NotAsked:
      cert = "not checked";
      break;
  }
  if (info.dane == tls::SessionInfo::Dane::Verified)
    cert = "dane (" + info.dane_match + ")";
  else if (info.dane == tls::SessionInfo::Dane::Failed)
    cert = "dane-failed (" + info.verify_error + ")";
  tls_info_ = info.version + "/" + info.cipher + " cert=" + cert;
  if (info.resumed) tls_info_ += " resumed";
  std::string refusal;
  if (tls_setup_.require_dane && info.dane != tls::SessionInfo::Dane::Verified) {
    refusal = "DANE: no TLSA record of " + remote_ + " matches its certificate (" +
              info.verify_error + ")";
  } else if (tls_setup_.require_verified &&
             info.peer_cert != tls::SessionInfo::PeerCert::Verified) {
    refusal = "certificate of " + remote_ + " not accepted under policy " + tls_setup_.policy +
              ": " + (info.verify_error.empty() ? cert : info.verify_error);
  }
  logger().debug("conn=" + std::to_string(id_) + " " + tls_summary());
  if (session_.state() == smtp::ClientSession::State::Connecting) {  // implicit TLS
    if (!refusal.empty()) {
      policy_refused_ = true;
      fail("451 4.7.5 " + refusal);
      return;
    }
    dispatch(session_.on_connected());
  } else {
    dispatch(session_.on_tls_started(refusal));
  }
  if (!closed_) read_replies();  // a greeting may wait inside OpenSSL already
}

Connection::IoResult Connection::from_tls(tls::Stream::Result r, bool reading) {
  switch (r.status) {
    case tls::Stream::Status::Ok:
      return {Io::Done, r.bytes};
    case tls::Stream::Status::WantWrite:
      tls_wants_write_ = true;
      return {Io::Again};
    case tls::Stream::Status::WantRead:
      return {Io::Again};
    case tls::Stream::Status::Closed:
      if (reading) return {Io::Eof};
      break;
    case tls::Stream::Status::Failed:
      break;
  }
  return {Io::Error, 0,
          (reading ? "TLS read from " : "TLS write to ") + remote_ + ": " + tls_->reason()};
}

Connection::IoResult Connection::receive(char* buffer, std::size_t size) {
  if (tls_) return from_tls(tls_->read(buffer, size), true);
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buffer, size, 0);
    if (n > 0) return {Io::Done, static_cast<std::size_t>(n)};
    if (n == 0) return {Io::Eof};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {Io::Again};
    return {Io::Error, 0, "read from " + remote_ + ": " + base::errno_text(errno)};
  }
}

Connection::IoResult Connection::send_some(const char* data, std::size_t size) {
  if (tls_) return from_tls(tls_->write(data, size), false);
  for (;;) {
    ssize_t n = ::send(fd_.get(), data, size, MSG_NOSIGNAL);
    if (n >= 0) return {Io::Done, static_cast<std::size_t>(n)};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {Io::Again};
    return {Io::Error, 0, "write to " + remote_ + ": " + base::errno_text(errno)};
  }
}

void Connection::read_replies() {
  char buf[16384];
  for (;;) {
    IoResult r = receive(buf, sizeof buf);
    if (r.io == Io::Done) {
      parser_.feed(std::string_view(buf, r.bytes));
      while (auto reply = parser_.next()) {
        dispatch(session_.on_reply(*reply));
        if (closed_ || handshaking_) return;  // the handshake reads the socket from here on
      }
      if (parser_.error() != smtp::ReplyParser::Error::None) {
        fail("bad reply from " + remote_ + ": " + parser_.error_text());
        return;
      }
      continue;
    }
    if (r.io == Io::Again) {
      if (tls_wants_write_) update_interest();
      return;
    }
    fail(r.io == Io::Eof ? "connection closed by " + remote_ : r.error);
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
    } else if (std::holds_alternative<smtp::StartTlsNow>(action)) {
      arm_timer();  // the handshake's own timeout
      start_tls();
      return;  // nothing follows StartTlsNow; the handshake owns the socket now
    }
  }
  if (closed_) return;
  if (!txn_started_) {
    using State = smtp::ClientSession::State;
    const State st = session_.state();
    if (st == State::Transaction || st == State::Body || st == State::EndOfData)
      txn_started_ = loop_.now();
  }
  if (!connecting_ && !handshaking_ && fd_) flush();
  if (!closed_) arm_timer();
}

void Connection::flush() {
  bool progress = false;
  while (!closed_) {
    if (out_start_ < out_.size()) {
      IoResult r = send_some(out_.data() + out_start_, out_.size() - out_start_);
      if (r.io == Io::Done && r.bytes > 0) {
        out_start_ += r.bytes;
        progress = true;
        continue;
      }
      if (r.io == Io::Again || r.io == Io::Done) break;
      fail(r.error);
      return;
    }
    if (!body_active_) break;
    std::uint64_t end = body_.offset + body_.size;
    if (body_pos_ < end && tls_) {
      // No sendfile() through TLS: the next block of the file goes through out_.
      std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(end - body_pos_, kTlsBodyBlock));
      out_.resize(want);
      out_start_ = 0;
      ssize_t n = ::pread(body_.fd.get(), out_.data(), want, static_cast<off_t>(body_pos_));
      if (n < 0 && errno == EINTR) {
        out_.clear();
        continue;
      }
      if (n <= 0) {
        out_.clear();
        fail(n == 0 ? std::string("queue file is shorter than its recorded body")
                    : std::string("reading the queue file: ") + base::errno_text(errno));
        return;
      }
      out_.resize(static_cast<std::size_t>(n));
      body_pos_ += static_cast<std::uint64_t>(n);
      continue;
    }
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
  bool pending = out_start_ < out_.size() || body_active_ || tls_wants_write_;
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
  if (fd_ && out_start_ < out_.size() && !connecting_ && !handshaking_) {  // a last QUIT
    send_some(out_.data() + out_start_, out_.size() - out_start_);         // best effort
  }
  if (tls_) {
    if (!handshaking_ && !tls_failed_) tls_->shutdown();
    tls_.reset();
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
