#include "bench/kit/source.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <stdexcept>

#include "lib/base/fd.h"
#include "lib/smtp/reply_parser.h"

namespace estafette::bench {

namespace {
constexpr std::size_t kReadSize = 16 * 1024;
constexpr std::size_t kIdDigits = 16;

// Is `keyword` the first word of one of the EHLO reply's lines (case-insensitive)?
bool offers(const smtp::Reply& ehlo, std::string_view keyword) {
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    std::string_view line = ehlo.lines[i];
    if (line.size() < keyword.size()) continue;
    bool same = true;
    for (std::size_t k = 0; k < keyword.size() && same; ++k) {
      same = std::toupper(static_cast<unsigned char>(line[k])) == keyword[k];
    }
    if (same && (line.size() == keyword.size() || line[keyword.size()] == ' ')) return true;
  }
  return false;
}
}  // namespace

MessageTemplate::MessageTemplate(std::size_t size, const std::string& from, const std::string& to,
                                 const std::string& id_suffix) {
  text_ = "From: <" + from + ">\r\nTo: <" + to + ">\r\nSubject: estafette-bench\r\nMessage-ID: <";
  id_at_ = text_.size();
  text_ += std::string(kIdDigits, '0') + "." + id_suffix + "@bench.estafette.test>";
  id_end_ = text_.size() - 1;
  text_ += "\r\n\r\n";
  // Body lines of up to 76 letters and CRLF, cut so that the total is `size`.
  std::size_t remaining = size > text_.size() ? size - text_.size() : 0;
  while (remaining > 0) {
    std::size_t line = std::min<std::size_t>(remaining, 78);
    if (remaining - line == 1) --line;  // leave room for at least an empty line
    if (line < 2) line = 2;             // one byte over: the header was all but one byte
    text_.append(line - 2, 'x');
    text_ += "\r\n";
    remaining -= std::min(line, remaining);
  }
  text_ += ".\r\n";
}

const std::string& MessageTemplate::with_id(std::uint64_t n) {
  for (std::size_t i = 0; i < kIdDigits; ++i) {
    text_[id_at_ + kIdDigits - 1 - i] = static_cast<char>('0' + n % 10);
    n /= 10;
  }
  return text_;
}

std::chrono::nanoseconds offer_time(std::uint64_t i, double rate) {
  constexpr double kLatest = 3e9;  // seconds: far beyond any --timeout, well within nanoseconds
  double seconds = std::min(static_cast<double>(i) / rate, kLatest);
  return std::chrono::round<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds));
}

// One SMTP client connection: connect, greeting, EHLO, STARTTLS, `messages` transactions, QUIT.
class Source::Session final {
 public:
  Session(Source& source, base::UniqueFd fd, std::uint64_t messages)
      : source_(source), fd_(std::move(fd)), remaining_(messages) {}
  int fd() const { return fd_.get(); }
  std::uint32_t interest() const {
    return EPOLLIN | (connecting_ || out_at_ < out_.size() || want_write_ ? EPOLLOUT : 0u);
  }
  // Fails what is left (a timeout ends the run).
  void abandon(const std::string& why) { fail(why); }

