#include "lib/smtp/server_session.h"

#include "lib/base/dates.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "lib/auth/base64.h"
#include "lib/smtp/address.h"
#include "lib/smtp/esmtp_params.h"

namespace estafette::smtp {
namespace {

[[noreturn]] void broken_invariant(const char* what) {
  std::fprintf(stderr, "estafette::smtp::ServerSession: %s\n", what);
  std::abort();
}

// Printable ASCII only, for text copied from the client into a reply.
std::string sanitize(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c < 32 || c > 126) c = '?';
  }
  return out;
}

// One token of a Received: field from text the client or DNS chose: printable ASCII without
// the characters that would end the token or the field's structure, at most kMaxDomain bytes.
std::string received_token(std::string_view text) {
  std::string out(text.substr(0, kMaxDomain));
  for (char& c : out) {
    if (c <= 32 || c > 126 || c == '(' || c == ')' || c == ';' || c == '\\' || c == '"') c = '?';
  }
  return out;
}

// The address asks for routing beyond its domain: a source route, or in its local part the
// percent hack (user%host), a bang path (host!user) or an '@' (a quoted "user@host").
bool has_routing(std::string_view address, bool source_route) {
  if (source_route) return true;
  auto mailbox = parse_mailbox(address);
  if (!mailbox) return false;
  std::string local = unquote_local(mailbox->local);
  return local.find_first_of("%!@") != std::string::npos;
}

}  // namespace

ServerSession::ServerSession(const ServerPolicy& policy, ClientInfo client)
    : policy_(policy), client_(std::move(client)) {}

Actions ServerSession::reply(std::string_view text) const {
  Action action{ActionKind::Reply, std::string(text)};
  action.text.append("\r\n");
  return {std::move(action)};
}

Actions ServerSession::refuse(Refusal why, std::string_view text) const {
  Actions actions = reply(text);
  actions.front().refusal = why;
  return actions;
}

Actions ServerSession::close(std::string_view text) {
  Actions actions = reply(text);
  actions.push_back({ActionKind::Close, {}});
  state_ = State::kClosed;
  return actions;
}

Actions ServerSession::error(std::string_view text) {
  Actions actions = reply(text);
  ++errors_;
  if (policy_.max_errors > 0 && errors_ >= policy_.max_errors) {
    Actions bye = close("421 4.7.0 " + policy_.hostname + " Error: too many errors");
    actions.insert(actions.end(), bye.begin(), bye.end());
  }
  return actions;
}

Actions ServerSession::junk(std::string_view text) {
  if (policy_.max_junk_commands > 0 && ++junk_ > policy_.max_junk_commands) return error(text);
  return reply(text);
}

void ServerSession::reset_transaction() {
  std::string helo = std::move(envelope_.helo);
  envelope_ = Envelope{};
  envelope_.helo = std::move(helo);
  in_transaction_ = false;
  discard_ = discard_session_;
}

namespace {
// A failed filter's reason is for the logs, never for the client: it gets the 4xx default.
std::string filter_reply(const FilterVerdict& v, std::string_view fallback_reject,
                         std::string_view fallback_tempfail) {
  using A = FilterVerdict::Action;
  if (v.action == A::ReplyCode && !v.text.empty()) return v.text;
  if (v.action == A::Tempfail || v.action == A::Failed) return std::string(fallback_tempfail);
  return std::string(fallback_reject);
}
}  // namespace

Actions ServerSession::on_filter_connect(const FilterVerdict& verdict) {
  using A = FilterVerdict::Action;
  if (state_ == State::kClosed) return {};
  switch (verdict.action) {
    case A::Continue:
      break;
    case A::Accept:  // nothing more to filter in this session
      client_.filtered = false;
      break;
    case A::Discard:
      discard_session_ = discard_ = true;
      break;
    case A::Reject:
    case A::Tempfail:
    case A::ReplyCode:
    case A::Failed:
      session_reply_ = filter_reply(verdict, "554 5.7.1 Access denied by a filter",
                                    "451 4.7.1 Service unavailable - try again later");
      break;
  }
  return {};
}

