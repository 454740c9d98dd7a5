// client.cc: one milter session on the loop (see client.h).
#include "filters/milter/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace estafette::milter {

using filters::Family;
using filters::Macros;
using filters::Modification;
using filters::Verdict;

namespace {

bool parse_port(std::string_view text, std::uint16_t& port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
    return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

// "{name}" and "name" are the same macro.
std::string_view bare_macro(std::string_view name) {
  if (name.size() >= 2 && name.front() == '{' && name.back() == '}')
    return name.substr(1, name.size() - 2);
  return name;
}

bool in_symlist(std::string_view list, std::string_view name) {
  std::string_view want = bare_macro(name);
  while (!list.empty()) {
    std::size_t start = list.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    list.remove_prefix(start);
    std::size_t end = list.find(' ');
    std::string_view word = list.substr(0, end);
    if (bare_macro(word) == want) return true;
    if (end == std::string_view::npos) break;
    list.remove_prefix(end);
  }
  return false;
}

}  // namespace

bool parse_spec(std::string_view text, Spec& out, std::string* error) {
  out = Spec{};
  std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    *error = "milter address without a type (inet:, inet6:, unix:)";
    return false;
  }
  std::string_view type = text.substr(0, colon);
  std::string_view rest = text.substr(colon + 1);
  if (type == "unix" || type == "local") {
    out.kind = Spec::Kind::Unix;
    if (rest.empty() || rest.size() >= sizeof(sockaddr_un::sun_path)) {
      *error = "unix milter path is empty or too long";
      return false;
    }
    out.path = rest;
    return true;
  }
  if (type != "inet" && type != "inet6") {
    *error = "unknown milter address type '" + std::string(type) + "'";
    return false;
  }
  out.kind = type == "inet" ? Spec::Kind::Inet : Spec::Kind::Inet6;
  std::size_t at = rest.find('@');
  if (at == std::string_view::npos) {
    *error = "milter address is not PORT@ADDRESS";
    return false;
  }
  if (!parse_port(rest.substr(0, at), out.port)) {
    *error = "bad milter port '" + std::string(rest.substr(0, at)) + "'";
    return false;
  }
  std::string_view host = rest.substr(at + 1);
  if (out.kind == Spec::Kind::Inet6 && host.size() >= 2 && host.front() == '[' &&
      host.back() == ']')
    host = host.substr(1, host.size() - 2);
  out.host = host;
  unsigned char buf[sizeof(in6_addr)];
  int family = out.kind == Spec::Kind::Inet ? AF_INET : AF_INET6;
  if (out.host.empty() || ::inet_pton(family, out.host.c_str(), buf) != 1) {
    *error = "milter host '" + out.host + "' is not a numeric " +
             (family == AF_INET ? "IPv4" : "IPv6") + " address";
    return false;
  }
  return true;
}

