// client.cc: one SMTP session's policy service (see client.h).
#include "filters/policy/client.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "lib/base/log.h"
#include "lib/queue/queue_id.h"

namespace estafette::policy {

using filters::Macros;
using filters::Verdict;

namespace {

std::string macro(const Macros& macros, std::string_view name) {
  for (const auto& [key, value] : macros)
    if (key == name) return value;
  return {};
}

bool has_macro(const Macros& macros, std::string_view name) {
  for (const auto& m : macros)
    if (m.first == name) return true;
  return false;
}

std::string_view unbracket(std::string_view address) {
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
    return address.substr(1, address.size() - 2);
  return address;
}

}  // namespace

Client::Client(event::Loop& loop, Options options) : loop_(loop), options_(std::move(options)) {}

Client::~Client() {
  close();
}

void Client::answer_later(Verdict verdict) {
  loop_.post(guard_.wrap([this, verdict = std::move(verdict)] {
    Callback done = std::move(done_);
    done_ = nullptr;
    if (done) done(verdict);
  }));
}

void Client::connect(const Macros& macros, std::string_view hostname, filters::Family,
                     std::uint16_t port, std::string_view address, Callback done) {
  client_address_ = address;
  client_port_ = port == 0 ? std::string() : std::to_string(port);
  client_name_ = hostname.empty() ? "unknown" : std::string(hostname);
  reverse_client_name_ = macro(macros, "{client_ptr}");
  if (reverse_client_name_.empty()) reverse_client_name_ = client_name_;
  server_address_ = macro(macros, "{daemon_addr}");
  server_port_ = macro(macros, "{daemon_port}");
  done_ = std::move(done);
  answer_later({});
}

void Client::helo(const Macros& macros, std::string_view name, Callback done) {
  helo_name_ = name;
  if (has_macro(macros, "r")) protocol_name_ = macro(macros, "r");
  done_ = std::move(done);
  answer_later({});
}

void Client::start_message() {
  mods_.clear();
  queue_id_.clear();
  instance_.clear();
  recipient_count_ = "0";
}

const char* Client::protocol_state() const {
  switch (options_.stage) {
    case Stage::Rcpt:
      return "RCPT";
    case Stage::Data:
      return "DATA";
    case Stage::EndOfMessage:
      return "END-OF-MESSAGE";
  }
  return "RCPT";
}

// DATA's and end of message's macros (esmtpd's message_macros): the queue id, the accepted
// recipients' count and, when it is one, that recipient; at the end also the size.
void Client::note_message(const Macros& macros) {
  if (has_macro(macros, "i")) queue_id_ = macro(macros, "i");
  if (has_macro(macros, "{nrcpts}")) recipient_count_ = macro(macros, "{nrcpts}");
  recipient_ = recipient_count_ == "1" ? std::string(unbracket(macro(macros, "{rcpt_addr}"))) : "";
  if (has_macro(macros, "{msg_size}")) size_ = macro(macros, "{msg_size}");
}

void Client::mail(const Macros& macros, std::string_view address,
                  const std::vector<std::string>& args, Callback done) {
  start_message();
  // Unique per message, the same for each of its recipients and every service (postgrey and
  // others key on it): esmtpd's, else our own.
  instance_ = has_macro(macros, "{estafette_instance}")
                  ? macro(macros, "{estafette_instance}")
                  : std::string(queue::make_queue_id()) + "." + std::to_string(++messages_);
  sender_ = unbracket(address);
  size_ = "0";
  for (const auto& arg : args)
    if (arg.size() > 5 && (arg.compare(0, 5, "SIZE=") == 0 || arg.compare(0, 5, "size=") == 0))
      size_ = arg.substr(5);
  if (has_macro(macros, "r")) protocol_name_ = macro(macros, "r");
  sasl_method_ = macro(macros, "{auth_type}");
  sasl_username_ = macro(macros, "{auth_authen}");
  encryption_protocol_ = macro(macros, "{tls_version}");
  encryption_cipher_ = macro(macros, "{cipher}");
  encryption_keysize_ = has_macro(macros, "{cipher_bits}") ? macro(macros, "{cipher_bits}") : "0";
  ccert_subject_ = macro(macros, "{cert_subject}");
  ccert_issuer_ = macro(macros, "{cert_issuer}");
  done_ = std::move(done);
  answer_later({});
}

Attributes Client::attributes(std::string_view recipient) const {
  return {
      {"request", "smtpd_access_policy"},
      {"protocol_state", protocol_state()},
      {"protocol_name", protocol_name_},
      {"client_address", client_address_},
      {"client_name", client_name_},
      {"client_port", client_port_},
      {"reverse_client_name", reverse_client_name_},
      {"server_address", server_address_},
      {"server_port", server_port_},
      {"helo_name", helo_name_},
      {"sender", sender_},
      {"recipient", std::string(recipient)},
      // Postfix sends the count only at DATA and END-OF-MESSAGE: 0 at RCPT.
      {"recipient_count", recipient_count_},
      {"queue_id", queue_id_},
      {"instance", instance_},
      {"size", size_},
      {"etrn_domain", ""},
      {"stress", ""},
      {"sasl_method", sasl_method_},
      {"sasl_username", sasl_username_},
      {"sasl_sender", ""},
      {"ccert_subject", ccert_subject_},
      {"ccert_issuer", ccert_issuer_},
      {"ccert_fingerprint", ""},
      {"ccert_pubkey_fingerprint", ""},
      {"encryption_protocol", encryption_protocol_},
      {"encryption_cipher", encryption_cipher_},
      {"encryption_keysize", encryption_keysize_},
      {"policy_context", ""},
  };
}

void Client::rcpt(const Macros&, std::string_view address, const std::vector<std::string>&,
                  Callback done) {
  done_ = std::move(done);
  if (options_.stage != Stage::Rcpt) return answer_later({});
  recipient_ = unbracket(address);
  send_query(format_request(attributes(recipient_)));
}

void Client::send_query(std::string request) {
  reader_.reset();
  out_ = std::move(request);
  loop_.cancel_timer(timer_);
  timer_ = loop_.add_timer(options_.timeout, [this] {
    timer_ = 0;
    fail(connecting_ ? "connect timed out" : "timed out waiting for an answer");
  });
  if (fd_) {  // written from on_io, so that a failure never answers inside the call
    loop_.modify_fd(fd_.get(), EPOLLIN | EPOLLOUT);
    return;
  }
  if (int err = milter::open_socket(options_.spec, fd_); err != 0) {
    std::string what = std::string(fd_ ? "connect: " : "socket: ") + base::errno_text(err);
    fd_.reset();
    // Never inside the call: the answer goes through the loop.
    loop_.post(guard_.wrap([this, what] { fail(what); }));
    return;
  }
  connecting_ = true;
  loop_.add_fd(fd_.get(), EPOLLOUT, [this](std::uint32_t events) { on_io(events); });
  watching_ = true;
}

bool Client::flush() {
  while (!out_.empty()) {
    ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      fail(std::string("write: ") + base::errno_text(errno));
      return false;
    }
    out_.erase(0, static_cast<std::size_t>(n));
  }
  return true;
}

