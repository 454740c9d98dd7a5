#include "lib/smtp/client_session.h"

#include <cstdlib>

#include "lib/auth/base64.h"

namespace estafette::smtp {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

}  // namespace

DeliveryStatus status_of(const Reply& reply) {
  if (reply.positive()) return DeliveryStatus::Delivered;
  return reply.permanent() ? DeliveryStatus::PermFail : DeliveryStatus::TempFail;
}

const char* to_string(ClientSession::State state) {
  using S = ClientSession::State;
  switch (state) {
    case S::Connecting:
      return "connect";
    case S::Greeting:
      return "greeting";
    case S::Ehlo:
      return "EHLO";
    case S::Helo:
      return "HELO";
    case S::StartTls:
      return "STARTTLS";
    case S::TlsHandshake:
      return "TLS handshake";
    case S::Auth:
      return "AUTH";
    case S::Idle:
      return "idle";
    case S::Transaction:
      return "MAIL/RCPT/DATA";
    case S::Body:
      return "message body";
    case S::EndOfData:
      return "end of data";
    case S::Rset:
      return "RSET";
    case S::Quit:
      return "QUIT";
    case S::Closed:
      return "closed";
  }
  return "?";
}

ClientSession::ClientSession(std::string helo_name, ClientTimeouts timeouts,
                             ClientSecurity security, Protocol protocol)
    : helo_name_(std::move(helo_name)),
      timeouts_(timeouts),
      protocol_(protocol),
      security_(std::move(security)),
      tls_active_(security_.implicit_tls) {}

bool ClientSession::before_mail() const {
  switch (state_) {
    case State::Connecting:
    case State::Greeting:
    case State::Ehlo:
    case State::Helo:
    case State::StartTls:
    case State::TlsHandshake:
    case State::Auth:
      return true;
    default:
      return false;
  }
}

std::chrono::seconds ClientSession::timeout() const {
  switch (state_) {
    case State::Connecting:
      return timeouts_.connect;
    case State::Greeting:
      return timeouts_.greeting;
    case State::Ehlo:
    case State::Helo:
    case State::StartTls:
    case State::Auth:
    case State::Rset:
      return timeouts_.mail;
    case State::TlsHandshake:
      return timeouts_.tls_handshake;
    case State::Idle:
      return timeouts_.idle;
    case State::Transaction:
      if (transaction_ && !transaction_->expect.empty()) {
        switch (transaction_->expect.front()) {
          case Expect::Mail:
            return timeouts_.mail;
          case Expect::Rcpt:
            return timeouts_.rcpt;
          case Expect::Data:
            return timeouts_.data_init;
        }
      }
      return timeouts_.mail;
    case State::Body:
      return timeouts_.data_block;
    case State::EndOfData:
      return timeouts_.data_end;
    case State::Quit:
    case State::Closed:
      return timeouts_.quit;
  }
  return timeouts_.quit;
}

Actions ClientSession::start(Transaction transaction) {
  Actions out;
  if (transaction_ || !(before_mail() || state_ == State::Idle)) std::abort();  // caller's bug
  Pending p;
  p.results.resize(transaction.recipients.size());
  p.accepted.resize(transaction.recipients.size(), false);
  p.txn = std::move(transaction);
  transaction_ = std::move(p);
  if (state_ == State::Idle) begin_transaction(out);
  return out;
}

Actions ClientSession::quit() {
  Actions out;
  if (state_ == State::Idle) {
    send_quit(out);
  } else if (state_ != State::Closed && state_ != State::Quit) {
    if (transaction_) finish(out, DeliveryStatus::TempFail, "session aborted", false);
    state_ = State::Closed;
    out.emplace_back(std::in_place_type<Close>);
  }
  return out;
}

Actions ClientSession::on_connected() {
  if (state_ == State::Connecting) state_ = State::Greeting;
  return {};
}

Actions ClientSession::on_body_sent() {
  if (state_ == State::Body) state_ = State::EndOfData;
  return {};
}