int open_socket(const Spec& spec, base::UniqueFd& fd) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int domain = AF_INET;
  if (spec.kind == Spec::Kind::Unix) {
    domain = AF_UNIX;
    auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, spec.path.data(),
                std::min(spec.path.size(), sizeof sun->sun_path - 1));
    len = sizeof(sockaddr_un);
  } else if (spec.kind == Spec::Kind::Inet) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(spec.port);
    ::inet_pton(AF_INET, spec.host.c_str(), &in->sin_addr);
    len = sizeof(sockaddr_in);
  } else {
    domain = AF_INET6;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(spec.port);
    ::inet_pton(AF_INET6, spec.host.c_str(), &in6->sin6_addr);
    len = sizeof(sockaddr_in6);
  }
  fd.reset(::socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
    return errno;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Client

Client::Client(event::Loop& loop, Options options) : loop_(loop), options_(std::move(options)) {}

Client::~Client() {
  if (watching_) loop_.remove_fd(fd_.get());
  loop_.cancel_timer(timer_);
}

void Client::post(std::function<void()> fn) {
  loop_.post(guard_.wrap(std::move(fn)));
}

Verdict Client::make(Verdict::Action action, std::string text) const {
  Verdict v{action, std::move(text), {}};
  if (action != Verdict::Action::Continue) v.filter = options_.name;
  return v;
}

namespace {
const char* stage_name(int stage) {
  static constexpr const char* kNames[] = {"none", "negotiation", "connect", "helo", "mail", "rcpt",
                                           "data", "header",      "eoh",     "body", "eom"};
  return stage >= 0 && stage < static_cast<int>(std::size(kNames)) ? kNames[stage] : "?";
}
std::string seconds_text(std::chrono::milliseconds ms) {
  return ms.count() % 1000 == 0 ? std::to_string(ms.count() / 1000) + "s"
                                : std::to_string(ms.count()) + "ms";
}
}  // namespace

// "timeout: no reply to eom within 300s (milter_content_timeout)".
std::string Client::timeout_reason() const {
  if (state_ == State::Connecting)
    return "timeout: connect not done within " + seconds_text(current_timeout_) +
           " (milter_connect_timeout)";
  const bool content = current_timeout_ == options_.content_timeout &&
                       (pending_ == Stage::Header || pending_ == Stage::Eoh ||
                        pending_ == Stage::Body || pending_ == Stage::Eom);
  return std::string("timeout: no reply to ") + stage_name(static_cast<int>(pending_)) +
         " within " + seconds_text(current_timeout_) +
         (content ? " (milter_content_timeout)" : " (milter_command_timeout)");
}

std::chrono::milliseconds Client::timeout_for(Stage stage) const {
  switch (stage) {
    case Stage::Header:
    case Stage::Eoh:
    case Stage::Body:
    case Stage::Eom:
      return options_.content_timeout;
    default:
      return options_.command_timeout;
  }
}

void Client::arm_timer(std::chrono::milliseconds timeout) {
  loop_.cancel_timer(timer_);
  current_timeout_ = timeout;
  timer_ = loop_.add_timer(timeout, [this] {
    timer_ = 0;
    fail(timeout_reason());
  });
}

void Client::fail(std::string reason) {
  if (state_ == State::Failed) return;
  if (watching_) loop_.remove_fd(fd_.get());
  watching_ = false;
  fd_.reset();
  loop_.cancel_timer(timer_);
  timer_ = 0;
  state_ = State::Failed;
  failure_ = "milter " + options_.name + ": " + reason;
  if (pending_ != Stage::None) finish(make(Verdict::Action::Failed, failure_));
}

// Ends the pending call; runs its callback last, as the callback may destroy this client.
void Client::finish(Verdict verdict) {
  Stage stage = std::exchange(pending_, Stage::None);
  if (options_.metrics && sent_ != std::chrono::steady_clock::time_point{}) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - sent_;
    options_.metrics->observe(metrics::Metric::MilterSeconds, took.count());
  }
  sent_ = {};
  loop_.cancel_timer(timer_);
  timer_ = 0;
  body_rest_ = {};
  if (stage == Stage::Eom) {
    auto done = std::move(eom_done_);
    eom_done_ = nullptr;
    auto mods = std::move(mods_);
    mods_.clear();
    end_message();
    if (verdict.action != Verdict::Action::Continue && verdict.action != Verdict::Action::Accept)
      mods.clear();
    if (done) done(verdict, std::move(mods));
    return;
  }
  auto done = std::move(done_);
  done_ = nullptr;
  if (done) done(verdict);
}

void Client::end_message() {
  in_message_ = false;
  message_done_ = false;
  body_skipped_ = false;
  mods_.clear();
}

void Client::queue_write(std::string bytes) {
  if (out_.empty())
    out_ = std::move(bytes);
  else
    out_.append(bytes);
  flush();
}

bool Client::flush() {
  while (!out_.empty()) {
    ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      fail(std::string(errno == EPIPE || errno == ECONNRESET ? "closed: write: " : "write: ") +
           base::errno_text(errno));
      return false;
    }
    out_.erase(0, static_cast<std::size_t>(n));
  }
  bool want = !out_.empty();
  if (want != want_write_ && watching_) {
    want_write_ = want;
    loop_.modify_fd(fd_.get(), EPOLLIN | (want ? EPOLLOUT : 0u));
  }
  return true;
}