  // Does what the socket allows; false once the session is over.
  bool pump(std::uint32_t events) {
    if (connecting_) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return true;
      int error = 0;
      socklen_t len = sizeof error;
      ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &len);
      if (error != 0) return fail(std::string("connect: ") + base::errno_text(error));
      connecting_ = false;
    }
    want_write_ = false;
    char buffer[kReadSize];
    for (;;) {
      if (handshaking_) {
        auto s = tls_->handshake();
        if (s == tls::Stream::Status::WantRead) return true;
        if (s == tls::Stream::Status::WantWrite) {
          want_write_ = true;
          return true;
        }
        if (s != tls::Stream::Status::Ok) return fail("STARTTLS " + tls_->reason());
        handshaking_ = false;
        ++source_.counts_.handshakes;
        if (tls_->resumed()) ++source_.counts_.resumed;
        send("EHLO " + source_.options_.helo + "\r\n", Expect::Ehlo);
      }
      if (!flush()) return fail("write: " + std::string(base::errno_text(errno)));
      if (done_) return false;
      std::size_t got = 0;
      if (tls_) {
        auto r = tls_->read(buffer, sizeof buffer);
        if (r.status == tls::Stream::Status::WantRead) break;
        if (r.status == tls::Stream::Status::WantWrite) {
          want_write_ = true;
          break;
        }
        if (r.status != tls::Stream::Status::Ok) {
          return fail(r.status == tls::Stream::Status::Closed ? "connection closed"
                                                              : tls_->reason());
        }
        got = r.bytes;
      } else {
        ssize_t n = ::read(fd_.get(), buffer, sizeof buffer);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (n <= 0) return fail(n == 0 ? "connection closed" : base::errno_text(errno));
        got = static_cast<std::size_t>(n);
      }
      parser_.feed(std::string_view(buffer, got));
      while (!handshaking_ && !done_) {
        auto reply = parser_.next();
        if (!reply) break;
        if (!on_reply(*reply)) return false;
      }
      if (parser_.error() != smtp::ReplyParser::Error::None) return fail(parser_.error_text());
    }
    if (!flush()) return fail("write: " + std::string(base::errno_text(errno)));
    return true;
  }

 private:
  enum class Expect { Greeting, Ehlo, StartTls, Mail, Rcpt, Data, Dot, Rset, Quit };

  void send(std::string_view text, Expect expect) {
    out_.append(text);
    expected_.push_back(expect);
  }

  bool fail(const std::string& why) {
    source_.counts_.failed += remaining_;
    remaining_ = 0;
    if (source_.counts_.first_error.empty()) source_.counts_.first_error = why;
    return false;
  }

  // Writes what is queued; false on a broken socket.
  bool flush() {
    while (out_at_ < out_.size()) {
      std::size_t put = 0;
      if (tls_) {
        auto r = tls_->write(out_.data() + out_at_, out_.size() - out_at_);
        if (r.status == tls::Stream::Status::WantWrite) {
          want_write_ = true;
          return true;
        }
        if (r.status == tls::Stream::Status::WantRead) return true;
        if (r.status != tls::Stream::Status::Ok) {
          errno = EPIPE;
          return false;
        }
        put = r.bytes;
      } else {
        ssize_t n = ::send(fd_.get(), out_.data() + out_at_, out_.size() - out_at_, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        put = static_cast<std::size_t>(n);
      }
      out_at_ += put;
    }
    out_.clear();
    out_at_ = 0;
    return true;
  }

  void begin_message() {
    message_failed_ = false;
    const auto& o = source_.options_;
    rcpt_ = expand_recipient(o.to, ++source_.next_rcpt_, o.hosts);
    if (pipelining_) {
      send("MAIL FROM:<" + o.from + ">\r\n", Expect::Mail);
      send("RCPT TO:<" + rcpt_ + ">\r\n", Expect::Rcpt);
      send("DATA\r\n", Expect::Data);
    } else {
      send("MAIL FROM:<" + o.from + ">\r\n", Expect::Mail);
    }
  }

  void end_message(bool ok, const smtp::Reply& reply) {
    if (ok) {
      ++source_.counts_.sent;
    } else {
      ++source_.counts_.failed;
      if (source_.counts_.first_error.empty()) source_.counts_.first_error = reply.to_string();
    }
    --remaining_;
    if (remaining_ > 0) {
      begin_message();
    } else {
      send("QUIT\r\n", Expect::Quit);
    }
  }

  // Acts on one reply; false when the session is over.
  bool on_reply(const smtp::Reply& reply) {
    if (expected_.empty()) return fail("unexpected reply " + reply.to_string());
    Expect what = expected_.front();
    expected_.pop_front();
    const auto& o = source_.options_;
    switch (what) {
      case Expect::Greeting:
        if (reply.code != 220) return fail("greeting " + reply.to_string());
        send("EHLO " + o.helo + "\r\n", Expect::Ehlo);
        break;
      case Expect::Ehlo:
        if (reply.code != 250) return fail("EHLO " + reply.to_string());
        if (o.starttls && !tls_) {
          if (!offers(reply, "STARTTLS")) return fail("the server does not offer STARTTLS");
          send("STARTTLS\r\n", Expect::StartTls);
          break;
        }
        pipelining_ = o.pipelining && offers(reply, "PIPELINING");
        source_.release_first_session();
        if (o.handshake_only) {  // the session is the unit
          ++source_.counts_.sent;
          remaining_ = 0;
          send("QUIT\r\n", Expect::Quit);
          break;
        }
        begin_message();
        break;
      case Expect::StartTls: {
        if (reply.code != 220) return fail("STARTTLS " + reply.to_string());
        if (!flush()) return fail("write");
        tls::ClientOptions options;
        options.destination = source_.destination_;
        tls_ = std::make_unique<tls::Stream>(source_.tls_, fd_.get(), std::move(options));
        handshaking_ = true;
        break;
      }
      case Expect::Mail:
        if (!reply.positive()) message_failed_ = true;
        if (!pipelining_) {
          if (message_failed_) {
            end_message(false, reply);
          } else {
            send("RCPT TO:<" + rcpt_ + ">\r\n", Expect::Rcpt);
          }
        }
        break;
      case Expect::Rcpt:
        if (!reply.positive()) message_failed_ = true;
        if (!pipelining_) {
          if (message_failed_) {
            last_refusal_ = reply;
            send("RSET\r\n", Expect::Rset);
          } else {
            send("DATA\r\n", Expect::Data);
          }
        } else if (message_failed_ && last_refusal_.code == 0) {
          last_refusal_ = reply;
        }
        break;
      case Expect::Data:
        if (reply.code == 354) {
          out_.append(source_.message_.with_id(++source_.next_id_));
          ++source_.data_sent_;
          if (source_.sends_) source_.sends_->record(wall_now(), source_.message_.message_id());
          expected_.push_back(Expect::Dot);
        } else {
          if (last_refusal_.code == 0) last_refusal_ = reply;
          message_failed_ = true;
          send("RSET\r\n", Expect::Rset);
        }
        break;
      case Expect::Dot:
        end_message(reply.code == 250 && !message_failed_, reply);
        break;
      case Expect::Rset:
        end_message(false, last_refusal_);
        last_refusal_ = {};
        break;
      case Expect::Quit:
        if (tls_) tls_->shutdown();
        done_ = true;
        return false;
    }
    return true;
  }

  Source& source_;
  base::UniqueFd fd_;
  std::uint64_t remaining_;  // messages of this session not yet answered
  smtp::ReplyParser parser_;
  std::deque<Expect> expected_{Expect::Greeting};
  std::unique_ptr<tls::Stream> tls_;
  std::string out_;
  std::size_t out_at_ = 0;
  bool connecting_ = true;
  bool handshaking_ = false;
  bool want_write_ = false;
  bool pipelining_ = false;
  bool message_failed_ = false;
  bool done_ = false;
  smtp::Reply last_refusal_;
  std::string rcpt_;  // the current message's recipient (--to expanded)
};