Actions ClientSession::on_reply(const Reply& reply) {
  Actions out;
  if (transaction_) transaction_->got_reply = true;
  if (reply.code == 421 && state_ != State::Quit && state_ != State::Closed) {
    // Service closing: the server is going away whatever we were doing.
    bool before_mail =
        state_ != State::Transaction && state_ != State::Body && state_ != State::EndOfData;
    if (transaction_) {
      finish(out, DeliveryStatus::TempFail, reply.to_string(),
             before_mail || !transaction_->mail_replied);
    }
    state_ = State::Closed;
    out.emplace_back(std::in_place_type<Close>);
    return out;
  }
  switch (state_) {
    case State::Greeting:
      if (reply.code / 100 == 2) {
        out.emplace_back(
            SendBytes{(protocol_ == Protocol::Lmtp ? "LHLO " : "EHLO ") + helo_name_ + "\r\n"});
        state_ = State::Ehlo;
      } else {
        fail_host(out, before_mail_status(reply), reply.to_string());
      }
      break;
    case State::Ehlo:
    case State::Helo:
      on_ehlo_reply(reply, out);
      break;
    case State::StartTls:
      on_starttls_reply(reply, out);
      break;
    case State::Auth:
      on_auth_reply(reply, out);
      break;
    case State::TlsHandshake:  // nothing may come before the handshake
      if (transaction_)
        finish(out, DeliveryStatus::TempFail,
               "reply before the TLS handshake: " + reply.to_string(), true);
      state_ = State::Closed;
      out.emplace_back(std::in_place_type<Close>);
      break;
    case State::Transaction:
    case State::EndOfData:
      on_transaction_reply(reply, out);
      break;
    case State::Body: {
      // The server spoke while we were sending: the stream is out of step; give up.
      DeliveryStatus s = reply.positive() ? DeliveryStatus::TempFail : status_of(reply);
      finish(out, s, "unexpected reply during message body: " + reply.to_string(), false);
      state_ = State::Closed;
      out.emplace_back(std::in_place_type<Close>);
      break;
    }
    case State::Rset:
      if (reply.code / 100 == 2) {
        state_ = State::Idle;
        out.emplace_back(std::in_place_type<Ready>);
      } else {
        send_quit(out);
      }
      break;
    case State::Quit:
    case State::Idle:  // unsolicited
    case State::Connecting:
      state_ = State::Closed;
      out.emplace_back(std::in_place_type<Close>);
      break;
    case State::Closed:
      break;
  }
  return out;
}

void ClientSession::on_ehlo_reply(const Reply& reply, Actions& out) {
  if (reply.code / 100 == 2) {
    if (state_ == State::Ehlo) {
      caps_ = Capabilities{};
      caps_.esmtp = true;
      for (std::size_t i = 1; i < reply.lines.size(); ++i) {
        std::string line = upper(reply.lines[i]);
        std::string_view keyword(line);
        std::string_view param;
        if (auto sp = keyword.find(' '); sp != std::string_view::npos) {
          param = keyword.substr(sp + 1);
          keyword = keyword.substr(0, sp);
        }
        if (keyword == "PIPELINING") {
          caps_.pipelining = true;
        } else if (keyword == "DSN") {
          caps_.dsn = true;
        } else if (keyword == "8BITMIME") {
          caps_.eight_bit_mime = true;
        } else if (keyword == "SIZE") {
          caps_.size = true;
          caps_.size_limit = std::strtoull(std::string(param).c_str(), nullptr, 10);
        } else if (keyword == "STARTTLS") {
          caps_.starttls = true;
        } else if (keyword == "REQUIRETLS") {
          caps_.requiretls = true;
        } else if (keyword == "AUTH" || keyword.starts_with("AUTH=")) {
          // "AUTH PLAIN LOGIN", or the pre-RFC "AUTH=LOGIN PLAIN" some servers still send.
          caps_.auth = true;
          std::string_view mechs = keyword == "AUTH" ? param : std::string_view(line).substr(5);
          while (!mechs.empty()) {
            auto sp = mechs.find(' ');
            std::string_view mech = mechs.substr(0, sp);
            if (mech == "PLAIN") caps_.auth_plain = true;
            if (mech == "LOGIN") caps_.auth_login = true;
            if (mech == "SCRAM-SHA-256") caps_.auth_scram = true;
            mechs = sp == std::string_view::npos ? std::string_view() : mechs.substr(sp + 1);
          }
        }
      }
    }
    after_hello(out);
    return;
  }
  if (state_ == State::Ehlo && reply.permanent() && protocol_ == Protocol::Smtp) {
    out.emplace_back(SendBytes{"HELO " + helo_name_ + "\r\n"});
    state_ = State::Helo;
    return;
  }
  fail_host(out, before_mail_status(reply), reply.to_string());
}