Actions ServerSession::on_filter_verdict(const FilterVerdict& verdict) {
  using A = FilterVerdict::Action;
  if (state_ == State::kClosed) return {};
  if (state_ != State::kWait || waiting_for_ == ActionKind::Reply)
    broken_invariant("on_filter_verdict() unasked");
  ActionKind phase = std::exchange(waiting_for_, ActionKind::Reply);
  state_ = State::kReady;
  const bool go = verdict.action == A::Continue || verdict.action == A::Accept;
  if (verdict.action == A::Discard) discard_ = true;
  const bool refused = !go && verdict.action != A::Discard;
  switch (phase) {
    case ActionKind::FilterHelo:
      if (refused) {
        envelope_.helo.clear();
        return refuse(Refusal::Filter,
                      filter_reply(verdict, "550 5.7.1 Command rejected",
                                   "451 4.7.1 Service unavailable - try again later"));
      }
      return helo_reply();
    case ActionKind::FilterMail:
      if (refused) {
        pending_mail_ = Envelope{};
        discard_ = discard_session_;
        return refuse(Refusal::Filter,
                      filter_reply(verdict, "550 5.7.1 Sender rejected",
                                   "451 4.7.1 Service unavailable - try again later"));
      }
      return accept_mail();
    case ActionKind::FilterRcpt: {
      std::string rcpt = std::move(pending_rcpt_);
      pending_rcpt_.clear();
      if (refused)
        return refuse(Refusal::Filter,
                      filter_reply(verdict, "550 5.7.1 <" + rcpt + ">: Recipient rejected",
                                   "451 4.7.1 Service unavailable - try again later"));
      envelope_.recipients.push_back(std::move(rcpt));
      envelope_.dsn.push_back(std::move(pending_rcpt_dsn_));
      return reply("250 2.1.5 Ok");
    }
    case ActionKind::FilterData: {
      if (refused) {
        reset_transaction();
        refused_data_ = true;
        return refuse(Refusal::Filter,
                      filter_reply(verdict, "550 5.7.1 Message rejected",
                                   "451 4.7.1 Service unavailable - try again later"));
      }
      state_ = State::kData;
      Actions actions = reply("354 End data with <CR><LF>.<CR><LF>");
      actions.push_back({ActionKind::BeginData, {}});
      return actions;
    }
    case ActionKind::FilterMessage:
      if (go) {
        state_ = State::kCommit;
        return {{ActionKind::Commit, {}}};
      }
      reset_transaction();
      if (verdict.action == A::Discard)
        return reply("250 2.0.0 Ok: discarded" +
                     (verdict.text.empty() ? std::string() : ": " + verdict.text));
      return refuse(Refusal::Filter,
                    filter_reply(verdict, "550 5.7.1 Message content rejected",
                                 "451 4.7.1 Service unavailable - try again later"));
    default:
      break;
  }
  broken_invariant("bad filter phase");
}

bool ServerSession::relay_allowed(std::string_view recipient, bool source_route) const {
  std::string domain = domain_of(recipient);
  if (domain.empty()) return true;  // <postmaster>, always accepted (RFC 5321 4.5.1)
  if (client_.relay_client || !auth_user_.empty() ||
      (client_.tls && client_.tls->client_cert_trusted) ||
      domain_listed(policy_.local_domains, domain))
    return true;
  // A relay domain's next hop might act on routing in the address and relay for anyone.
  return domain_listed(policy_.relay_domains, domain) &&
         (policy_.allow_untrusted_routing || !has_routing(recipient, source_route));
}

Actions ServerSession::start() {
  if (state_ != State::kInit) broken_invariant("start() called twice");
  state_ = State::kReady;
  return reply("220 " + policy_.hostname + " ESMTP " + policy_.software);
}

