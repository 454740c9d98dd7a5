#include "lib/mtasts/fetcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace estafette::mtasts {

PolicyFetch::PolicyFetch(event::Loop& loop, dns::Resolver& resolver,
                         std::shared_ptr<tls::ClientContext> tls, FetchOptions options)
    : loop_(loop), resolver_(resolver), tls_(std::move(tls)), options_(options) {}

PolicyFetch::~PolicyFetch() {
  if (timer_) loop_.cancel_timer(timer_);
  close_socket();
}

void PolicyFetch::start(const std::string& domain, Callback done) {
  done_ = std::move(done);
  host_ = "mta-sts." + domain;
  timer_ = loop_.add_timer(options_.timeout, guard_.wrap([this] {
    timer_ = 0;
    auto seconds = std::chrono::duration<double>(options_.timeout).count();
    char limit[32];
    std::snprintf(limit, sizeof limit, "%gs", seconds);
    fail(std::string("timed out after ") + limit + " while " + stage_text());
  }));
  dns_ =
      resolver_.resolve_host(host_, guard_.wrap([this](dns::Status s, std::vector<std::string> a) {
        on_addresses(s, std::move(a));
      }));
}

const char* PolicyFetch::stage_text() const {
  switch (stage_) {
    case Stage::Resolving:
      return "resolving";
    case Stage::Connecting:
      return "connecting";
    case Stage::Handshake:
      return "in the TLS handshake";
    case Stage::Sending:
      return "sending the request";
    case Stage::Receiving:
      return "waiting for the policy";
    case Stage::Done:
      return "done";
  }
  return "?";
}

void PolicyFetch::on_addresses(dns::Status status, std::vector<std::string> addresses) {
  if (stage_ == Stage::Done) return;
  if (status != dns::Status::Ok || addresses.empty()) {
    fail(std::string("no address (") + dns::to_string(status) + ")");
    return;
  }
  addresses_ = std::move(addresses);
  stage_ = Stage::Connecting;
  connect_next();
}

// The next address; when none is left, the fetch fails with what each one said.
void PolicyFetch::connect_next() {
  close_socket();
  while (next_address_ < addresses_.size()) {
    address_ = addresses_[next_address_++];
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, address_.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(options_.port);
      len = sizeof *v4;
    } else if (::inet_pton(AF_INET6, address_.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(options_.port);
      len = sizeof *v6;
    } else {
      connect_errors_ += (connect_errors_.empty() ? "" : "; ") + address_ + ": not an address";
      continue;
    }
    fd_ = base::UniqueFd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd_ && (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0 ||
                errno == EINPROGRESS)) {
      watch(EPOLLOUT);
      return;
    }
    connect_errors_ +=
        (connect_errors_.empty() ? "" : "; ") + address_ + ": " + base::errno_text(errno);
    close_socket();
  }
  fail("cannot connect: " + connect_errors_);
}

void PolicyFetch::watch(std::uint32_t events) {
  if (!watched_) {
    loop_.add_fd(fd_.get(), events, guard_.wrap([this](std::uint32_t e) { on_io(e); }));
    watched_ = true;
  } else if (events != interest_) {
    loop_.modify_fd(fd_.get(), events);
  }
  interest_ = events;
}

void PolicyFetch::close_socket() {
  stream_.reset();
  if (fd_ && watched_) loop_.remove_fd(fd_.get());
  watched_ = false;
  interest_ = 0;
  fd_.reset();
}

void PolicyFetch::on_io(std::uint32_t) {
  if (stage_ == Stage::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS) return;
    if (err != 0) {
      connect_errors_ +=
          (connect_errors_.empty() ? "" : "; ") + address_ + ": " + base::errno_text(err);
      connect_next();
      return;
    }
    try {
      stream_ = std::make_unique<tls::Stream>(
          tls_, fd_.get(),
          tls::ClientOptions{.server_name = host_, .verify_names = {host_}, .destination = ""});
    } catch (const std::exception& e) {
      fail(std::string("TLS: ") + e.what());
      return;
    }
    stage_ = Stage::Handshake;
    request_ = "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: " + host_ +
               "\r\nUser-Agent: estafette\r\nAccept: text/plain\r\nConnection: close\r\n\r\n";
  }
  step();
}