DeliveryStatus ClientSession::before_mail_status(const Reply& reply) const {
  // An LMTP server is our own mailbox store: refusing us before MAIL is its setup's problem
  // (it says nothing about the recipients): the mail waits until the admin fixes it.
  if (protocol_ == Protocol::Lmtp) return DeliveryStatus::TempFail;
  return status_of(reply) == DeliveryStatus::PermFail ? DeliveryStatus::PermFail
                                                      : DeliveryStatus::TempFail;
}

void ClientSession::after_hello(Actions& out) {
  greeted_ = true;
  if (!tls_active_ && !starttls_tried_ && security_.starttls != StartTls::Never && caps_.starttls) {
    starttls_tried_ = true;
    out.emplace_back(SendBytes{"STARTTLS\r\n"});
    state_ = State::StartTls;
    return;
  }
  if (!tls_active_ && security_.starttls == StartTls::Required) {
    fail_host(out, DeliveryStatus::TempFail,
              "451 4.7.5 TLS is required, but was not offered by the server", true);
    return;
  }
  if (security_.credentials && !authenticated_ && caps_.auth) {
    if (!tls_active_ && !security_.auth_without_tls) {
      fail_host(out, DeliveryStatus::TempFail,
                "451 4.7.0 not sending credentials over a connection without TLS", true);
      return;
    }
    if (!start_auth(out, true)) {
      fail_host(out, DeliveryStatus::TempFail,
                "451 4.7.0 the server offers no AUTH mechanism we can use (SCRAM-SHA-256, PLAIN, "
                "LOGIN)");
      return;
    }
    state_ = State::Auth;
    return;
  }
  if (transaction_) {
    begin_transaction(out);
  } else {
    state_ = State::Idle;
    out.emplace_back(std::in_place_type<Ready>);
  }
}

bool ClientSession::start_auth(Actions& out, bool allow_scram) {
  const ClientCredentials& c = *security_.credentials;
  scram_.reset();
  auth_login_ = false;
  auth_error_.clear();
  if (allow_scram && caps_.auth_scram && !security_.scram_nonce.empty()) {
    scram_ = std::make_unique<auth::ScramClient>(c.user, c.password, security_.scram_nonce);
    scram_answered_ = scram_verified_ = false;
    out.emplace_back(
        SendBytes{"AUTH SCRAM-SHA-256 " + auth::base64_encode(scram_->client_first()) + "\r\n"});
  } else if (caps_.auth_plain) {
    std::string response = std::string(1, '\0') + c.user + '\0' + c.password;
    out.emplace_back(SendBytes{"AUTH PLAIN " + auth::base64_encode(response) + "\r\n"});
  } else if (caps_.auth_login) {
    out.emplace_back(SendBytes{"AUTH LOGIN " + auth::base64_encode(c.user) + "\r\n"});
    auth_login_ = true;
  } else {
    return false;
  }
  state_ = State::Auth;
  return true;
}

void ClientSession::on_starttls_reply(const Reply& reply, Actions& out) {
  if (reply.code == 220) {
    state_ = State::TlsHandshake;
    out.emplace_back(std::in_place_type<StartTlsNow>);
    return;
  }
  if (security_.starttls == StartTls::Required) {
    fail_host(out, DeliveryStatus::TempFail,
              "451 4.7.5 TLS is required, but the server refused STARTTLS: " + reply.to_string(),
              true);
    return;
  }
  after_hello(out);  // only wanted: on in plaintext
}

Actions ClientSession::on_tls_started(const std::string& refusal) {
  Actions out;
  if (state_ != State::TlsHandshake) return out;
  tls_active_ = true;
  if (!refusal.empty()) {
    fail_host(out, DeliveryStatus::TempFail, "451 4.7.5 " + refusal, true);
    return out;
  }
  // RFC 3207 4.2: forget what the server said before TLS; ask again.
  caps_ = Capabilities{};
  out.emplace_back(
      SendBytes{(protocol_ == Protocol::Lmtp ? "LHLO " : "EHLO ") + helo_name_ + "\r\n"});
  state_ = State::Ehlo;
  return out;
}