Actions ServerSession::on_line(std::string_view line, LineStatus status) {
  if (state_ == State::kClosed) return {};
  if (state_ == State::kData) broken_invariant("on_line() during DATA");
  if (state_ == State::kCommit) broken_invariant("on_line() while awaiting the commit");
  if (state_ == State::kWait) broken_invariant("on_line() while waiting for a lookup");
  if (state_ == State::kAuth) return on_auth_line(line, status);
  state_ = State::kReady;
  Command cmd;
  if (status == LineStatus::Ok) cmd = parse_command(line);
  // After a refused DATA, a line that is no valid command is the body the client sent anyway.
  if (std::exchange(refused_data_, false) &&
      (status != LineStatus::Ok || cmd.verb == Verb::Unknown || !cmd.ok()))
    return on_early_input();
  if (status == LineStatus::TooLong) return error("500 5.5.6 Error: line too long");
  if (status == LineStatus::BareLineEnding) {
    return error("500 5.5.2 Error: bare <CR> or <LF> received");
  }
  if (cmd.verb == Verb::Unknown) return error("500 5.5.2 Error: command not recognized");
  if (!cmd.ok()) return error(cmd.error);
  if (cmd.verb == Verb::Data) {
    Actions actions = on_data();
    refused_data_ = state_ == State::kReady;  // not 354 (kData), a filter (kWait) or closed
    return actions;
  }
  if (!session_reply_.empty() && cmd.verb != Verb::Quit && cmd.verb != Verb::Rset &&
      cmd.verb != Verb::Noop)
    return refuse(Refusal::Filter, session_reply_);
  switch (cmd.verb) {
    case Verb::Helo:
    case Verb::Ehlo:
      return on_helo(cmd.argument, cmd.verb == Verb::Ehlo);
    case Verb::Mail:
      return on_mail(cmd);
    case Verb::Rcpt:
      return on_rcpt(cmd);
    case Verb::Data:
      break;  // above
    case Verb::Rset:
      reset_transaction();
      return junk("250 2.0.0 Ok");
    case Verb::Noop:
      return junk("250 2.0.0 Ok");
    case Verb::Quit:
      return close("221 2.0.0 Bye");
    case Verb::Vrfy:
      return junk("252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
    case Verb::Help:
      return junk("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
    case Verb::Starttls:
      return on_starttls();
    case Verb::Auth:
      return on_auth(cmd);
    case Verb::Unknown:
      break;
  }
  return error("500 5.5.2 Error: command not recognized");
}

Actions ServerSession::on_starttls() {
  if (client_.tls) return error("554 5.5.1 Error: TLS already active");
  if (!client_.tls_offered) return error("502 5.5.1 Error: command not implemented");
  if (in_transaction_) return error("503 5.5.1 Error: MAIL transaction in progress");
  Actions actions = reply("220 2.0.0 Ready to start TLS");
  state_ = State::kWait;
  waiting_for_ = ActionKind::StartTls;
  actions.push_back({ActionKind::StartTls, {}});
  return actions;
}

Actions ServerSession::on_tls_started(const TlsInfo& tls) {
  if (state_ == State::kClosed) return {};
  if (state_ == State::kInit) {  // implicit TLS: before the greeting
    client_.tls = tls;
    return {};
  }
  if (state_ != State::kWait || waiting_for_ != ActionKind::StartTls)
    broken_invariant("on_tls_started() unasked");
  waiting_for_ = ActionKind::Reply;
  state_ = State::kReady;
  client_.tls = tls;
  // RFC 3207 4.2: discard any knowledge obtained from the client before TLS.
  envelope_ = Envelope{};
  pending_mail_ = Envelope{};
  esmtp_ = false;
  in_transaction_ = false;
  discard_ = discard_session_;
  refused_data_ = false;
  auth_user_.clear();
  auth_mechanism_.reset();
  scram_.reset();
  return {};
}

bool ServerSession::auth_advertised() const {
  return client_.auth_offered && (client_.tls || policy_.auth_allow_plaintext);
}

std::string_view ServerSession::auth_mechanism() const {
  return auth_mechanism_ ? auth::mechanism_name(*auth_mechanism_) : std::string_view();
}

Actions ServerSession::on_auth(const Command& cmd) {
  if (!client_.auth_offered) return error("503 5.5.1 Error: authentication not enabled");
  if (!esmtp_) return error("503 5.5.1 Error: send EHLO first");
  if (!auth_user_.empty()) return error("503 5.5.1 Error: already authenticated");
  if (in_transaction_) return error("503 5.5.1 Error: MAIL transaction in progress");
  AuthArgument arg = auth_argument(cmd.argument);
  auto mechanism = auth::mechanism_named(arg.mechanism);
  if (!mechanism || (*mechanism == auth::Mechanism::ScramSha256 && !client_.auth_scram))
    return error("504 5.5.4 Unrecognized authentication type");
  if (!client_.tls && !policy_.auth_allow_plaintext)
    return error("538 5.7.11 Encryption required for requested authentication mechanism");
  if (policy_.auth_blocked && policy_.auth_blocked(client_))
    return close("421 4.7.0 " + policy_.hostname +
                 " Error: too many failed authentications, try again later");
  auth_mechanism_ = mechanism;
  if (*mechanism == auth::Mechanism::ScramSha256) {
    scram_.emplace();
    scram_wants_ = ScramWants::ClientFirst;
    if (arg.initial_response) return scram_client_first(*arg.initial_response);
    state_ = State::kAuth;
    return reply("334 ");
  }
  sasl_.emplace(*mechanism);
  return sasl_step(sasl_->start(arg.initial_response));
}

Actions ServerSession::on_auth_line(std::string_view line, LineStatus status) {
  state_ = State::kReady;
  if (status == LineStatus::TooLong) {
    sasl_.reset();
    scram_.reset();
    return error("500 5.5.6 Authentication exchange line is too long");
  }
  if (status != LineStatus::Ok) {
    sasl_.reset();
    scram_.reset();
    return error("501 5.5.2 Error: bare <CR> or <LF> in the authentication exchange");
  }
  if (scram_) return scram_line(line);
  return sasl_step(sasl_->respond(line));
}

Actions ServerSession::scram_line(std::string_view line) {
  if (line == "*") {
    scram_.reset();
    return error("501 5.0.0 Authentication aborted");
  }
  switch (scram_wants_) {
    case ScramWants::ClientFirst:
      return scram_client_first(line);
    case ScramWants::ClientFinal: {
      auto decoded = auth::base64_decode(line);
      if (!decoded) break;
      switch (scram_->client_final(*decoded, nullptr)) {
        case auth::ScramServer::Verdict::Malformed:
          break;
        case auth::ScramServer::Verdict::Refused:
          return scram_checked(AuthResult::Refused);
        case auth::ScramServer::Verdict::Accepted:
          // RFC 4954 4: the server's final data goes in a 334; the client answers "".
          scram_wants_ = ScramWants::Ack;
          state_ = State::kAuth;
          return reply("334 " + auth::base64_encode(scram_->server_final()));
      }
      break;
    }
    case ScramWants::Ack:
      if (line.empty()) return scram_checked(AuthResult::Accepted);
      break;
  }
  scram_.reset();
  return error("501 5.5.2 Error: cannot decode the authentication response");
}

Actions ServerSession::scram_client_first(std::string_view response) {
  // "=" is AUTH's empty initial response (RFC 4954 4); SCRAM has no empty client-first.
  auto decoded = auth::base64_decode(response == "=" ? std::string_view() : response);
  if (!decoded || !scram_->client_first(*decoded, nullptr)) {
    scram_.reset();
    state_ = State::kReady;
    return error("501 5.5.2 Error: cannot decode the authentication response");
  }
  state_ = State::kWait;
  waiting_for_ = ActionKind::LookupScram;
  return {{ActionKind::LookupScram, scram_->username()}};
}

Actions ServerSession::on_scram_secret(const auth::ScramLookup& lookup,
                                       std::string_view server_nonce) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kWait || waiting_for_ != ActionKind::LookupScram || !scram_)
    broken_invariant("on_scram_secret() unasked");
  waiting_for_ = ActionKind::Reply;
  state_ = State::kReady;
  if (lookup.kind == auth::ScramLookup::Kind::Unavailable) {
    scram_.reset();
    return reply("454 4.7.0 Temporary authentication failure, try again later");
  }
  std::string first = scram_->server_first(
      lookup.secret, lookup.kind == auth::ScramLookup::Kind::Found, server_nonce);
  scram_wants_ = ScramWants::ClientFinal;
  state_ = State::kAuth;
  return reply("334 " + auth::base64_encode(first));
}