// Drives the stream as far as the socket allows now, then waits for what it needs.
void PolicyFetch::step() {
  auto want = [this](tls::Stream::Status s) {
    watch(s == tls::Stream::Status::WantWrite ? EPOLLOUT : EPOLLIN);
  };
  if (stage_ == Stage::Handshake) {
    auto s = stream_->handshake();
    if (s == tls::Stream::Status::WantRead || s == tls::Stream::Status::WantWrite) return want(s);
    if (s != tls::Stream::Status::Ok) {
      fail("TLS handshake with " + address_ + ": " +
           (stream_->reason().empty() ? "connection closed" : stream_->reason()));
      return;
    }
    auto info = stream_->info();
    if (info.peer_cert != tls::SessionInfo::PeerCert::Verified) {
      fail("certificate of " + address_ + " not valid for " + host_ + ": " +
           (info.verify_error.empty() ? "none sent" : info.verify_error));
      return;
    }
    stage_ = Stage::Sending;
  }
  if (stage_ == Stage::Sending) {
    while (sent_ < request_.size()) {
      auto r = stream_->write(request_.data() + sent_, request_.size() - sent_);
      if (r.status == tls::Stream::Status::Ok) {
        sent_ += r.bytes;
        continue;
      }
      if (r.status == tls::Stream::Status::WantRead || r.status == tls::Stream::Status::WantWrite)
        return want(r.status);
      fail("sending the request to " + address_ + ": " + stream_->reason());
      return;
    }
    stage_ = Stage::Receiving;
  }
  if (stage_ != Stage::Receiving) return;
  char buffer[16384];
  while (true) {
    auto r = stream_->read(buffer, sizeof buffer);
    HttpResponse::State state = response_.state();
    if (r.status == tls::Stream::Status::Ok) {
      state = response_.feed(std::string_view(buffer, r.bytes));
    } else if (r.status == tls::Stream::Status::Closed) {
      state = response_.finish();
    } else if (r.status == tls::Stream::Status::WantRead ||
               r.status == tls::Stream::Status::WantWrite) {
      return want(r.status);
    } else {
      // A peer that just drops the TCP connection after a close-delimited body: still its end.
      state = response_.finish();
      if (state != HttpResponse::State::Done) {
        fail("reading from " + address_ + ": " + stream_->reason());
        return;
      }
    }
    if (state == HttpResponse::State::Failed) {
      fail(response_.reason());
      return;
    }
    if (state == HttpResponse::State::Done) {
      auto parsed = parse_policy(response_.body());
      if (!parsed.ok) {
        fail("policy from " + address_ + ": " + parsed.reason);
        return;
      }
      FetchResult r;
      r.ok = true;
      r.policy = std::move(parsed.policy);
      r.address = address_;
      finish(std::move(r));
      return;
    }
  }
}

void PolicyFetch::fail(const std::string& why) {
  FetchResult r;
  r.reason = host_ + ": " + why;
  r.address = address_;
  finish(std::move(r));
}

void PolicyFetch::finish(FetchResult result) {
  if (stage_ == Stage::Done) return;
  stage_ = Stage::Done;
  loop_.cancel_timer(timer_);
  timer_ = 0;
  dns_.cancel();
  if (stream_) stream_->shutdown();
  close_socket();
  // From the loop, so that the owner may destroy this object in the callback.
  loop_.post(guard_.wrap([this, result = std::move(result)] {
    auto done = std::move(done_);
    done_ = nullptr;
    if (done) done(result);
  }));
}

}  // namespace estafette::mtasts