void Client::connect(const Macros& macros, std::string_view hostname, Family family,
                     std::uint16_t port, std::string_view address, Callback done) {
  if (state_ != State::Idle) {
    post([done = std::move(done),
          v = make(Verdict::Action::Failed, "milter " + options_.name + ": connect called twice")] {
      done(v);
    });
    return;
  }
  Macros with_session = macros;
  if (options_.send_session && !session_.empty())
    with_session.emplace_back("{estafette_session}", session_);
  start_connect(encode_connect(hostname, family, port, address), std::move(with_session),
                std::move(done));
}

void Client::start_connect(std::string connect_packet, Macros macros, Callback done) {
  pending_ = Stage::Connect;
  done_ = std::move(done);
  after_negotiation_ = std::move(connect_packet);
  // Macros are filtered once the milter's symbol list is known; keep them with the packet.
  connect_macros_ = std::move(macros);
  state_ = State::Connecting;

  if (int err = open_socket(options_.spec, fd_); err != 0) {
    // Refused at once (unix sockets, often loopback): report it later, never inside the call.
    std::string what = std::string(fd_ ? "connect: " : "socket: ") + base::errno_text(err);
    post([this, what] { fail(what); });
    return;
  }
  loop_.add_fd(fd_.get(), EPOLLOUT, [this](std::uint32_t events) { on_io(events); });
  watching_ = true;
  want_write_ = true;
  arm_timer(options_.connect_timeout);
}

void Client::on_connected() {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    fail(std::string("connect: ") + base::errno_text(err));
    return;
  }
  state_ = State::Negotiating;
  want_write_ = false;
  loop_.modify_fd(fd_.get(), EPOLLIN);
  arm_timer(options_.command_timeout);
  queue_write(encode_optneg(kProtocolVersion, kOfferedActions, kOfferedProtocol));
}

void Client::on_optneg(const Reply& reply) {
  if (reply.version < 2 || reply.version > kProtocolVersion) {
    fail("unsupported protocol version " + std::to_string(reply.version));
    return;
  }
  if ((reply.actions & ~kOfferedActions) != 0) {
    fail("milter asks for actions we did not offer");
    return;
  }
  // libmilter may echo its max-data-size bits; they only matter to the milter.
  std::uint32_t protocol = reply.protocol & ~static_cast<std::uint32_t>(SMFI_INTERNAL);
  if ((protocol & ~kOfferedProtocol) != 0) {
    fail("milter asks for protocol steps we did not offer");
    return;
  }
  actions_ = reply.actions;
  protocol_ = protocol;
  symlists_ = reply.symlists;
  state_ = State::Ready;
  // The SMFIC_CONNECT stage that connect() asked for.
  pending_ = Stage::None;
  Callback done = std::move(done_);
  done_ = nullptr;
  Macros macros = std::move(connect_macros_);
  send_stage(Stage::Connect, SMFIM_CONNECT, SMFIC_CONNECT, &macros, std::move(after_negotiation_),
             has(SMFIP_NOCONNECT), has(SMFIP_NR_CONN), std::move(done));
}

void Client::send_stage(Stage stage, int macro_stage, char macro_command, const Macros* macros,
                        std::string packet, bool skip, bool no_reply, Callback done) {
  auto answer_later = [this, &done](Verdict v) {
    post([done = std::move(done), v = std::move(v)] { done(v); });
  };
  if (state_ == State::Failed) {
    answer_later(make(Verdict::Action::Failed, failure_));
    return;
  }
  if (state_ != State::Ready || pending_ != Stage::None) {
    // A caller bug (a call before connect() or while another is pending): fail loudly.
    fail(state_ == State::Ready ? "call while another is pending" : "not connected");
    answer_later(make(Verdict::Action::Failed, failure_));
    return;
  }
  if (skip || session_done_ || (message_done_ && stage != Stage::Rcpt)) {
    answer_later(make(Verdict::Action::Continue));
    return;
  }
  std::string bytes;
  if (macros && !macros->empty()) {
    auto list = symlists_.find(macro_stage);
    Macros wanted;
    for (const auto& m : *macros)
      if (list == symlists_.end() || in_symlist(list->second, m.first)) wanted.push_back(m);
    if (!wanted.empty()) bytes = encode_macro(macro_command, wanted);
  }
  bytes += packet;
  if (no_reply) {
    queue_write(std::move(bytes));
    answer_later(make(Verdict::Action::Continue));
    return;
  }
  pending_ = stage;
  sent_ = std::chrono::steady_clock::now();
  done_ = std::move(done);
  arm_timer(timeout_for(stage));
  queue_write(std::move(bytes));
}