Actions ServerSession::scram_checked(AuthResult result) {
  checked_auth_ = CheckedAuth{result, scram_->username()};
  scram_.reset();
  state_ = State::kWait;
  waiting_for_ = ActionKind::AuthChecked;
  return {{ActionKind::AuthChecked, std::string(auth_mechanism())}};
}

Actions ServerSession::sasl_step(auth::SaslStep step) {
  using K = auth::SaslStep::Kind;
  switch (step.kind) {
    case K::Challenge:
      state_ = State::kAuth;
      return reply("334 " + step.challenge);
    case K::Credentials:
      sasl_.reset();
      credentials_ = std::move(step.credentials);
      state_ = State::kWait;
      waiting_for_ = ActionKind::VerifyAuth;
      return {{ActionKind::VerifyAuth, std::string(auth_mechanism())}};
    case K::Cancelled:
      sasl_.reset();
      state_ = State::kReady;
      return error("501 5.0.0 Authentication aborted");
    case K::Malformed:
      break;
  }
  sasl_.reset();
  state_ = State::kReady;
  return error("501 5.5.2 Error: cannot decode the authentication response");
}

auth::Credentials ServerSession::take_credentials() {
  if (!credentials_) broken_invariant("take_credentials() without a VerifyAuth");
  auth::Credentials out = std::move(*credentials_);
  credentials_.reset();
  return out;
}