void ClientSession::on_auth_reply(const Reply& reply, Actions& out) {
  if (reply.code == 235 && scram_ && !scram_verified_) {
    // RFC 5802 5: without the server's signature we do not know whom we talk to.
    fail_host(out, DeliveryStatus::TempFail,
              "authentication failed: " + reply.to_string() +
                  " without the SCRAM server signature (deferred)");
    return;
  }
  if (reply.code == 235) {
    authenticated_ = true;
    scram_.reset();
    after_hello(out);
    return;
  }
  if (reply.code == 334 && scram_) {
    auto challenge = auth::base64_decode(reply.lines.empty() ? "" : reply.lines.front());
    std::string why = "SCRAM challenge is not base64";
    if (challenge && !scram_verified_ && !scram_answered_) {
      if (auto final = scram_->server_first(*challenge, &why)) {
        scram_answered_ = true;
        out.emplace_back(SendBytes{auth::base64_encode(*final) + "\r\n"});
        return;
      }
    } else if (challenge && scram_answered_ && !scram_verified_) {
      if (scram_->server_final(*challenge, &why)) {
        scram_verified_ = true;
        out.emplace_back(SendBytes{"\r\n"});
        return;
      }
    }
    auth_error_ = why;
    out.emplace_back(SendBytes{"*\r\n"});
    return;
  }
  if (reply.code == 334 && auth_login_) {
    auth_login_ = false;  // the one challenge left: the password
    out.emplace_back(SendBytes{auth::base64_encode(security_.credentials->password) + "\r\n"});
    return;
  }
  if (reply.code == 334) {  // a challenge we have no answer for: cancel (RFC 4954 4)
    out.emplace_back(SendBytes{"*\r\n"});
    return;
  }
  // The server refused our SCRAM proof: its account may hold a hash SCRAM cannot use (crypt),
  // so PLAIN or LOGIN once more, inside TLS as always. Not when the server failed to prove
  // itself (auth_error_): it may not be the server we mean.
  if (scram_ && auth_error_.empty() && reply.code == 535 &&
      (caps_.auth_plain || caps_.auth_login)) {
    scram_refused_ = true;
    start_auth(out, false);
    return;
  }
  // 535 and friends: a deferral, with the server's words, for the admin to fix.
  const bool ours = !auth_error_.empty();
  fail_host(out, DeliveryStatus::TempFail,
            "authentication failed: " + (ours ? auth_error_ + "; " : std::string()) +
                reply.to_string() +
                (reply.permanent() && !ours ? " (deferred: check client_credentials)" : ""));
}

std::string ClientSession::mail_command() const {
  std::string cmd = "MAIL FROM:<" + transaction_->txn.sender + ">";
  if (caps_.size) cmd += " SIZE=" + std::to_string(transaction_->txn.size);
  if (caps_.dsn) {
    const Transaction& t = transaction_->txn;
    if (!t.ret.empty()) cmd += " RET=" + t.ret;
    if (!t.envid.empty()) cmd += " ENVID=" + t.envid;
  }
  if (transaction_->txn.require_tls) cmd += " REQUIRETLS";
  return cmd + "\r\n";
}

std::string ClientSession::rcpt_command(std::size_t i) const {
  const Transaction& t = transaction_->txn;
  std::string cmd = "RCPT TO:<" + t.recipients[i] + ">";
  if (caps_.dsn) {
    if (i < t.notify.size() && !t.notify[i].empty()) cmd += " NOTIFY=" + t.notify[i];
    if (i < t.orcpt.size() && !t.orcpt[i].empty()) cmd += " ORCPT=" + t.orcpt[i];
  }
  return cmd + "\r\n";
}

