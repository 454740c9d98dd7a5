#include "bench/kit/sink.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "bench/kit/sink_session.h"
#include "lib/base/net.h"
#include "lib/tls/stream.h"

namespace estafette::bench {

namespace {
constexpr std::size_t kReadSize = 64 * 1024;
constexpr unsigned long long kReportedErrors = 10;
}  // namespace

// One accepted connection: the socket, TLS once started, the conversation and unsent replies.
class Sink::Connection final {
 public:
  Connection(Sink& sink, base::UniqueFd fd, const SinkSession::Options& options)
      : sink_(sink),
        fd_(std::move(fd)),
        session_(options, [&sink](bool accepted, std::size_t bytes, std::string_view id) {
          sink.on_message(accepted, bytes, id);
        }) {
    out_ = SinkSession::greeting();
  }
  int fd() const { return fd_.get(); }

  // Everything the socket allows now; false when the connection is finished.
  bool pump() {
    if (handshaking_) {
      auto s = tls_->handshake();
      if (s == tls::Stream::Status::WantRead || s == tls::Stream::Status::WantWrite) {
        want_write_ = s == tls::Stream::Status::WantWrite;
        return true;
      }
      if (s != tls::Stream::Status::Ok) return fail();
      handshaking_ = false;
      ++sink_.counts_.tls_sessions;
      if (tls_->info().resumed) ++sink_.counts_.tls_resumed;  // once per handshake
      session_.tls_started();
    }
    want_write_ = false;
    char buffer[kReadSize];
    for (;;) {
      if (!flush()) return fail();
      if (closing_) return !out_.empty();
      std::size_t got = 0;
      if (tls_) {
        auto r = tls_->read(buffer, sizeof buffer);
        if (r.status == tls::Stream::Status::WantRead) break;
        if (r.status == tls::Stream::Status::WantWrite) {
          want_write_ = true;
          break;
        }
        if (r.status == tls::Stream::Status::Closed) return false;
        if (r.status == tls::Stream::Status::Failed) return fail();
        got = r.bytes;
      } else {
        ssize_t n = ::read(fd_.get(), buffer, sizeof buffer);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (n < 0) return fail();
        if (n == 0) return false;
        got = static_cast<std::size_t>(n);
      }
      auto action = session_.feed(std::string_view(buffer, got), out_);
      if (action == SinkSession::Action::Close) {
        closing_ = true;
      } else if (action == SinkSession::Action::StartTls) {
        if (!flush() || !out_.empty()) return fail();  // a 220 that does not fit: give up
        tls_ = std::make_unique<tls::Stream>(sink_.tls_, fd_.get());
        handshaking_ = true;
        return pump();
      }
    }
    return true;
  }
  std::uint32_t interest() const {
    return EPOLLIN | (!out_.empty() || want_write_ ? EPOLLOUT : 0u);
  }

 private:
  bool fail() {
    // The first few reasons go to stderr: enough to see what went wrong, never a flood.
    if (++sink_.counts_.errors <= kReportedErrors)
      std::fprintf(stderr, "estafette-bench sink: connection error: %s\n",
                   tls_ && !tls_->reason().empty() ? tls_->reason().c_str() : std::strerror(errno));
    return false;
  }
  // Writes what is queued; false on a broken socket.
  bool flush() {
    while (!out_.empty()) {
      if (tls_) {
        auto r = tls_->write(out_.data(), out_.size());
        if (r.status == tls::Stream::Status::Ok) {
          out_.erase(0, r.bytes);
          continue;
        }
        if (r.status == tls::Stream::Status::WantWrite) return true;
        if (r.status == tls::Stream::Status::WantRead) return true;
        return false;
      }
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      out_.erase(0, static_cast<std::size_t>(n));
    }
    return true;
  }