Actions ServerSession::on_auth_result(AuthResult result, std::string_view user) {
  credentials_.reset();  // not taken: wiped here
  if (state_ == State::kClosed) return {};
  if (state_ != State::kWait ||
      (waiting_for_ != ActionKind::VerifyAuth && waiting_for_ != ActionKind::AuthChecked))
    broken_invariant("on_auth_result() unasked");
  checked_auth_ = CheckedAuth{};
  waiting_for_ = ActionKind::Reply;
  state_ = State::kReady;
  switch (result) {
    case AuthResult::Accepted:
      auth_user_ = user.empty() ? "?" : std::string(user);
      return reply("235 2.7.0 Authentication successful");
    case AuthResult::Refused: {
      Actions actions = error("535 5.7.8 Error: authentication failed");
      if (state_ != State::kClosed && policy_.auth_blocked && policy_.auth_blocked(client_)) {
        Actions bye = close("421 4.7.0 " + policy_.hostname +
                            " Error: too many failed authentications, try again later");
        actions.insert(actions.end(), bye.begin(), bye.end());
      }
      return actions;
    }
    case AuthResult::Unavailable:
      return reply("454 4.7.0 Temporary authentication failure, try again later");
  }
  broken_invariant("bad AuthResult");
}

Actions ServerSession::wait_for(ActionKind filter_action, std::string text) {
  state_ = State::kWait;
  waiting_for_ = filter_action;
  return {{filter_action, std::move(text)}};
}

Actions ServerSession::on_helo(std::string_view argument, bool esmtp) {
  reset_transaction();  // RFC 5321 4.1.4: HELO/EHLO also resets the transaction
  envelope_.helo = std::string(argument);
  esmtp_ = esmtp;
  if (client_.filtered) return wait_for(ActionKind::FilterHelo, std::string(argument));
  return helo_reply();
}

Actions ServerSession::helo_reply() const {
  if (!esmtp_) return reply("250 " + policy_.hostname);
  std::string text = "250-" + policy_.hostname + "\r\n";
  text += "250-PIPELINING\r\n";
  text += "250-SIZE " + std::to_string(policy_.max_message_size) + "\r\n";
  text += "250-8BITMIME\r\n";
  if (client_.tls_offered && !client_.tls) text += "250-STARTTLS\r\n";
  if (auth_advertised())
    text +=
        client_.auth_scram ? "250-AUTH PLAIN LOGIN SCRAM-SHA-256\r\n" : "250-AUTH PLAIN LOGIN\r\n";
  text += "250-ENHANCEDSTATUSCODES\r\n";
  text += "250-DSN\r\n";
  if (client_.tls) text += "250-REQUIRETLS\r\n";  // RFC 8689: only inside TLS
  text += "250 HELP";
  return reply(text);
}