void Client::helo(const Macros& macros, std::string_view name, Callback done) {
  send_stage(Stage::Helo, SMFIM_HELO, SMFIC_HELO, &macros, encode_helo(name), has(SMFIP_NOHELO),
             has(SMFIP_NR_HELO), std::move(done));
}

void Client::mail(const Macros& macros, std::string_view address,
                  const std::vector<std::string>& args, Callback done) {
  if (state_ == State::Ready && pending_ == Stage::None) {
    end_message();
    in_message_ = true;
  }
  send_stage(Stage::Mail, SMFIM_ENVFROM, SMFIC_MAIL, &macros, encode_mail(address, args),
             has(SMFIP_NOMAIL), has(SMFIP_NR_MAIL), std::move(done));
}

void Client::rcpt(const Macros& macros, std::string_view address,
                  const std::vector<std::string>& args, Callback done) {
  send_stage(Stage::Rcpt, SMFIM_ENVRCPT, SMFIC_RCPT, &macros, encode_rcpt(address, args),
             has(SMFIP_NORCPT) || message_done_, has(SMFIP_NR_RCPT), std::move(done));
}

void Client::data(const Macros& macros, Callback done) {
  send_stage(Stage::Data, SMFIM_DATA, SMFIC_DATA, &macros, encode_data(), has(SMFIP_NODATA),
             has(SMFIP_NR_DATA), std::move(done));
}

void Client::header(std::string_view name, std::string_view value, Callback done) {
  if (!has(SMFIP_HDR_LEADSPC)) {
    std::size_t n = 0;
    while (n < value.size() && (value[n] == ' ' || value[n] == '\t')) ++n;
    value.remove_prefix(n);
  }
  send_stage(Stage::Header, -1, 0, nullptr, encode_header(name, value), has(SMFIP_NOHDRS),
             has(SMFIP_NR_HDR), std::move(done));
}

void Client::eoh(const Macros& macros, Callback done) {
  send_stage(Stage::Eoh, SMFIM_EOH, SMFIC_EOH, &macros, encode_eoh(), has(SMFIP_NOEOH),
             has(SMFIP_NR_EOH), std::move(done));
}

void Client::body(std::string_view bytes, Callback done) {
  bool skip = has(SMFIP_NOBODY) || body_skipped_ || bytes.empty();
  std::string_view first = bytes.substr(0, kChunkSize);
  if (has(SMFIP_NR_BODY)) {
    // No replies: every chunk goes out at once (into the output buffer, one copy).
    std::string all;
    if (!skip) {
      all.reserve(bytes.size() + (bytes.size() / kChunkSize + 1) * 5);
      for (std::size_t at = 0; at < bytes.size(); at += kChunkSize)
        all += encode_body(bytes.substr(at, kChunkSize));
    }
    send_stage(Stage::Body, -1, 0, nullptr, std::move(all), skip, true, std::move(done));
    return;
  }
  send_stage(Stage::Body, -1, 0, nullptr, encode_body(first), skip, false, std::move(done));
  if (pending_ == Stage::Body) body_rest_ = bytes.substr(first.size());  // the caller's bytes
}

void Client::send_next_body_chunk() {
  std::string packet = encode_body(body_rest_.substr(0, kChunkSize));
  body_rest_.remove_prefix(std::min(body_rest_.size(), kChunkSize));
  arm_timer(timeout_for(Stage::Body));
  queue_write(std::move(packet));
}

