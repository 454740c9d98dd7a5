#include "lib/auth/dovecot_backend.h"

#include <openssl/crypto.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "lib/auth/base64.h"
#include "lib/auth/dovecot_protocol.h"
#include "lib/base/log.h"
#include "lib/base/net.h"

namespace estafette::auth {

namespace {

Poco::Logger& logger() {
  return base::log("auth");
}

}  // namespace

DovecotBackend::DovecotBackend(event::Loop& loop, Options options)
    : loop_(loop), options_(std::move(options)) {}

DovecotBackend::~DovecotBackend() {
  if (fd_) loop_.remove_fd(fd_.get());
  for (auto& [id, p] : pending_) {
    loop_.cancel_timer(p.timer);
    wipe_secret(p.request);
  }
  wipe_secret(out_);
}

void DovecotBackend::later(Done done, Verdict verdict) {
  loop_.post(guard_.wrap([done = std::move(done), verdict] { done(verdict, ""); }));
}

void DovecotBackend::scram_secret(const std::string&, const ClientInfo&, ScramDone done) {
  loop_.post(guard_.wrap([done = std::move(done)] { done(ScramLookup{}); }));
}

void DovecotBackend::verify(Credentials credentials, const ClientInfo& client, Done done) {
  if (pending_.size() >= options_.max_pending) {
    logger().warning("dovecot auth: " + std::to_string(pending_.size()) +
                     " requests waiting; refusing another (451)");
    later(std::move(done), Verdict::Unavailable);
    return;
  }
  if (!fd_ && !connect()) {
    later(std::move(done), Verdict::Unavailable);
    return;
  }
  const std::uint32_t id = next_id_++;
  dovecot::AuthRequest r;
  r.id = id;
  r.mechanism = "PLAIN";
  r.local_ip = client.local_ip;
  r.remote_ip = client.remote_ip;
  r.local_port = client.local_port;
  r.remote_port = client.remote_port;
  r.secured = client.secured;
  r.has_initial_response = true;
  std::string message = credentials.authzid;
  message.push_back('\0');
  message += credentials.username;
  message.push_back('\0');
  message += credentials.password;
  r.initial_response = base64_encode(message);
  wipe_secret(message);
  Pending p{std::move(done), 0, dovecot::format_auth(r), credentials.username};
  wipe_secret(r.initial_response);
  p.timer = loop_.add_timer(options_.timeout, guard_.wrap([this, id] {
    logger().warning("dovecot auth: no answer within " + std::to_string(options_.timeout.count()) +
                     " ms");
    finish(id, Verdict::Unavailable, "");
  }));
  pending_.emplace(id, std::move(p));
  if (handshake_done_) send_waiting();
}

bool DovecotBackend::connect() {
  fd_ = base::connect_unix(options_.socket_path);
  if (!fd_) {
    logger().error("dovecot auth: cannot connect to " + options_.socket_path + ": " +
                   base::errno_text(errno));
    return false;
  }
  handshake_done_ = false;
  offers_plain_ = false;
  in_.clear();
  out_ = dovecot::handshake(::getpid());
  loop_.add_fd(fd_.get(), EPOLLIN | EPOLLOUT,
               guard_.wrap([this](std::uint32_t events) { on_io(events); }));
  return true;
}

void DovecotBackend::send_waiting() {
  for (auto& [id, p] : pending_) {
    if (p.request.empty()) continue;
    out_ += p.request;
    wipe_secret(p.request);
  }
  flush();
}

void DovecotBackend::flush() {
  while (fd_ && !out_.empty()) {
    ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      disconnect(std::string("write: ") + base::errno_text(errno));
      return;
    }
    OPENSSL_cleanse(out_.data(), static_cast<std::size_t>(n));
    out_.erase(0, static_cast<std::size_t>(n));
  }
  if (fd_) loop_.modify_fd(fd_.get(), out_.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT);
}

void DovecotBackend::on_io(std::uint32_t events) {
  if (events & EPOLLOUT) flush();
  if (!fd_ || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      disconnect(n == 0 ? "Dovecot closed the connection" : base::errno_text(errno));
      return;
    }
    in_.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (auto lf = in_.find('\n'); lf != std::string::npos; lf = in_.find('\n', start)) {
      on_line(std::string_view(in_).substr(start, lf - start));
      if (!fd_) return;  // the line ended the connection
      start = lf + 1;
    }
    in_.erase(0, start);
    if (in_.size() > dovecot::kMaxLineLength) {
      disconnect("a line over " + std::to_string(dovecot::kMaxLineLength) + " bytes");
      return;
    }
  }
}

void DovecotBackend::on_line(std::string_view text) {
  using Kind = dovecot::ServerLine::Kind;
  dovecot::ServerLine line = dovecot::parse_server_line(text);
  switch (line.kind) {
    case Kind::Version:
      if (line.major != dovecot::kMajorVersion)
        disconnect("Dovecot speaks auth protocol version " + std::to_string(line.major));
      return;
    case Kind::Mech:
      if (line.mechanism == "PLAIN") offers_plain_ = true;
      return;
    case Kind::Done:
      if (!offers_plain_) {
        disconnect("Dovecot offers no PLAIN mechanism (auth_mechanisms)");
        return;
      }
      handshake_done_ = true;
      send_waiting();
      return;
    case Kind::Ok:
      finish(line.id, Verdict::Accepted, line.user);
      return;
    case Kind::Fail:
      finish(line.id, line.temporary ? Verdict::Unavailable : Verdict::Refused, "");
      return;
    case Kind::Cont:  // PLAIN with an initial response needs no second round
      logger().warning("dovecot auth: unexpected CONT for request " + std::to_string(line.id));
      finish(line.id, Verdict::Unavailable, "");
      return;
    case Kind::Malformed:
      disconnect("malformed line from Dovecot");
      return;
    default:  // SPID, CUID, COOKIE, and commands this client does not use
      return;
  }
}

void DovecotBackend::finish(std::uint32_t id, Verdict verdict, const std::string& user) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // timed out before, or not ours: dropped
  Pending p = std::move(it->second);
  pending_.erase(it);
  loop_.cancel_timer(p.timer);
  wipe_secret(p.request);
  // Dovecot names the user it authenticated (it may normalise the name); the name asked for
  // otherwise.
  p.done(verdict, verdict == Verdict::Accepted ? (user.empty() ? p.username : user) : "");
}

void DovecotBackend::disconnect(const std::string& why) {
  logger().error("dovecot auth: " + options_.socket_path + ": " + why);
  if (fd_) loop_.remove_fd(fd_.get());
  fd_.reset();
  handshake_done_ = false;
  in_.clear();
  wipe_secret(out_);
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    loop_.cancel_timer(p.timer);
    wipe_secret(p.request);
    later(std::move(p.done), Verdict::Unavailable);
  }
}

}  // namespace estafette::auth