Actions ServerSession::on_mail(const Command& cmd) {
  if (envelope_.helo.empty()) return error("503 5.5.1 Error: send HELO/EHLO first");
  if (in_transaction_) return error("503 5.5.1 Error: nested MAIL command");
  if (client_.tls_required && !client_.tls && !client_.is_local())
    return error("530 5.7.0 Must issue a STARTTLS command first");
  if (client_.role != ListenerRole::Mx && !client_.is_local() && auth_user_.empty())
    return error("530 5.7.0 Authentication required");
  MailParams params = parse_mail_params(cmd.params);
  if (!params.error.empty()) return error(params.error);
  // AUTH= (RFC 4954 5) is ours to take or leave: accepted where AUTH is offered, and the
  // message is recorded with the login that authenticated, never with what the client claims.
  if (params.auth && !client_.auth_offered) return error("555 5.5.4 Unsupported option: AUTH");
  if (!auth_user_.empty() && !cmd.address.empty() && policy_.sender_owned &&
      !policy_.sender_owned(auth_user_, cmd.address))
    return error("553 5.7.1 <" + sanitize(cmd.address) +
                 ">: Sender address rejected: not owned by user " + sanitize(auth_user_));
  if (params.size > policy_.max_message_size)
    return error("552 5.3.4 Message size exceeds fixed limit");
  if (params.require_tls && !client_.tls)
    return error("530 5.7.10 REQUIRETLS needs a TLS session (RFC 8689)");
  pending_mail_.sender = cmd.address;
  pending_mail_.body_type = std::move(params.body_type);
  pending_mail_.declared_size = params.size;
  pending_mail_.ret = params.ret;
  pending_mail_.envid = std::move(params.envid);
  pending_mail_.require_tls = params.require_tls;
  std::string domain = domain_of(cmd.address);
  // No lookup for the null sender or an address literal ("user@[192.0.2.1]").
  // An authenticated client is trusted as a relay client is (Courier sets RELAYCLIENT then).
  if (client_.check_sender_domain && auth_user_.empty() && !domain.empty() &&
      domain.front() != '[') {
    state_ = State::kWait;
    return {{ActionKind::LookupSender, std::move(domain)}};
  }
  return mail_checked();
}

Actions ServerSession::mail_checked() {
  if (client_.filtered) return wait_for(ActionKind::FilterMail, pending_mail_.sender);
  return accept_mail();
}

Actions ServerSession::accept_mail() {
  envelope_.sender = std::move(pending_mail_.sender);
  envelope_.body_type = std::move(pending_mail_.body_type);
  envelope_.declared_size = pending_mail_.declared_size;
  envelope_.ret = pending_mail_.ret;
  envelope_.envid = std::move(pending_mail_.envid);
  envelope_.require_tls = pending_mail_.require_tls;
  envelope_.auth_user = auth_user_;
  pending_mail_ = Envelope{};
  in_transaction_ = true;
  return reply("250 2.1.0 Ok");
}

Actions ServerSession::on_sender_checked(SenderDomain result) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kWait || held_rcpt_ || lookup_rcpt_ || waiting_for_ != ActionKind::Reply)
    broken_invariant("on_sender_checked() unasked");
  state_ = State::kReady;
  const std::string who = "<" + pending_mail_.sender + ">: Sender address rejected: ";
  switch (result) {
    case SenderDomain::Ok:
      return mail_checked();
    case SenderDomain::NotFound:
      return reply("550 5.1.8 " + who + "Domain not found");
    case SenderDomain::NullMx:
      return reply("550 5.7.27 " + who + "Domain does not accept mail (null MX)");
    case SenderDomain::TempFail:
      return reply("451 4.1.8 " + who + "Domain lookup failed temporarily, try again later");
  }
  broken_invariant("bad SenderDomain");
}

Actions ServerSession::on_checks_done(const CheckVerdict& verdict) {
  if (state_ == State::kClosed || !client_.checks_pending) return {};
  client_.checks_pending = false;
  client_.rdns = verdict.rdns;
  client_.ident_user = verdict.ident_user;
  block_reply_ = verdict.block_reply;
  if (!held_rcpt_) return {};
  state_ = State::kReady;
  Command cmd = std::move(*held_rcpt_);
  held_rcpt_.reset();
  return on_rcpt(cmd);
}

Actions ServerSession::on_rcpt(const Command& cmd) {
  if (!in_transaction_) return error("503 5.5.1 Error: need MAIL command");
  RcptParams params = parse_rcpt_params(cmd.params);
  if (!params.error.empty()) return error(params.error);
  if (envelope_.recipients.size() >= policy_.max_recipients) {
    return reply("452 4.5.3 Error: too many recipients");
  }
  if (client_.checks_pending) {  // answered by on_checks_done()
    held_rcpt_ = cmd;
    state_ = State::kWait;
    return {};
  }
  if (!block_reply_.empty()) return refuse(Refusal::Dnsbl, "550 5.7.1 " + sanitize(block_reply_));
  RecipientVerdict routed;
  if (policy_.check_recipient) routed = policy_.check_recipient(cmd.address);
  if (routed.lookup) {  // answered by on_recipient_checked() or on_recipient_lookup_failed()
    lookup_rcpt_ = cmd;
    state_ = State::kWait;
    return {{ActionKind::LookupRecipient, cmd.address}};
  }
  return rcpt_routed(cmd, routed);
}