  Sink& sink_;
  base::UniqueFd fd_;
  SinkSession session_;
  std::unique_ptr<tls::Stream> tls_;
  std::string out_;
  bool handshaking_ = false;
  bool want_write_ = false;
  bool closing_ = false;
};

Sink::Sink(const SinkOptions& options) : options_(options) {
  listener_ = base::listen_tcp(options_.listen.host, options_.listen.port, false, 4096);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  base::address_text(reinterpret_cast<sockaddr*>(&addr), &port_);
  if (!options_.tls_cert.empty()) {
    tls::ServerSettings settings;
    settings.certificates.push_back({options_.tls_cert, options_.tls_key});
    tls_ = tls::ServerContext::load(settings);
  }
  if (!options_.record_ids.empty()) {
    ids_.open(options_.record_ids, std::ios::app);
    if (!ids_) throw std::runtime_error("cannot open " + options_.record_ids);
  }
  if (!options_.record_times.empty())
    times_ = std::make_unique<TimeRecorder>(options_.record_times);
  if (!options_.stats.empty()) {
    stats_ = std::make_unique<StatsFile>(loop_, options_.stats, options_.stats_interval_ms, [this] {
      return NamedCounts{{"messages", counts_.messages},
                         {"rejected", counts_.rejected},
                         {"sessions", counts_.sessions},
                         {"errors", counts_.errors}};
    });
  }
  event::Acceptor::Options accept_options;
  accept_options.batch = 0;
  acceptor_ = std::make_unique<event::Acceptor>(
      loop_, listener_.get(), accept_options,
      [this](base::UniqueFd fd, const sockaddr_storage&, socklen_t) { accept(std::move(fd)); });
  loop_.on_signal(SIGTERM, [this] { loop_.stop(); });
  loop_.on_signal(SIGINT, [this] { loop_.stop(); });
  ::signal(SIGPIPE, SIG_IGN);
}

Sink::~Sink() {
  for (auto& [fd, connection] : connections_) loop_.remove_fd(fd);
}

void Sink::accept(base::UniqueFd fd) {
  ++counts_.sessions;
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SinkSession::Options session_options;
  session_options.offer_starttls = tls_ != nullptr;
  session_options.fail_reply = options_.fail_reply;
  session_options.capture_ids = ids_.is_open() || times_ != nullptr;
  int raw = fd.get();
  auto connection = std::make_unique<Connection>(*this, std::move(fd), session_options);
  auto* c = connection.get();
  connections_[raw] = std::move(connection);
  loop_.add_fd(raw, EPOLLIN | EPOLLOUT, [this, c, raw](std::uint32_t) {
    if (!c->pump()) {
      close(raw);
      return;
    }
    loop_.modify_fd(raw, c->interest());
  });
}

void Sink::close(int fd) {
  loop_.remove_fd(fd);
  connections_.erase(fd);
}

void Sink::on_message(bool accepted, std::size_t bytes, std::string_view id) {
  double now = wall_now();
  if (counts_.messages + counts_.rejected == 0) counts_.first = now;
  counts_.last = now;
  if (accepted) {
    ++counts_.messages;
    if (ids_.is_open()) ids_ << id << '\n';
    if (times_) times_->record(now, id);
  } else {
    ++counts_.rejected;
  }
  counts_.bytes += bytes;
  if (options_.count != 0 && counts_.messages + counts_.rejected >= options_.count) loop_.stop();
}

void Sink::run() {
  loop_.run();
  if (ids_.is_open()) ids_.flush();
  if (times_) times_->flush();
  if (stats_) stats_->finish();
}

std::string Sink::summary() const {
  char line[512];
  std::snprintf(line, sizeof line,
                "sink: messages=%llu rejected=%llu bytes=%llu sessions=%llu tls_sessions=%llu "
                "tls_resumed=%llu errors=%llu first=%.6f last=%.6f",
                static_cast<unsigned long long>(counts_.messages),
                static_cast<unsigned long long>(counts_.rejected),
                static_cast<unsigned long long>(counts_.bytes),
                static_cast<unsigned long long>(counts_.sessions),
                static_cast<unsigned long long>(counts_.tls_sessions),
                static_cast<unsigned long long>(counts_.tls_resumed),
                static_cast<unsigned long long>(counts_.errors), counts_.first, counts_.last);
  return line;
}

}  // namespace estafette::bench