Source::Source(const SourceOptions& options)
    : options_(options),
      message_(options.size, options.from, options.to,
               std::to_string(::getpid()) + "." +
                   std::to_string(std::chrono::system_clock::now().time_since_epoch().count())),
      unassigned_(options.messages),
      due_(options.rate > 0 ? 0 : options.messages) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  std::string port = std::to_string(options_.target.port);
  int rc = ::getaddrinfo(options_.target.host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || !result) {
    throw std::runtime_error("cannot resolve " + options_.target.host + ": " + gai_strerror(rc));
  }
  std::memcpy(&target_, result->ai_addr, result->ai_addrlen);
  target_len_ = result->ai_addrlen;
  ::freeaddrinfo(result);
  if (options_.starttls) {
    // The targets are loopback test instances with self-signed certificates: no verification.
    tls::ClientSettings settings;
    settings.max_protocol = options_.tls_max == 12 ? "TLSv1.2" : "TLSv1.3";
    settings.verify_peer = false;
    settings.session_cache_size = options_.tls_resume ? 1 : 0;
    tls_ = tls::ClientContext::load(settings);
    destination_ = options_.target.host + ":" + port;
  }
  first_tls_done_ = !options_.tls_resume;
  if (!options_.record_sends.empty())
    sends_ = std::make_unique<TimeRecorder>(options_.record_sends);
  if (!options_.stats.empty()) {
    stats_ = std::make_unique<StatsFile>(loop_, options_.stats, options_.stats_interval_ms, [this] {
      return NamedCounts{{"sent", counts_.sent},
                         {"failed", counts_.failed},
                         {"data", data_sent_},
                         {"sessions", counts_.sessions}};
    });
  }
  ::signal(SIGPIPE, SIG_IGN);
}

Source::~Source() {
  if (offer_timer_) loop_.cancel_timer(offer_timer_);
  for (auto& [fd, session] : sessions_) loop_.remove_fd(fd);
}