Actions ServerSession::on_recipient_checked(const RecipientVerdict& verdict) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kWait || !lookup_rcpt_ || verdict.lookup)
    broken_invariant("on_recipient_checked() unasked");
  state_ = State::kReady;
  Command cmd = std::move(*lookup_rcpt_);
  lookup_rcpt_.reset();
  return rcpt_routed(cmd, verdict);
}

Actions ServerSession::on_recipient_lookup_failed(RecipientLookupFailure why) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kWait || !lookup_rcpt_)
    broken_invariant("on_recipient_lookup_failed() unasked");
  state_ = State::kReady;
  std::string address = std::move(lookup_rcpt_->address);
  lookup_rcpt_.reset();
  if (why == RecipientLookupFailure::Busy)
    return reply("451 4.3.0 <" + address + ">: Recipient lookups are busy, try again later");
  return reply("451 4.4.3 <" + address + ">: Temporary lookup failure, try again later");
}

Actions ServerSession::rcpt_routed(const Command& cmd, const RecipientVerdict& routed) {
  RcptParams params = parse_rcpt_params(cmd.params);  // checked by on_rcpt()
  if (!routed.reply.empty()) {
    Actions actions = error(routed.reply);
    if (routed.reply.find(" 5.1.1 ") != std::string::npos)  // RFC 3463: bad mailbox address
      actions.front().refusal = Refusal::UnknownUser;
    return actions;
  }
  if (!routed.ours && !relay_allowed(cmd.address, cmd.source_route)) {
    Actions actions = error("550 5.7.1 <" + cmd.address + ">: Relay access denied");
    actions.front().refusal = Refusal::Relay;
    return actions;
  }
  if (client_.filtered) {
    pending_rcpt_ = cmd.address;
    pending_rcpt_dsn_ = {std::move(params.notify), std::move(params.orcpt)};
    return wait_for(ActionKind::FilterRcpt, cmd.address);
  }
  envelope_.recipients.push_back(cmd.address);
  envelope_.dsn.push_back({std::move(params.notify), std::move(params.orcpt)});
  return reply("250 2.1.5 Ok");
}

Actions ServerSession::on_data() {
  if (!session_reply_.empty()) return refuse(Refusal::Filter, session_reply_);
  if (!in_transaction_) return error("503 5.5.1 Error: need MAIL command");
  if (envelope_.recipients.empty()) return error("554 5.5.1 Error: no valid recipients");
  if ((client_.filtered || discard_) && policy_.admit_buffered &&
      !policy_.admit_buffered(envelope_.declared_size))
    return reply("452 4.3.1 Insufficient system storage");
  if (client_.filtered) return wait_for(ActionKind::FilterData, {});
  state_ = State::kData;
  Actions actions = reply("354 End data with <CR><LF>.<CR><LF>");
  actions.push_back({ActionKind::BeginData, {}});
  return actions;
}