void ClientSession::begin_transaction(Actions& out) {
  Pending& t = *transaction_;
  if (t.txn.recipients.empty()) {
    finish(out, DeliveryStatus::PermFail, "no recipients", false);
    state_ = State::Idle;
    out.emplace_back(std::in_place_type<Ready>);
    return;
  }
  if (t.txn.require_tls && !(tls_active_ && caps_.requiretls)) {
    fail_host(out, DeliveryStatus::TempFail,
              tls_active_ ? "451 5.7.10 REQUIRETLS: the server does not offer REQUIRETLS"
                          : "451 5.7.10 REQUIRETLS: no TLS to this server",
              true);
    return;
  }
  if (caps_.size_limit > 0 && t.txn.size > caps_.size_limit) {
    finish(out, DeliveryStatus::PermFail,
           "552 5.3.4 Message size exceeds fixed maximum message size of the server (" +
               std::to_string(caps_.size_limit) + " bytes)",
           false);
    state_ = State::Idle;
    out.emplace_back(std::in_place_type<Ready>);
    return;
  }
  state_ = State::Transaction;
  std::string bytes = mail_command();
  t.expect.push_back(Expect::Mail);
  if (caps_.pipelining) {
    for (std::size_t i = 0; i < t.txn.recipients.size(); ++i) {
      bytes += rcpt_command(i);
      t.expect.push_back(Expect::Rcpt);
    }
    t.next_rcpt = t.txn.recipients.size();
    bytes += "DATA\r\n";
    t.expect.push_back(Expect::Data);
  }
  out.emplace_back(SendBytes{std::move(bytes)});
}

bool ClientSession::any_accepted() const {
  for (bool a : transaction_->accepted)
    if (a) return true;
  return false;
}

void ClientSession::on_transaction_reply(const Reply& reply, Actions& out) {
  Pending& t = *transaction_;
  if (state_ == State::EndOfData && t.lmtp) {
    auto i = t.lmtp->take(reply);
    if (!i) {  // cannot happen: the transaction ended with the last one
      finish(out, DeliveryStatus::TempFail, "unexpected reply: " + reply.to_string(), false);
      state_ = State::Closed;
      out.emplace_back(std::in_place_type<Close>);
      return;
    }
    if (decisive_reply_.empty() || reply.klass() != 2) decisive_reply_ = reply.to_string();
    if (!t.lmtp->complete()) return;
    settle_lmtp("");
    finish(out, DeliveryStatus::TempFail, reply.to_string(), false);
    state_ = State::Idle;
    out.emplace_back(std::in_place_type<Ready>);
    return;
  }
  if (state_ == State::EndOfData) {
    if (!t.discard_body) {
      DeliveryStatus s = status_of(reply);
      for (std::size_t i = 0; i < t.results.size(); ++i) {
        if (t.accepted[i] && !t.results[i]) t.results[i] = RecipientResult{s, reply.to_string()};
      }
    }
    finish(out, DeliveryStatus::TempFail, reply.to_string(), false);
    state_ = State::Idle;  // the transaction is over on both sides: no RSET needed
    out.emplace_back(std::in_place_type<Ready>);
    return;
  }
  if (t.expect.empty()) {  // a reply nobody asked for
    finish(out, DeliveryStatus::TempFail, "unexpected reply: " + reply.to_string(), false);
    state_ = State::Closed;
    out.emplace_back(std::in_place_type<Close>);
    return;
  }
  Expect what = t.expect.front();
  t.expect.pop_front();
  const std::size_t n = t.txn.recipients.size();
  switch (what) {
    case Expect::Mail:
      t.mail_replied = true;
      if (reply.code / 100 != 2) {
        t.mail_failed = true;
        for (auto& r : t.results) r = RecipientResult{status_of(reply), reply.to_string()};
        decisive_reply_ = reply.to_string();
        if (!caps_.pipelining) abort_transaction(out);
        return;
      }
      if (!caps_.pipelining) {
        out.emplace_back(SendBytes{rcpt_command(t.next_rcpt++)});
        t.expect.push_back(Expect::Rcpt);
      }
      return;
    case Expect::Rcpt: {
      std::size_t i = t.rcpt_reply++;
      if (i < n && !t.mail_failed) {
        if (reply.code / 100 == 2) {
          t.accepted[i] = true;
        } else {
          t.results[i] = RecipientResult{status_of(reply), reply.to_string()};
        }
      }
      if (!caps_.pipelining) {
        if (t.next_rcpt < n) {
          out.emplace_back(SendBytes{rcpt_command(t.next_rcpt++)});
          t.expect.push_back(Expect::Rcpt);
        } else if (any_accepted()) {
          out.emplace_back(SendBytes{"DATA\r\n"});
          t.expect.push_back(Expect::Data);
        } else {
          abort_transaction(out);
        }
      }
      return;
    }
    case Expect::Data:
      if (reply.code == 354) {
        if (!t.mail_failed && any_accepted()) {
          if (protocol_ == Protocol::Lmtp) t.lmtp.emplace(t.accepted);
          state_ = State::Body;
          out.emplace_back(std::in_place_type<SendBody>);
        } else {
          // Pipelined DATA accepted although nothing else was: end an empty message.
          t.discard_body = true;
          state_ = State::EndOfData;
          out.emplace_back(SendBytes{".\r\n"});
        }
        return;
      }
      {
        DeliveryStatus s = reply.code / 100 == 2 ? DeliveryStatus::TempFail : status_of(reply);
        for (std::size_t i = 0; i < n; ++i) {
          if (t.accepted[i] && !t.results[i]) t.results[i] = RecipientResult{s, reply.to_string()};
        }
        if (!t.mail_failed) decisive_reply_ = reply.to_string();
        abort_transaction(out);
      }
      return;
  }
}