void Client::eom(const Macros& macros, EomCallback done) {
  // Wrap the EOM callback so that send_stage's plain Callback paths (failed, skipped) answer
  // with no modifications; a real reply goes through finish() with the collected ones.
  auto plain = [done](const Verdict& v) { done(v, {}); };
  send_stage(Stage::Eom, SMFIM_EOM, SMFIC_BODYEOB, &macros, encode_eob(), false, false,
             std::move(plain));
  if (pending_ == Stage::Eom) {
    done_ = nullptr;
    eom_done_ = std::move(done);
  } else {
    end_message();  // the message ended without asking the milter
  }
}

void Client::abort() {
  if (state_ != State::Ready) return;
  if (pending_ != Stage::None) {
    // The milter's answer to the pending call would be taken for the answer to the next one.
    pending_ = Stage::None;
    body_rest_ = {};
    done_ = nullptr;
    eom_done_ = nullptr;
    fail("aborted while a reply was pending");
    return;
  }
  if (in_message_ && !session_done_) queue_write(encode_abort());
  end_message();
}

void Client::quit() {
  if (state_ == State::Ready && !out_.empty()) flush();
  if (state_ == State::Ready && out_.empty()) {
    std::string q = encode_quit();
    (void)::send(fd_.get(), q.data(), q.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  pending_ = Stage::None;
  body_rest_ = {};
  done_ = nullptr;
  eom_done_ = nullptr;
  if (watching_) loop_.remove_fd(fd_.get());
  watching_ = false;
  fd_.reset();
  loop_.cancel_timer(timer_);
  timer_ = 0;
  state_ = State::Closed;
}

void Client::on_io(std::uint32_t events) {
  if (state_ == State::Connecting) {
    on_connected();
    return;
  }
  // Tells whether this client still exists after a callback (which may destroy it).
  auto still_here = guard_.wrap([](bool& here) { here = true; });
  if (events & EPOLLOUT) {
    if (!flush()) return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      fail(n == 0                ? "closed: the milter closed the connection"
           : errno == ECONNRESET ? "closed: the milter reset the connection"
                                 : std::string("read: ") + base::errno_text(errno));
      return;
    }
    std::vector<Reply> replies;
    bool ok = parser_.feed(std::string_view(buf, static_cast<std::size_t>(n)), replies);
    for (Reply& reply : replies) {
      on_reply(reply);
      // A callback may have destroyed us, or the reply failed the session.
      bool here = false;
      still_here(here);
      if (!here || state_ == State::Failed || state_ == State::Closed) return;
    }
    if (!ok) {
      fail("bad reply: malformed: " + parser_.error());
      return;
    }
  }
}

void Client::on_reply(Reply& reply) {
  if (state_ == State::Negotiating) {
    if (reply.type != ReplyType::OptNeg) {
      fail(std::string("expected option negotiation, got ") + to_string(reply.type));
      return;
    }
    on_optneg(reply);
    return;
  }
  if (pending_ == Stage::None) {
    fail(std::string("bad reply: unexpected '") + to_string(reply.type) + "'");
    return;
  }
  auto need = [&](std::uint32_t action) {
    if (pending_ != Stage::Eom) {
      fail(std::string(to_string(reply.type)) + " outside end of message");
      return false;
    }
    if ((actions_ & action) == 0) {
      fail(std::string(to_string(reply.type)) + " without the negotiated action");
      return false;
    }
    return true;
  };
  // Without SMFIP_HDR_LEADSPC the value comes without the space that follows the colon.
  auto header_value = [&] {
    return has(SMFIP_HDR_LEADSPC) ? std::move(reply.value) : " " + reply.value;
  };
  using K = Modification::Kind;
  // A milter could send changes (and body chunks) for ever: memory stays bounded.
  auto add = [this](K kind) {
    if (mods_.size() >= options_.max_modifications) {
      fail("more than " + std::to_string(options_.max_modifications) + " modifications");
      return false;
    }
    mods_.emplace_back();
    mods_.back().kind = kind;
    return true;
  };
  switch (reply.type) {
    case ReplyType::Continue:
      if (pending_ == Stage::Body && !body_rest_.empty()) {
        send_next_body_chunk();
        return;
      }
      finish(make(Verdict::Action::Continue));
      return;
    case ReplyType::Skip:
      if (pending_ != Stage::Body || !has(SMFIP_SKIP)) {
        fail("skip outside the body");
        return;
      }
      body_skipped_ = true;
      finish(make(Verdict::Action::Continue));
      return;
    case ReplyType::Progress:
      arm_timer(current_timeout_);
      return;
    case ReplyType::Accept:
    case ReplyType::Reject:
    case ReplyType::Tempfail:
    case ReplyType::Discard:
    case ReplyType::ReplyCode: {
      Verdict::Action action = reply.type == ReplyType::Accept     ? Verdict::Action::Accept
                               : reply.type == ReplyType::Reject   ? Verdict::Action::Reject
                               : reply.type == ReplyType::Tempfail ? Verdict::Action::Tempfail
                               : reply.type == ReplyType::Discard  ? Verdict::Action::Discard
                                                                   : Verdict::Action::ReplyCode;
      if (pending_ == Stage::Connect) session_done_ = true;
      // A recipient's verdict concerns that recipient, except accept and discard.
      else if (pending_ != Stage::Rcpt || action == Verdict::Action::Accept ||
               action == Verdict::Action::Discard)
        message_done_ = in_message_;
      finish(make(action, std::move(reply.text)));
      return;
    }
    case ReplyType::AddHeader:
    case ReplyType::InsertHeader:
      if (!need(SMFIF_ADDHDRS)) return;
      if (!add(reply.type == ReplyType::AddHeader ? K::AddHeader : K::InsertHeader)) return;
      mods_.back().name = std::move(reply.name);
      mods_.back().value = header_value();
      mods_.back().index = reply.index;
      return;
    case ReplyType::ChangeHeader:
      if (!need(SMFIF_CHGHDRS)) return;
      if (!add(K::ChangeHeader)) return;
      mods_.back().value = reply.value.empty() ? std::string() : header_value();
      mods_.back().name = std::move(reply.name);
      mods_.back().index = reply.index;
      return;
    case ReplyType::AddRcpt:
    case ReplyType::AddRcptPar:
    case ReplyType::DelRcpt:
    case ReplyType::ChangeFrom: {
      auto [kind, action] =
          reply.type == ReplyType::AddRcpt      ? std::pair{K::AddRcpt, SMFIF_ADDRCPT}
          : reply.type == ReplyType::AddRcptPar ? std::pair{K::AddRcpt, SMFIF_ADDRCPT_PAR}
          : reply.type == ReplyType::DelRcpt    ? std::pair{K::DelRcpt, SMFIF_DELRCPT}
                                                : std::pair{K::ChangeFrom, SMFIF_CHGFROM};
      if (!need(action)) return;
      if (!add(kind)) return;
      mods_.back().address = std::move(reply.address);
      mods_.back().args = std::move(reply.args);
      return;
    }
    case ReplyType::ReplaceBody:
      if (!need(SMFIF_CHGBODY)) return;
      // Chunks of one replacement arrive as consecutive replies.
      if (mods_.empty() || mods_.back().kind != K::ReplaceBody) {
        if (!add(K::ReplaceBody)) return;
      }
      if (reply.body.size() > options_.max_body - mods_.back().body.size()) {
        fail("replacement body larger than " + std::to_string(options_.max_body));
        return;
      }
      mods_.back().body += reply.body;
      return;
    case ReplyType::Quarantine:
      if (!need(SMFIF_QUARANTINE)) return;
      if (!add(K::Quarantine)) return;
      mods_.back().text = std::move(reply.text);
      return;
    case ReplyType::OptNeg:
      fail("option negotiation in the middle of a session");
      return;
  }
}

std::vector<std::unique_ptr<filters::Filter>> make_clients(event::Loop& loop,
                                                           std::vector<Options> milters) {
  std::vector<std::unique_ptr<filters::Filter>> out;
  for (Options& o : milters) out.push_back(std::make_unique<Client>(loop, std::move(o)));
  return out;
}

}  // namespace estafette::milter