Actions ServerSession::on_data_end(DataStatus status, std::size_t size, std::size_t received) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kData) broken_invariant("on_data_end() outside DATA");
  if (status == DataStatus::Ok && size > policy_.max_message_size) status = DataStatus::TooBig;
  switch (status) {
    case DataStatus::Ok:
      if (policy_.max_hops > 0 && received >= policy_.max_hops) {  // ours would be one more
        state_ = State::kReady;
        reset_transaction();
        return reply("554 5.4.6 Too many hops (" + std::to_string(received) +
                     " Received: header fields): mail loop?");
      }
      if (client_.filtered && !discard_) return wait_for(ActionKind::FilterMessage, {});
      if (discard_) {
        state_ = State::kReady;
        reset_transaction();
        return reply("250 2.0.0 Ok: discarded");
      }
      state_ = State::kCommit;
      return {{ActionKind::Commit, {}}};
    case DataStatus::TooBig:
      state_ = State::kReady;
      reset_transaction();
      return reply("552 5.3.4 Message size exceeds fixed limit");
    case DataStatus::BareLineEnding:
      state_ = State::kReady;
      reset_transaction();
      return reply("550 5.6.0 Message contains bare CR or LF, rejected (use CRLF line endings)");
    case DataStatus::LineTooLong:
      state_ = State::kReady;
      reset_transaction();
      return reply("552 5.6.0 Message contains a line that is too long");
    case DataStatus::TooManyHeaders:
      state_ = State::kReady;
      reset_transaction();
      return reply("552 5.3.4 Message header has too many fields");
    case DataStatus::HeaderTooBig:
      state_ = State::kReady;
      reset_transaction();
      return reply("552 5.3.4 Message header field exceeds the size limit");
    case DataStatus::Nul:
      state_ = State::kReady;
      reset_transaction();
      return reply("554 5.6.0 NUL characters not allowed");
    case DataStatus::NoStorage:
      state_ = State::kReady;
      reset_transaction();
      return reply("452 4.3.1 Insufficient system storage");
  }
  broken_invariant("bad DataStatus");
}

Actions ServerSession::on_queued(std::string_view queue_id) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kCommit) broken_invariant("on_queued() without a Commit");
  state_ = State::kReady;
  reset_transaction();
  junk_ = 0;  // as Postfix: the junk count starts again after mail is delivered
  return reply("250 2.0.0 Ok: queued as " + std::string(queue_id));
}

Actions ServerSession::on_queue_failed(QueueFailure why) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kCommit) broken_invariant("on_queue_failed() without a Commit");
  state_ = State::kReady;
  reset_transaction();
  if (why == QueueFailure::NoSpace) return reply("452 4.3.1 Insufficient system storage");
  return reply("451 4.3.0 Error: temporary local problem, try again later");
}

Actions ServerSession::on_timeout() {
  if (state_ == State::kClosed) return {};
  return close("421 4.4.2 " + policy_.hostname + " Error: timeout exceeded");
}

Actions ServerSession::on_deadline() {
  if (state_ == State::kClosed) return {};
  return close("421 4.4.2 " + policy_.hostname + " Error: session time limit exceeded");
}

Actions ServerSession::on_pregreet() {
  if (state_ == State::kClosed) return {};
  return close("554 5.5.1 " + policy_.hostname + " Error: talked before the greeting");
}

Actions ServerSession::on_early_input() {
  if (state_ == State::kClosed) return {};
  refused_data_ = false;
  return close("421 4.5.0 " + policy_.hostname +
               " Error: SMTP protocol synchronization (data sent after a refused DATA)");
}

std::string ClientInfo::peer_text() const {
  if (local_uid) return "local uid=" + std::to_string(*local_uid);
  return "[" + ip + "]:" + std::to_string(port);
}

std::string ServerSession::protocol_name() const {
  if (!esmtp_) return "SMTP";
  std::string name = "ESMTP";
  if (client_.tls) name += 'S';
  if (!auth_user_.empty()) name += 'A';
  return name;
}

std::string ServerSession::received_header(std::string_view queue_id, std::time_t now) const {
  std::string out;
  if (client_.local_uid) {
    out = "Received: from local (uid " + std::to_string(*client_.local_uid) + ")\r\n";
  } else {
    std::string ip = client_.ip.find(':') == std::string::npos ? client_.ip : "IPv6:" + client_.ip;
    std::string ident = client_.ident_user.empty() ? "" : received_token(client_.ident_user) + "@";
    out = "Received: from " + received_token(envelope_.helo) + " (" + ident +
          received_token(client_.rdns) + " [" + received_token(ip) + "])\r\n";
  }
  if (client_.tls)
    out += "\t(using " + received_token(client_.tls->version) + " with cipher " +
           received_token(client_.tls->cipher) + " (" + std::to_string(client_.tls->bits) + "/" +
           std::to_string(client_.tls->alg_bits) + " bits))\r\n";
  out += "\tby " + policy_.hostname + " (" + policy_.software + ") with " + protocol_name() +
         " id " + std::string(queue_id);
  if (envelope_.recipients.size() == 1) {
    out += "\r\n\tfor <" + envelope_.recipients.front() + ">";
  }
  out += "; " + base::rfc5322_date(now) + "\r\n";
  return out;
}

}  // namespace estafette::smtp