void Client::on_io(std::uint32_t events) {
  if (connecting_) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      fail(std::string("connect: ") + base::errno_text(err));
      return;
    }
    connecting_ = false;
    events = EPOLLOUT;
  }
  if (events & EPOLLOUT) {
    if (!flush()) return;
    loop_.modify_fd(fd_.get(), EPOLLIN | (out_.empty() ? 0u : EPOLLOUT));
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      fail(n == 0 ? "the service closed the connection"
                  : std::string("read: ") + base::errno_text(errno));
      return;
    }
    if (!done_ && !eom_done_) {
      fail("an answer without a query");
      return;
    }
    switch (reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
      case ReplyReader::Status::NeedMore:
        continue;
      case ReplyReader::Status::Error:
        fail("malformed answer: " + reader_.error());
        return;
      case ReplyReader::Status::Done:
        on_answer(reader_.action());
        return;
    }
  }
}

void Client::on_answer(const std::string& action) {
  Decision decision;
  std::string error;
  if (!parse_action(action, decision, &error)) {
    fail("bad action: " + error);
    return;
  }
  loop_.cancel_timer(timer_);
  timer_ = 0;
  if (!decision.note.empty())
    base::log("filters").notice("policy " + options_.name + " rcpt=<" + recipient_ +
                                "> instance=" + instance_ + ": " + decision.note);
  apply(decision);
}

void Client::apply(const Decision& decision) {
  for (const auto& mod : decision.modifications) mods_.push_back(mod);
  Verdict verdict = decision.verdict;
  if (verdict.action != Verdict::Action::Continue) verdict.filter = options_.name;
  finish(std::move(verdict));
}

void Client::finish(Verdict verdict) {
  if (eom_done_) {
    EomCallback done = std::exchange(eom_done_, nullptr);
    auto mods = std::exchange(mods_, {});
    start_message();
    done(verdict, std::move(mods));  // last: it may destroy this Client
    return;
  }
  Callback done = std::move(done_);
  done_ = nullptr;
  if (done) done(verdict);  // last: it may destroy this Client
}

void Client::fail(const std::string& reason) {
  close();
  if (!done_ &&
      !eom_done_) {  // between queries (a service that closes idle connections): reconnect later
    base::log("filters").information("policy " + options_.name + ": " + reason);
    return;
  }
  base::log("filters").warning("policy " + options_.name + ": " + reason + "; default action " +
                               options_.default_action_text);
  apply(options_.default_action);
}

void Client::close() {
  if (watching_) loop_.remove_fd(fd_.get());
  watching_ = false;
  connecting_ = false;
  fd_.reset();
  out_.clear();
  loop_.cancel_timer(timer_);
  timer_ = 0;
}

void Client::data(const Macros& macros, Callback done) {
  note_message(macros);
  done_ = std::move(done);
  if (options_.stage != Stage::Data) return answer_later({});
  send_query(format_request(attributes(recipient_)));
}

void Client::header(std::string_view, std::string_view, Callback done) {
  done_ = std::move(done);
  answer_later({});
}

void Client::eoh(const Macros&, Callback done) {
  done_ = std::move(done);
  answer_later({});
}

void Client::body(std::string_view, Callback done) {
  done_ = std::move(done);
  answer_later({});
}

void Client::eom(const Macros& macros, EomCallback done) {
  if (options_.stage == Stage::EndOfMessage) {
    note_message(macros);
    eom_done_ = std::move(done);
    send_query(format_request(attributes(recipient_)));
    return;
  }
  loop_.post(guard_.wrap([mods = std::exchange(mods_, {}), done = std::move(done)]() mutable {
    done({}, std::move(mods));
  }));
  start_message();
}

void Client::abort() {
  start_message();
}

void Client::quit() {
  guard_.cancel_all();
  done_ = nullptr;
  eom_done_ = nullptr;
  close();
}

}  // namespace estafette::policy