void ClientSession::settle_lmtp(const std::string& why) {
  Pending& t = *transaction_;
  if (!t.lmtp) return;
  t.lmtp->finish(why);
  for (std::size_t i = 0; i < t.results.size(); ++i)
    if (t.lmtp->status(i) && !t.results[i])
      t.results[i] = RecipientResult{*t.lmtp->status(i), t.lmtp->reply(i)};
}

TransactionDone& ClientSession::finish(Actions& out, DeliveryStatus status,
                                       const std::string& reply, bool host_failed) {
  Pending& t = *transaction_;
  // LMTP: the per-recipient replies that came stand; the rest are deferred with `reply`.
  settle_lmtp(reply);
  TransactionDone done;
  done.host_failed = host_failed;
  done.next_hop_dsn = caps_.dsn && t.mail_replied;
  done.summary = decisive_reply_.empty() ? reply : decisive_reply_;
  for (auto& r : t.results)
    done.results.push_back(r ? std::move(*r) : RecipientResult{status, reply});
  transaction_.reset();
  decisive_reply_.clear();
  out.emplace_back(std::in_place_type<TransactionDone>, std::move(done));
  return std::get<TransactionDone>(out.back());
}

void ClientSession::abort_transaction(Actions& out) {
  finish(out, DeliveryStatus::TempFail, "transaction aborted", false);
  out.emplace_back(SendBytes{"RSET\r\n"});
  state_ = State::Rset;
}

void ClientSession::fail_host(Actions& out, DeliveryStatus status, const std::string& reply,
                              bool policy) {
  if (transaction_) finish(out, status, reply, true).policy_failed = policy;
  send_quit(out);
}

void ClientSession::send_quit(Actions& out) {
  out.emplace_back(SendBytes{"QUIT\r\n"});
  state_ = State::Quit;
}

Actions ClientSession::on_timeout() {
  Actions out;
  if (state_ == State::Idle) {
    send_quit(out);
    return out;
  }
  if (state_ == State::Closed) return out;
  if (transaction_) {
    bool host_failed =
        before_mail() || (state_ == State::Transaction && !transaction_->mail_replied);
    std::string what = state_ == State::Connecting ? "connect timeout"
                       : state_ == State::Body
                           ? "timeout sending the message body"
                           : std::string("timeout waiting for ") + to_string(state_) + " reply";
    finish(out, DeliveryStatus::TempFail, what, host_failed);
  }
  state_ = State::Closed;
  out.emplace_back(std::in_place_type<Close>);
  return out;
}

Actions ClientSession::on_closed(const std::string& reason) {
  Actions out;
  if (state_ == State::Closed) return out;
  if (transaction_) {
    bool no_reply = !transaction_->got_reply;
    bool host_failed =
        before_mail() || (state_ == State::Transaction && !transaction_->mail_replied && !no_reply);
    std::string where =
        state_ == State::Connecting || state_ == State::TlsHandshake
            ? reason
            : "connection lost in " + std::string(to_string(state_)) + ": " + reason;
    // A fresh connection that never got a greeting is a host failure, not a stale reuse.
    if (state_ == State::Connecting || state_ == State::Greeting) host_failed = true;
    finish(out, DeliveryStatus::TempFail, where, host_failed).no_reply =
        no_reply && state_ == State::Transaction;
  }
  state_ = State::Closed;
  out.emplace_back(std::in_place_type<Close>);
  return out;
}

}  // namespace estafette::smtp