void Source::release_first_session() {
  // With --tls-resume the first session goes alone until the server has handed it a session to
  // resume (a TLS 1.3 ticket arrives with the first reply after the handshake), so that the
  // others resume instead of all making a full handshake at once.
  if (first_tls_done_ || !tls_ || !tls_->has_session(destination_)) return;
  first_tls_done_ = true;
  start_sessions();
}

void Source::offer_due() {
  offer_timer_ = 0;
  auto now = loop_.now();
  std::uint64_t newly = 0;
  while (offered_ < options_.messages && start_ + offer_time(offered_, options_.rate) <= now) {
    ++offered_;
    ++newly;
  }
  due_ += newly;
  start_sessions();
  // Sessions start oldest first: of what is left waiting, all but the ones that were late
  // already are new.
  counts_.late += std::min(newly, due_);
  if (offered_ < options_.messages) {
    offer_timer_ = loop_.add_timer(start_ + offer_time(offered_, options_.rate) - now,
                                   [this] { offer_due(); });
  }
}

void Source::start_sessions() {
  while (due_ > 0 && sessions_.size() < options_.concurrency &&
         (first_tls_done_ || sessions_.empty())) {
    std::uint64_t take = std::min(due_, options_.per_session);
    due_ -= take;
    unassigned_ -= take;
    ++counts_.sessions;
    base::UniqueFd fd(::socket(target_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      counts_.failed += take;
      error(std::string("socket: ") + base::errno_text(errno));
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target_), target_len_) != 0 &&
        errno != EINPROGRESS) {
      counts_.failed += take;
      error(std::string("connect: ") + base::errno_text(errno));
      continue;
    }
    int raw = fd.get();
    auto session = std::make_unique<Session>(*this, std::move(fd), take);
    Session* s = session.get();
    sessions_[raw] = std::move(session);
    loop_.add_fd(raw, EPOLLIN | EPOLLOUT, [this, s, raw](std::uint32_t events) {
      if (!s->pump(events)) {
        finished(raw);
        return;
      }
      loop_.modify_fd(raw, s->interest());
    });
  }
  if (unassigned_ == 0 && sessions_.empty()) loop_.stop();
}

void Source::finished(int fd) {
  loop_.remove_fd(fd);
  sessions_.erase(fd);
  first_tls_done_ = true;  // the first session ended without a ticket: go on without
  start_sessions();
}

void Source::error(const std::string& what) {
  if (counts_.first_error.empty()) counts_.first_error = what;
}

void Source::run() {
  auto start = std::chrono::steady_clock::now();
  auto timer = loop_.add_timer(std::chrono::seconds(options_.timeout_s), [this] {
    error("timeout");
    loop_.stop();
  });
  if (options_.rate > 0) {
    start_ = loop_.now();
    offer_due();
  } else {
    start_sessions();
  }
  loop_.run();
  loop_.cancel_timer(timer);
  if (offer_timer_) loop_.cancel_timer(offer_timer_);
  offer_timer_ = 0;
  counts_.elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // What a timeout left: untried messages and the sessions still going.
  counts_.failed += unassigned_;
  unassigned_ = due_ = 0;
  for (auto& [fd, session] : sessions_) {
    session->abandon("timeout");
    loop_.remove_fd(fd);
  }
  sessions_.clear();
  if (sends_) sends_->flush();
  if (stats_) stats_->finish();
}

std::string Source::summary() const {
  char line[512];
  double rate = counts_.elapsed_s > 0 ? counts_.sent / counts_.elapsed_s : 0;
  std::snprintf(line, sizeof line,
                "source: msgs_per_s=%.0f sent=%llu failed=%llu handshakes=%llu resumed=%llu "
                "elapsed_s=%.3f sessions=%llu handshakes_per_s=%.0f rate=%.10g late=%llu",
                rate, static_cast<unsigned long long>(counts_.sent),
                static_cast<unsigned long long>(counts_.failed),
                static_cast<unsigned long long>(counts_.handshakes),
                static_cast<unsigned long long>(counts_.resumed), counts_.elapsed_s,
                static_cast<unsigned long long>(counts_.sessions),
                counts_.elapsed_s > 0 ? counts_.handshakes / counts_.elapsed_s : 0, options_.rate,
                static_cast<unsigned long long>(counts_.late));
  return line;
}

}  // namespace estafette::bench
