#include "esmtpd/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <ctime>
#include <system_error>

#include "esmtpd/reject_reason.h"
#include "filters/message_pass.h"
#include "lib/base/log.h"
#include "lib/smtp/dotstuff.h"

namespace estafette::esmtpd {

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
// A session that reaches its deadline while its message is being committed answers it first.
constexpr std::chrono::seconds kDeadlineCommitGrace{1};
// A printable, bounded copy of a name the client or the auth backend chose, for the log.
std::string log_token(std::string_view text) {
  std::string out(text.substr(0, 64));
  for (char& c : out)
    if (c < 33 || c > 126) c = '?';
  return out;
}

Poco::Logger& logger() {
  return base::log("esmtpd");
}

// A printable copy of at most `max` bytes of client text for the log (quotes and backslashes
// become '?', so the quoted field cannot end early).
std::string log_text(std::string_view text, std::size_t max) {
  std::string out(text.substr(0, max));
  for (char& c : out)
    if (c < 32 || c > 126 || c == '"' || c == '\\') c = '?';
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace

std::string session_id(long pid, std::uint64_t number) {
  return std::to_string(pid) + "." + std::to_string(number);
}

std::string command_for_log(std::string_view line) {
  std::string_view verb = line.substr(0, line.find(' '));
  std::string_view rest = verb.size() < line.size() ? line.substr(verb.size() + 1) : "";
  if (verb.empty() || verb.size() > 10) return "?";
  std::string upper(verb);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (char c : upper)
    if (c < 'A' || c > 'Z') return "?";
  // The argument only where it is an address or a name; AUTH's initial response is a secret.
  if (upper == "MAIL" || upper == "RCPT" || upper == "HELO" || upper == "EHLO" || upper == "VRFY" ||
      upper == "EXPN")
    return upper + (rest.empty() ? "" : " " + log_text(rest, 256));
  if (upper == "AUTH") return "AUTH " + log_text(rest.substr(0, rest.find(' ')), 32);
  return upper;
}

namespace {

// The client certificate for the TLS log line: " client_cert=verified|failed|none" with its
// fingerprint, subject and issuer (already printable), and whether relay_clientcerts has it.
std::string client_cert_text(const tls::SessionInfo& info, bool trusted) {
  using PeerCert = tls::SessionInfo::PeerCert;
  switch (info.peer_cert) {
    case PeerCert::NotAsked:
      return {};
    case PeerCert::None:
      return " client_cert=none";
    case PeerCert::Verified:
    case PeerCert::Failed:
      break;
  }
  std::string out = info.peer_cert == PeerCert::Verified
                        ? " client_cert=verified"
                        : " client_cert=failed (" + info.verify_error + ")";
  return out + " fingerprint=" + info.peer_fingerprint + (trusted ? " relay=yes" : "") +
         " subject=\"" + info.peer_subject + "\" issuer=\"" + info.peer_issuer + "\"";
}

// Sendmail's {verify} (OK, FAIL, NO: none sent, NOT: none asked for), {cert_subject} and
// {cert_issuer}.
filters::Macros client_cert_macros(const tls::SessionInfo& info) {
  using PeerCert = tls::SessionInfo::PeerCert;
  switch (info.peer_cert) {
    case PeerCert::NotAsked:
      return {{"{verify}", "NOT"}};
    case PeerCert::None:
      return {{"{verify}", "NO"}};
    case PeerCert::Verified:
    case PeerCert::Failed:
      break;
  }
  return {{"{verify}", info.peer_cert == PeerCert::Verified ? "OK" : "FAIL"},
          {"{cert_subject}", info.peer_subject},
          {"{cert_issuer}", info.peer_issuer}};
}
// A full file system (or quota) is worth telling the client: 452 4.3.1, not 451.
smtp::QueueFailure failure_of(int error) {
  return error == ENOSPC || error == EDQUOT ? smtp::QueueFailure::NoSpace
                                            : smtp::QueueFailure::Temporary;
}
}  // namespace

std::string CheckCounters::summary() const {
  auto n = [](const char* name, std::uint64_t v) {
    return " " + std::string(name) + "=" + std::to_string(v);
  };
  return "checks:" + n("checked", checked) + n("rdns_confirmed", rdns_confirmed) +
         n("rdns_unconfirmed", rdns_unconfirmed) + n("rdns_noptr", rdns_noptr) +
         n("rdns_tempfail", rdns_tempfail) + n("dnsbl_listed", dnsbl_listed) +
         n("dnsbl_blocked", dnsbl_blocked) + n("dnsbl_tempfail", dnsbl_tempfail) +
         n("ident_ok", ident_ok) + n("ident_failed", ident_failed) +
         n("refused_access", refused_access) + n("refused_limits", refused_limits);
}

Connection::Connection(ConnectionContext& context, base::UniqueFd fd, smtp::ClientInfo client,
                       std::uint64_t number, std::function<void(std::uint64_t)> on_finished,
                       ConnectionChecksSetup checks)
    : ctx_(context),
      fd_(std::move(fd)),
      session_(context.policy, std::move(client)),
      number_(number),
      id_(session_id(::getpid(), number)),
      on_finished_(std::move(on_finished)),
      commands_(context.max_line),
      data_(
          [this](std::string_view bytes) {
            if (!hops_.header_done()) hops_.feed(bytes);
            if (buffering_) {
              unstuffer_.feed(bytes, filter_buffer_);
              if (!buffer_charge_.grow_to(filter_buffer_.capacity())) {
                // Over the process's budget: the rest is read and dropped, 452 4.3.1 at the end.
                logger().warning("message memory budget exhausted session=" + id_ +
                                 " used=" + std::to_string(ctx_.memory.used()) +
                                 " limit=" + std::to_string(ctx_.memory.limit()));
                data_.refuse(smtp::DataStatus::NoStorage);
                drop_buffer();
              }
            } else if (message_ && !append_failed_ && !message_->append(bytes)) {
              append_failed_ = true;  // the rest is read and dropped; 451/452 at the end
            }
          },
          context.policy.max_message_size, smtp::kDefaultMaxDataLine, context.header_limits),
      started_(event::Clock::now()),
      setup_(std::move(checks)),
      buffer_charge_(context.memory) {}

Connection::~Connection() {
  if (timer_) ctx_.loop.cancel_timer(timer_);
  if (deadline_timer_) ctx_.loop.cancel_timer(deadline_timer_);
  if (greet_timer_) ctx_.loop.cancel_timer(greet_timer_);
  if (handshake_timer_) ctx_.loop.cancel_timer(handshake_timer_);
  if (fd_) ctx_.loop.remove_fd(fd_.get());
  if (message_) ctx_.backend.abort(std::move(message_));
}

void Connection::start() {
  logger().information("connect from " + session_.client().peer_text() + " session=" + id_ +
                       " role=" + std::string(smtp::role_name(session_.client().role)));
  interest_ = EPOLLIN;
  ctx_.loop.add_fd(fd_.get(), interest_, [this](std::uint32_t ev) { on_events(ev); });
  arm_timer();
  // Port 465: TLS from the first byte; the greeting waits for the handshake (greet()).
  if (session_.client().role == smtp::ListenerRole::Submissions && ctx_.tls) {
    implicit_tls_ = true;
    start_handshake();
    if (finished_) return;
  }
  deadline_timer_ = ctx_.loop.add_timer(ctx_.session_deadline, [this] {
    deadline_timer_ = 0;
    on_deadline();
  });
  if (session_.client().filtered) {
    filters_ = ctx_.filters.open_chain();
    filters_->set_session(id_);
    // The connect stage goes first; with checks it waits for their results, and every
    // filter call the session asks for meanwhile waits for it (deferred_filter_).
    filter_connect_pending_ = true;
    if (!setup_.settings) filter_connect();
  }
  if (setup_.settings) {
    checks_ = std::make_unique<checks::ConnectionChecks>(
        ctx_.loop, ctx_.resolver, *setup_.settings, setup_.endpoints, [this] { on_checks_done(); });
    checks_->start();
    // Postfix's greet_wait: hold the greeting while the checks run, at most this long. To reject
    // at the greeting, it waits for the DNS lists (bounded by the resolver's timeouts).
    bool reject_at_greeting =
        ctx_.dnsbl_action == config::DnsblAction::RejectGreeting && !setup_.settings->dnsbl.empty();
    if (ctx_.greet_wait.count() > 0 || reject_at_greeting) {
      if (ctx_.greet_wait.count() > 0 && !reject_at_greeting) {
        greet_timer_ = ctx_.loop.add_timer(ctx_.greet_wait, [this] {
          greet_timer_ = 0;
          greet();
          resume();
        });
      }
      return;
    }
  }
  greet();
}

void Connection::greet() {
  if (greeted_ || finished_ || handshaking_) return;
  // greet_pause: a client that talks before this is a bot that does not wait for us (a local
  // submission is no bot).
  auto not_before =
      started_ + (session_.client().is_local() ? std::chrono::milliseconds(0) : ctx_.greet_pause);
  if (auto now = event::Clock::now(); now < not_before) {
    if (!greet_timer_)
      greet_timer_ = ctx_.loop.add_timer(not_before - now, [this] {
        greet_timer_ = 0;
        greet();
        resume();
      });
    return;
  }
  greeted_ = true;
  if (greet_timer_) ctx_.loop.cancel_timer(greet_timer_);
  greet_timer_ = 0;
  run(session_.start());
}

void Connection::on_checks_done() {
  const auto& r = checks_->results();
  auto& n = ctx_.counters;
  ++n.checked;
  smtp::CheckVerdict verdict;
  std::string line = "checks session=" + id_;
  if (r.rdns.status != checks::RdnsStatus::Off) {
    if (r.rdns.status == checks::RdnsStatus::Confirmed) verdict.rdns = r.rdns.name;
    line += std::string(" rdns=") + checks::to_string(r.rdns.status) + " name=" + verdict.rdns;
    switch (r.rdns.status) {
      case checks::RdnsStatus::Confirmed:
        ++n.rdns_confirmed;
        break;
      case checks::RdnsStatus::Unconfirmed:
        ++n.rdns_unconfirmed;
        break;
      case checks::RdnsStatus::NoPtr:
        ++n.rdns_noptr;
        break;
      default:
        ++n.rdns_tempfail;
        break;
    }
  }
  if (!setup_.settings->dnsbl.empty()) {
    line += " dnsbl_score=" + std::to_string(r.dnsbl.score);
    for (const auto& hit : r.dnsbl.hits) line += " listed=" + hit.zone;
    for (const auto& hit : r.dnsbl.hits)
      ctx_.metrics.add_named(metrics::Metric::EsmtpdDnsblListed, 0, hit.zone);
    for (const auto& zone : r.dnsbl.tempfailed) line += " tempfail=" + zone;
    if (!r.dnsbl.hits.empty()) ++n.dnsbl_listed;
    if (!r.dnsbl.tempfailed.empty()) ++n.dnsbl_tempfail;
    if (r.dnsbl.blocked(ctx_.dnsbl_threshold)) {
      ++n.dnsbl_blocked;
      verdict.block_reply = r.dnsbl.reply_text();
      if (verdict.block_reply.empty())
        verdict.block_reply = "Service unavailable; client [" + session_.client().ip + "] blocked";
      line += " blocked=yes";
    }
  }
  if (r.ident.status != checks::IdentStatus::Off) {
    if (r.ident.status == checks::IdentStatus::Ok) verdict.ident_user = r.ident.user;
    ++(r.ident.status == checks::IdentStatus::Ok ? n.ident_ok : n.ident_failed);
    line += std::string(" ident=") + checks::to_string(r.ident.status);
    if (!verdict.ident_user.empty()) line += " user=" + verdict.ident_user;
  }
  line += " time=" + std::to_string(r.elapsed.count()) + "ms";
  logger().information(line);
  if (!greeted_ && !verdict.block_reply.empty() &&
      ctx_.dnsbl_action == config::DnsblAction::RejectGreeting) {
    greeted_ = true;
    if (greet_timer_) ctx_.loop.cancel_timer(greet_timer_);
    greet_timer_ = 0;
    run({{smtp::ActionKind::Reply, "554 5.7.1 " + verdict.block_reply + "\r\n",
          smtp::Refusal::Dnsbl},
         {smtp::ActionKind::Close, {}}});
    return;
  }
  greet();
  if (finished_) return;
  run(session_.on_checks_done(verdict));
  if (finished_) return;
  if (filters_) filter_connect();  // with the check results in its macros
  resume();
}

filters::Macros Connection::connect_macros() const {
  const auto& c = session_.client();
  filters::Macros m;
  m.reserve(16);
  m.emplace_back("j", ctx_.policy.hostname);
  m.emplace_back("{daemon_name}", "estafette-esmtpd");
  m.emplace_back("v", ctx_.policy.software);
  if (c.is_local()) {
    m.push_back({"{client_addr}", "127.0.0.1"});
    m.push_back({"{client_name}", "localhost"});
    m.push_back({"{client_resolve}", "OK"});
    return m;
  }
  m.push_back({"{client_addr}", c.ip});
  m.push_back({"{client_port}", std::to_string(c.port)});
  if (!setup_.endpoints.server_ip.empty()) {  // sendmail's names; policy services send them
    m.push_back({"{daemon_addr}", setup_.endpoints.server_ip});
    m.push_back({"{daemon_port}", std::to_string(setup_.endpoints.server_port)});
  }
  m.push_back({"{client_name}", c.rdns});
  m.push_back({"_", c.rdns + " [" + c.ip + "]"});
  if (checks_ && checks_->finished()) {
    const auto& r = checks_->results();
    using R = checks::RdnsStatus;
    if (r.rdns.status != R::Off) {
      const char* resolve = r.rdns.status == R::Confirmed     ? "OK"
                            : r.rdns.status == R::Unconfirmed ? "FORGED"
                            : r.rdns.status == R::NoPtr       ? "FAIL"
                                                              : "TEMP";
      m.push_back({"{client_resolve}", resolve});
      if (!r.rdns.ptr_names.empty()) m.push_back({"{client_ptr}", r.rdns.ptr_names.front()});
    }
    if (!setup_.settings->dnsbl.empty()) {
      std::string listed;
      for (const auto& hit : r.dnsbl.hits) listed += (listed.empty() ? "" : " ") + hit.zone;
      m.push_back({"{estafette_dnsbl_score}", std::to_string(r.dnsbl.score)});
      m.push_back({"{estafette_dnsbl_listed}", listed});
    }
    if (r.ident.status == checks::IdentStatus::Ok) m.push_back({"{estafette_ident}", r.ident.user});
  }
  return m;
}

void Connection::filter_connect() {
  const auto& c = session_.client();
  filter_connect_pending_ = true;
  filters::Family family = c.is_local()                          ? filters::Family::Unknown
                           : c.ip.find(':') == std::string::npos ? filters::Family::Inet
                                                                 : filters::Family::Inet6;
  filters_->connect(connect_macros(), c.is_local() ? "localhost" : c.rdns, family, c.port, c.ip,
                    [this](const filters::Verdict& v) {
                      filter_connect_pending_ = false;
                      // From here on a module that answers at once answers inside the call:
                      // no posted answer and no turn of the loop per phase. Each callback
                      // below copes with running inside filter_action() (and so inside
                      // process_input()): it resumes only from outside it.
                      filters_->set_inline_answers(true);
                      if (v.action != filters::Verdict::Action::Continue)
                        log_filter_verdict(v, "connect");
                      run(session_.on_filter_connect(v));
                      if (finished_) return;
                      if (deferred_filter_) {
                        smtp::Action a = std::move(*deferred_filter_);
                        deferred_filter_.reset();
                        filter_action(a);
                        return;
                      }
                      resume();
                    });
}

// "filter session=ID phase=P verdict=V filter=F reason="why it failed" text="the reply"": the
// reason when a failed filter's default action answered; text and reason quoted (a multi-line
// reply stays one line).
void Connection::log_filter_verdict(const filters::Verdict& v, const char* phase) {
  logger().notice("filter session=" + id_ + " phase=" + phase + " verdict=" +
                  filters::to_string(v.action) + (v.filter.empty() ? "" : " filter=" + v.filter) +
                  (v.reason.empty() ? "" : " reason=" + base::log_quote(v.reason)) +
                  (v.text.empty() ? "" : " text=" + base::log_quote(v.text)));
}

void Connection::filter_answer(const filters::Verdict& v, const char* phase) {
  using A = filters::Verdict::Action;
  if (v.action != A::Continue && v.action != A::Accept) log_filter_verdict(v, phase);
  run(session_.on_filter_verdict(v));
  check_early_input();
  // Inside process_input() (an inline answer) its loop goes on with the next command.
  if (!processing_input_) resume();
}

namespace {
// The MAIL parameters we accepted, as milters get them ("SIZE=123", "BODY=8BITMIME").
std::vector<std::string> mail_args(const smtp::Envelope& mail) {
  std::vector<std::string> args;
  if (mail.declared_size > 0) args.push_back("SIZE=" + std::to_string(mail.declared_size));
  if (!mail.body_type.empty()) args.push_back("BODY=" + mail.body_type);
  if (mail.ret != smtp::DsnRet::Unspecified)
    args.push_back("RET=" + std::string(smtp::ret_text(mail.ret)));
  if (!mail.envid.empty()) args.push_back("ENVID=" + mail.envid);
  return args;
}

// The DSN parameters of the session's envelope for the queue: RET, ENVID, and NOTIFY/ORCPT of
// each queued recipient (found by address: the filters may have added or removed some).
// Nothing per recipient when no recipient gave any, as in a record from before DSN.
// The DSN of each queued recipient: that of the RCPT address it came from (`given`: the
// addresses expanded, after the filters' changes; `origin`: per recipient, its index there),
// found by address among the session's recipients. A recipient that an alias expanded gets the
// address the client gave as ORCPT when the client gave none (RFC 3461 5.2.1.1), so notices
// name what the sender wrote.
void set_dsn(queue::Envelope& q, const smtp::Envelope& env, const std::vector<std::string>& given,
             const std::vector<std::size_t>& origin) {
  q.ret = std::string(smtp::ret_text(env.ret));
  q.envid = env.envid;
  q.require_tls = env.require_tls;
  q.dsn.clear();
  bool any = false;
  for (std::size_t k = 0; k < q.recipients.size(); ++k) {
    const std::string& from = k < origin.size() ? given[origin[k]] : q.recipients[k];
    queue::RecipientDsn d;
    for (std::size_t i = 0; i < env.recipients.size() && i < env.dsn.size(); ++i) {
      if (env.recipients[i] != from) continue;
      d = {env.dsn[i].notify, env.dsn[i].orcpt};
      break;
    }
    if (d.orcpt.empty() && from != q.recipients[k]) d.orcpt = "rfc822;" + smtp::xtext_encode(from);
    any = any || !d.notify.empty() || !d.orcpt.empty();
    q.dsn.push_back(std::move(d));
  }
  if (!any) q.dsn.clear();
}
}  // namespace

void Connection::filter_action(const smtp::Action& action) {
  if (filter_connect_pending_) {  // the connect stage first (it may wait for the checks)
    deferred_filter_ = action;
    return;
  }
  auto domain = [](const std::string& address) {
    auto at = address.rfind('@');
    return at == std::string::npos ? std::string() : address.substr(at + 1);
  };
  // A phase no filter receives is answered here and now: no hold, no round trip.
  using P = filters::Phase;
  auto skip = [this](P phase, const filters::Macros& macros) {
    if (filters_->receives(phase)) return false;
    filters_->skipped(phase, macros);
    run(session_.on_filter_verdict(filters::Verdict{}));
    // Inside process_input() its loop goes on with the next command; from anywhere else
    // (a lookup's answer, the connect stage's), resume() does.
    if (!processing_input_) resume();
    return true;
  };
  switch (action.kind) {
    case smtp::ActionKind::FilterHelo: {
      filters::Macros m = tls_macros();
      if (skip(P::Helo, m)) break;
      filters_->helo(std::move(m), action.text,
                     [this](const filters::Verdict& v) { filter_answer(v, "helo"); });
      break;
    }
    case smtp::ActionKind::FilterMail: {
      if (filter_in_message_) filters_->abort();  // the last message never reached its end
      filter_in_message_ = true;
      filter_id_.clear();
      // Built in place (an initializer list would copy every string once more).
      filters::Macros m;
      m.reserve(12);
      m.emplace_back("{mail_addr}", action.text);
      m.emplace_back("{mail_host}", domain(action.text));
      m.emplace_back("{mail_mailer}", "esmtp");
      m.emplace_back("r", session_.esmtp() ? "ESMTP" : "SMTP");
      // One per transaction, for every filter: the policy protocol's "instance".
      m.emplace_back("{estafette_instance}", queue::make_queue_id());
      for (auto& t : tls_macros()) m.push_back(std::move(t));
      for (auto& a : auth_macros()) m.push_back(std::move(a));
      if (skip(P::Mail, m)) break;
      filters_->mail(std::move(m), "<" + action.text + ">", mail_args(session_.pending_mail()),
                     [this](const filters::Verdict& v) { filter_answer(v, "mail"); });
      break;
    }
    case smtp::ActionKind::FilterRcpt: {
      filters::Macros m;
      m.reserve(3);
      m.emplace_back("{rcpt_addr}", action.text);
      m.emplace_back("{rcpt_host}", domain(action.text));
      m.emplace_back("{rcpt_mailer}", "esmtp");
      if (skip(P::Rcpt, m)) break;
      filters_->rcpt(std::move(m), "<" + action.text + ">", {},
                     [this](const filters::Verdict& v) { filter_answer(v, "rcpt"); });
      break;
    }
    case smtp::ActionKind::FilterData: {
      filter_id_ = queue::make_queue_id();
      filters::Macros m = message_macros();
      if (skip(P::Data, m)) break;
      filters_->data(std::move(m), [this](const filters::Verdict& v) { filter_answer(v, "data"); });
      break;
    }
    case smtp::ActionKind::FilterMessage:
      filter_whole_message();
      break;
    default:
      break;
  }
}

// DATA's and end of message's macros: the queue id, sendmail's {nrcpts} (the accepted
// recipients), and {rcpt_addr} when there is one (Postfix's policy protocol sends it then).
filters::Macros Connection::message_macros() const {
  const auto& recipients = session_.envelope().recipients;
  filters::Macros macros;
  macros.reserve(4);
  macros.emplace_back("i", filter_id_);
  macros.emplace_back("{nrcpts}", std::to_string(recipients.size()));
  if (recipients.size() == 1) macros.emplace_back("{rcpt_addr}", recipients.front());
  return macros;
}

void Connection::drop_buffer() {
  buffering_ = false;
  std::string().swap(filter_buffer_);
  buffer_charge_.release();
}

void Connection::filter_whole_message() {
  buffering_ = false;
  // The buffer becomes the parsed message's body in place (no copy); the charge stays until
  // the record is written.
  filters::Macros macros = message_macros();
  macros.emplace_back("{msg_size}", std::to_string(filter_buffer_.size()));
  {
    std::vector<std::string> rcpts;
    for (const auto& r : session_.envelope().recipients) rcpts.push_back("<" + r + ">");
    filters_->message_envelope(rcpts, filter_buffer_.size());
  }
  auto parsed = std::make_shared<filters::ParsedMessage>(
      filters::parse_message_in_place(std::exchange(filter_buffer_, std::string())));
  filters::filter_message(
      *filters_, parsed, std::move(macros),
      [this, parsed](const filters::Verdict& v, std::vector<filters::Modification> mods) {
        filter_in_message_ = false;
        using A = filters::Verdict::Action;
        filters::Verdict verdict = v;
        if (v.action == A::Continue || v.action == A::Accept) {
          const auto& env = session_.envelope();
          filters::Envelope fenv{env.sender, env.recipients, {}};
          filters::apply(mods, *parsed, fenv);
          std::size_t size = parsed->body.size() + 2;
          for (const auto& h : parsed->headers) size += h.name.size() + h.value.size() + 3;
          if (!fenv.quarantine.empty())  // queued on hold (the record's Z), as Postfix's HOLD
            logger().warning("filter quarantine id=" + filter_id_ + " reason=\"" + fenv.quarantine +
                             "\" (on hold: estafette release|delete)");
          if (size > ctx_.policy.max_message_size) {
            // The filters' changes (a replaced body, added headers) made it too big.
            logger().warning("filter id=" + filter_id_ + ": the message is " +
                             std::to_string(size) + " bytes after the filters' changes, over " +
                             "max_message_size; refused");
            verdict = {A::ReplyCode, "552 5.3.4 Message size exceeds fixed limit", {}};
          } else if (fenv.recipients.empty()) {
            // As Postfix and sendmail do: accepted (250) and dropped, no bounce.
            logger().notice("filter id=" + filter_id_ +
                            ": the filters removed every recipient; discarded");
            verdict = {A::Discard, "the filters removed every recipient", {}};
          } else {
            auto qenv = queue_envelope(fenv.sender, fenv.recipients);
            qenv.id = filter_id_;
            qenv.quarantine = fenv.quarantine;
            if (create_record(std::move(qenv)) &&
                !filters::write_wire(
                    *parsed, [this](std::string_view piece) { return message_->append(piece); }))
              append_failed_ = true;
          }
        }
        filter_id_.clear();
        buffer_charge_.release();
        // The phase the verdict came from: a header's reject is not an eom's.
        filter_answer(verdict, filters_->phase());
      });
}

void Connection::lookup_sender(const std::string& domain) {
  sender_lookup_ = ctx_.resolver.resolve_mx(domain, [this](const dns::MxResult& mx) {
    smtp::SenderDomain result = smtp::SenderDomain::TempFail;
    switch (mx.status) {
      case dns::Status::Ok:
        result = smtp::SenderDomain::Ok;
        break;
      case dns::Status::NotFound:
        result = smtp::SenderDomain::NotFound;
        break;
      case dns::Status::PermFail:
        result = smtp::SenderDomain::NullMx;
        break;
      case dns::Status::TempFail:
        result = smtp::SenderDomain::TempFail;
        break;
    }
    run(session_.on_sender_checked(result));
    resume();
  });
}

void Connection::lookup_recipient(const std::string& address) {
  using Outcome = RecipientLookups::Outcome;
  auto done = guard_.wrap([this, address](Outcome outcome, const smtp::RecipientVerdict& verdict) {
    if (outcome == Outcome::Answered) {
      run(session_.on_recipient_checked(verdict));
    } else {
      logger().warning("recipient lookup failed or timed out session=" + id_ + " rcpt=<" + address +
                       ">");
      run(session_.on_recipient_lookup_failed(smtp::RecipientLookupFailure::TimedOut));
    }
    resume();  // pipelined commands that waited for this RCPT
  });
  if (!ctx_.recipient_lookups.submit(ctx_.router, address, std::move(done))) {
    logger().warning("recipient lookups busy session=" + id_ + " rcpt=<" + address + ">");
    run(session_.on_recipient_lookup_failed(smtp::RecipientLookupFailure::Busy));
  }
}

void Connection::resume() {
  if (finished_) return;
  process_input();
  if (finished_) return;
  if (peer_eof_ && !closing_ && !awaiting_commit_ && !session_.waiting()) {
    finish("disconnect");
    return;
  }
  update_interest();
}

void Connection::reject(const std::string& reply) {
  interest_ = 0;
  ctx_.loop.add_fd(fd_.get(), interest_, [this](std::uint32_t ev) { on_events(ev); });
  if (session_.client().role == smtp::ListenerRole::Submissions && ctx_.tls) {
    // Port 465 speaks TLS from the first byte: the refusal too, after the handshake (bounded
    // by tls_handshake_timeout), never as plaintext the client's TLS layer would choke on.
    implicit_tls_ = true;
    tls_refusal_ = reply;
    start_handshake();
    return;
  }
  closing_ = true;
  send(reply);
  flush();
}

void Connection::arm_timer() {
  if (timer_) ctx_.loop.cancel_timer(timer_);
  written_at_arm_ = written_;
  timer_ = ctx_.loop.add_timer(ctx_.timeout, [this] {
    timer_ = 0;
    on_idle_timer();
  });
}

void Connection::on_idle_timer() {
  if (awaiting_commit_) {  // the disk is slow, not the client: wait for the commit
    arm_timer();
    return;
  }
  if (out_start_ < out_.size()) {
    if (written_ != written_at_arm_) {  // a slow reader, but a reader
      arm_timer();
      return;
    }
    // Replies have waited a whole timeout without a byte going out: a 421 would not go either.
    finish(closing_ ? "timeout sending the last reply" : "write timeout");
    return;
  }
  logger().information("timeout session=" + id_);
  run(session_.on_timeout());
  if (!finished_) arm_timer();  // the 421 did not go out at once: it gets one timeout
}

void Connection::on_deadline() {
  if (finished_) return;
  if (deadline_passed_) {  // the 421 was not read in time
    finish("session deadline");
    return;
  }
  if (awaiting_commit_) {  // answer the message being committed first
    deadline_timer_ = ctx_.loop.add_timer(kDeadlineCommitGrace, [this] {
      deadline_timer_ = 0;
      on_deadline();
    });
    return;
  }
  deadline_passed_ = true;
  logger().notice("session deadline session=" + id_ + " " + session_.client().peer_text());
  run(session_.on_deadline());
  if (finished_) return;
  deadline_timer_ = ctx_.loop.add_timer(ctx_.timeout, [this] {
    deadline_timer_ = 0;
    on_deadline();
  });
}

void Connection::on_pregreet() {
  std::size_t bytes = in_.size() - in_start_;
  std::string_view first(in_.data() + in_start_, std::min<std::size_t>(bytes, 60));
  first = first.substr(0, first.find_first_of("\r\n"));
  std::string shown;
  for (char c : first) shown += c >= 32 && c < 127 && c != '"' ? c : '?';
  auto after =
      std::chrono::duration_cast<std::chrono::milliseconds>(event::Clock::now() - started_);
  logger().notice("pregreet session=" + id_ + " " + session_.client().peer_text() +
                  " bytes=" + std::to_string(bytes) + " after=" + std::to_string(after.count()) +
                  "ms text=\"" + shown + "\"");
  greeted_ = true;  // no greeting: the 554 instead
  if (greet_timer_) ctx_.loop.cancel_timer(greet_timer_);
  greet_timer_ = 0;
  in_.clear();
  in_start_ = 0;
  run(session_.on_pregreet());
}

void Connection::on_events(std::uint32_t events) {
  if (finished_) return;
  if (handshaking_) {
    continue_handshake();
    return;
  }
  if ((events & EPOLLOUT) && tls_read_wants_write_) read_input(EPOLLIN);
  if (finished_) return;
  if ((events & EPOLLIN) && tls_write_wants_read_) flush();
  if (finished_) return;
  if (events & EPOLLOUT) {
    bool backlog = output_backlog();
    flush();
    if (finished_) return;
    // Replies went out: run the pipelined commands that waited for them.
    if (backlog && !output_backlog()) resume();
    if (finished_) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_input(events);
}

void Connection::read_input(std::uint32_t events) {
  char buf[kReadChunk];
  // Each chunk is run before the next is read, so a client that does not read its replies
  // leaves its flood in the kernel, not here. A hang-up or error is read at any time.
  const bool hangup = events & (EPOLLHUP | EPOLLERR);
  // (Not while TLS needs a read to finish a write: EPOLLIN stays on for that, so this would spin;
  // input is read then, as it always was.)
  if (!hangup && greeted_ && held() && !tls_write_wants_read_) {
    // Read after the hold, as if EPOLLIN had been off during it (level-triggered: it fires again).
    input_during_hold_ = true;
    update_interest();
    return;
  }
  bool progress = false;
  // Nothing more is read in plaintext once STARTTLS is answered: the handshake reads the rest.
  for (int round = 0; round < 4 && !peer_eof_ && !tls_after_flush_ && !handshaking_ &&
                      (hangup || !output_backlog());
       ++round) {
    ssize_t n = receive(buf, sizeof buf);
    if (n > 0) {
      if (in_start_ == in_.size()) {
        in_.clear();
        in_start_ = 0;
      }
      in_.append(buf, static_cast<std::size_t>(n));
      progress = true;
      if (!greeted_) {
        on_pregreet();
        return;
      }
      process_input();
      if (finished_) return;
      if (static_cast<std::size_t>(n) < sizeof buf) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    peer_eof_ = true;
    progress = true;
  }
  if (progress && !handshaking_) arm_timer();
  if (handshaking_ || finished_) return;
  if (peer_eof_ && !awaiting_commit_ && !session_.waiting() && greeted_) {
    finish(session_.in_data() ? "lost connection in DATA" : "disconnect");
    return;
  }
  update_interest();
}

void Connection::check_early_input() {
  if (!finished_ && session_.refused_data() && in_start_ < in_.size()) {
    logger().notice("pipelined data after a refused DATA session=" + id_ + " " +
                    session_.client().peer_text() +
                    " bytes=" + std::to_string(in_.size() - in_start_));
    run(session_.on_early_input());
  }
}

void Connection::process_input() {
  // Input before the greeting never gets here (on_pregreet); while replies back up, the commands
  // wait.
  const bool outer = std::exchange(processing_input_, true);
  struct Restore {
    bool& flag;
    bool value;
    ~Restore() { flag = value; }
  } restore{processing_input_, outer};
  while (greeted_ && !finished_ && !closing_ && !awaiting_commit_ && !session_.waiting() &&
         !output_backlog() && in_start_ < in_.size()) {
    std::string_view avail(in_.data() + in_start_, in_.size() - in_start_);
    if (session_.in_data()) {
      std::size_t used = data_.feed(avail);
      in_start_ += used;
      if (!data_.done()) break;
      auto status = data_.status();
      auto size = data_.size();
      // A body the disk refused is answered at the Commit action (451, the client retries).
      if (status == smtp::DataStatus::Ok && ctx_.policy.max_hops > 0 &&
          hops_.received() >= ctx_.policy.max_hops)
        logger().warning("mail loop session=" + id_ + " from " + session_.client().peer_text() +
                         ": " + std::to_string(hops_.received()) +
                         " Received: fields, max_hops=" + std::to_string(ctx_.policy.max_hops));
      run(session_.on_data_end(status, size, hops_.received()));
      if (buffering_) drop_buffer();  // refused (too big, ...): the filters never see it
    } else {
      smtp::Line line;
      auto r = commands_.feed(avail, line);
      in_start_ += r.consumed;
      if (!r.line_ready) break;
      // What the next 4xx/5xx answers (never a SASL response: that is a secret).
      if (!session_.in_auth()) last_command_ = command_for_log(line.text);
      run(session_.on_line(line.text, line.status));
      check_early_input();
    }
  }
  if (in_start_ == in_.size()) {
    in_.clear();
    in_start_ = 0;
  }
}

void Connection::log_refusal(std::string_view reply) {
  // One line per refusal, as Postfix's "reject:" lines: who, what they said, what we answered.
  const smtp::Envelope& e = session_.envelope();
  std::string_view first = reply.substr(0, reply.find('\r'));
  logger().notice("reject session=" + id_ + " client=" + session_.client().peer_text() + " cmd=\"" +
                  (last_command_.empty() ? "connect" : last_command_) + "\" reply=\"" +
                  log_text(first, 300) + "\"" +
                  (e.helo.empty() ? "" : " helo=" + log_token(e.helo)) +
                  (session_.in_data() || !e.sender.empty() || !e.recipients.empty()
                       ? " from=<" + log_text(e.sender, 256) + ">"
                       : ""));
}

void Connection::run(smtp::Actions actions) {
  for (auto& action : actions) {
    if (finished_) return;
    switch (action.kind) {
      case smtp::ActionKind::Reply:
        if (!action.text.empty() && (action.text[0] == '4' || action.text[0] == '5')) {
          ctx_.metrics.add(metrics::Metric::EsmtpdRejects,
                           reject_label(action.refusal, action.text));
          log_refusal(action.text);
        }
        send(action.text);
        break;
      case smtp::ActionKind::BeginData:
        begin_data();
        break;
      case smtp::ActionKind::Commit:
        commit();
        break;
      case smtp::ActionKind::Close:
        closing_ = true;
        break;
      case smtp::ActionKind::LookupSender:
        lookup_sender(action.text);
        break;
      case smtp::ActionKind::LookupRecipient:
        lookup_recipient(action.text);
        break;
      case smtp::ActionKind::FilterHelo:
      case smtp::ActionKind::FilterMail:
      case smtp::ActionKind::FilterRcpt:
      case smtp::ActionKind::FilterData:
      case smtp::ActionKind::FilterMessage:
        filter_action(action);
        break;
      case smtp::ActionKind::StartTls:
        prepare_tls();
        break;
      case smtp::ActionKind::VerifyAuth:
        verify_auth(action.text);
        break;
      case smtp::ActionKind::LookupScram:
        lookup_scram(action.text);
        break;
      case smtp::ActionKind::AuthChecked: {
        const smtp::CheckedAuth& checked = session_.checked_auth();
        const bool ok = checked.result == smtp::AuthResult::Accepted;
        auth_verdict(action.text, log_token(checked.user),
                     ok ? auth::Verdict::Accepted : auth::Verdict::Refused, checked.user);
        break;
      }
    }
  }
  flush();
}

auth::ClientInfo Connection::auth_client_info() const {
  const auto& c = session_.client();
  auth::ClientInfo info;
  info.remote_ip = c.ip;
  info.remote_port = c.port;
  info.local_ip = setup_.endpoints.server_ip;
  info.local_port = setup_.endpoints.server_port;
  info.secured = c.tls.has_value();
  return info;
}

void Connection::verify_auth(const std::string& mechanism) {
  auth::ClientInfo info = auth_client_info();
  auth::Credentials credentials = session_.take_credentials();
  std::string name = log_token(credentials.username);  // the client chose it
  if (!ctx_.auth) {  // cannot happen: the session offers AUTH only with a backend
    run(session_.on_auth_result(smtp::AuthResult::Unavailable));
    resume();
    return;
  }
  auto done = guard_.wrap([this, mechanism, name](auth::Verdict verdict, const std::string& user) {
    auth_verdict(mechanism, name, verdict, user);
    resume();  // pipelined commands that waited for the answer
  });
  ctx_.auth->verify(std::move(credentials), info, std::move(done));
}

void Connection::auth_verdict(const std::string& mechanism, const std::string& name,
                              auth::Verdict verdict, const std::string& user) {
  const auto& client = session_.client();
  std::string who = " session=" + id_ + " client=" + client.peer_text() + " mechanism=" + mechanism;
  switch (verdict) {
    case auth::Verdict::Accepted:
      logger().notice("auth ok user=" + log_token(user) + who);
      run(session_.on_auth_result(smtp::AuthResult::Accepted, user));
      break;
    case auth::Verdict::Refused:
      logger().warning("auth failed user=" + name + who);
      ctx_.admission.auth_failed(client.ip);
      run(session_.on_auth_result(smtp::AuthResult::Refused));
      break;
    case auth::Verdict::Unavailable:
      logger().warning("auth unavailable user=" + name + who);
      run(session_.on_auth_result(smtp::AuthResult::Unavailable));
      break;
  }
}

void Connection::lookup_scram(const std::string& user) {
  auth::ClientInfo info = auth_client_info();
  if (!ctx_.auth) {  // cannot happen: the session offers AUTH only with a backend
    run(session_.on_scram_secret(auth::ScramLookup{}, ""));
    resume();
    return;
  }
  auto done = guard_.wrap([this, name = log_token(user)](const auth::ScramLookup& lookup) {
    if (lookup.kind == auth::ScramLookup::Kind::Unavailable)
      logger().warning("auth unavailable user=" + name + " session=" + id_ +
                       " client=" + session_.client().peer_text() + " mechanism=SCRAM-SHA-256");
    run(session_.on_scram_secret(lookup, auth::scram_server_nonce()));
    resume();
  });
  ctx_.auth->scram_secret(user, info, std::move(done));
}

filters::Macros Connection::auth_macros() const {
  if (session_.authenticated_user().empty()) return {};
  return {{"{auth_type}", std::string(session_.auth_mechanism())},
          {"{auth_authen}", session_.authenticated_user()}};
}

ssize_t Connection::receive(char* buffer, std::size_t size) {
  if (!tls_) return ::recv(fd_.get(), buffer, size, 0);
  auto r = tls_->read(buffer, size);
  tls_read_wants_write_ = r.status == tls::Stream::Status::WantWrite;
  return as_socket_result(r, true);
}

ssize_t Connection::transmit(const char* data, std::size_t size) {
  if (!tls_) return ::send(fd_.get(), data, size, MSG_NOSIGNAL);
  auto r = tls_->write(data, size);
  tls_write_wants_read_ = r.status == tls::Stream::Status::WantRead;
  return as_socket_result(r, false);
}

ssize_t Connection::as_socket_result(const tls::Stream::Result& r, bool reading) {
  switch (r.status) {
    case tls::Stream::Status::Ok:
      return static_cast<ssize_t>(r.bytes);
    case tls::Stream::Status::WantRead:
    case tls::Stream::Status::WantWrite:
      errno = EAGAIN;
      return -1;
    case tls::Stream::Status::Closed:
      if (reading) return 0;  // the peer's close_notify: end of input, as recv() says it
      break;
    case tls::Stream::Status::Failed:
      break;
  }
  logger().notice(std::string("TLS ") + (reading ? "read" : "write") + " failed session=" + id_ +
                  ": " + tls_->reason());
  errno = reading ? ECONNRESET : EPIPE;
  return -1;
}

void Connection::prepare_tls() {
  // CVE-2011-0411: whatever came after the STARTTLS line was sent in plaintext before the
  // client could see our 220; it must not be run as if it had come inside TLS.
  if (std::size_t extra = in_.size() - in_start_; extra > 0)
    logger().warning("discarded " + std::to_string(extra) +
                     " bytes pipelined after STARTTLS session=" + id_ + " " +
                     session_.client().peer_text());
  in_.clear();
  in_start_ = 0;
  commands_ = smtp::CommandReader(ctx_.max_line);
  tls_after_flush_ = true;  // flush() starts the handshake once the 220 is out
}

void Connection::start_handshake() {
  tls_after_flush_ = false;
  if (!ctx_.tls) {  // cannot happen: STARTTLS is offered only with a context
    finish("no TLS context");
    return;
  }
  try {
    tls_ = std::make_unique<tls::Stream>(ctx_.tls, fd_.get());
  } catch (const std::exception& e) {
    logger().error(std::string("TLS: ") + e.what());
    finish("TLS unavailable");
    return;
  }
  handshaking_ = true;
  if (timer_) ctx_.loop.cancel_timer(timer_);  // the handshake has its own timeout
  timer_ = 0;
  handshake_timer_ = ctx_.loop.add_timer(ctx_.tls_handshake_timeout, [this] {
    handshake_timer_ = 0;
    logger().notice("TLS handshake timeout session=" + id_ + " " + session_.client().peer_text());
    finish("TLS handshake timeout");
  });
  continue_handshake();
}

void Connection::continue_handshake() {
  std::uint32_t want = 0;
  switch (tls_->handshake()) {
    case tls::Stream::Status::Ok:
      handshake_done();
      return;
    case tls::Stream::Status::WantRead:
      want = EPOLLIN;
      break;
    case tls::Stream::Status::WantWrite:
      want = EPOLLOUT;
      break;
    case tls::Stream::Status::Closed:
    case tls::Stream::Status::Failed:
      ctx_.metrics.add(metrics::Metric::TlsHandshakes, 1);  // Handshake::Failed
      logger().notice("TLS handshake failed session=" + id_ + " " + session_.client().peer_text() +
                      ": " + tls_->reason());
      finish("TLS handshake failed");
      return;
  }
  if (want != interest_) {
    interest_ = want;
    ctx_.loop.modify_fd(fd_.get(), want);
  }
}

void Connection::handshake_done() {
  ctx_.metrics.add(metrics::Metric::TlsHandshakes, 0);  // Handshake::Ok
  handshaking_ = false;
  if (handshake_timer_) ctx_.loop.cancel_timer(handshake_timer_);
  handshake_timer_ = 0;
  auto info = tls_->info();
  const bool trusted = tls_->client_trusted(info);
  logger().information("TLS session=" + id_ + " " + info.version + " cipher=" + info.cipher +
                       " bits=" + std::to_string(info.bits) + (info.resumed ? " resumed=yes" : "") +
                       (info.server_name.empty() ? "" : " sni=" + info.server_name) +
                       client_cert_text(info, trusted));
  cert_macros_ = client_cert_macros(info);
  arm_timer();
  if (!tls_refusal_.empty()) {  // a refused connection on port 465: the reply, then close
    closing_ = true;
    send(std::exchange(tls_refusal_, {}));
    flush();
    return;
  }
  run(session_.on_tls_started({info.version, info.cipher, info.bits, info.alg_bits, trusted}));
  if (finished_) return;
  if (implicit_tls_) greet();
  resume();
}

filters::Macros Connection::tls_macros() const {
  const auto& t = session_.client().tls;
  if (!t) return {};
  filters::Macros out = {{"{tls_version}", t->version},
                         {"{cipher}", t->cipher},
                         {"{cipher_bits}", std::to_string(t->bits)}};
  out.insert(out.end(), cert_macros_.begin(), cert_macros_.end());
  return out;
}

void Connection::begin_data() {
  const auto& env = session_.envelope();
  append_failed_ = false;
  data_.reset();
  hops_.reset();
  buffering_ = false;
  if (session_.client().filtered || session_.discarded()) {
    // The filters see the whole message before it is queued (they may change it), so it is
    // kept here until their verdict; then filter_whole_message() makes the record.
    buffering_ = true;
    unstuffer_ = smtp::Unstuffer();
    if (filter_id_.empty()) filter_id_ = queue::make_queue_id();
    filter_buffer_ = session_.received_header(filter_id_, std::time(nullptr));  // no dot to unstuff
    if (!buffer_charge_.grow_to(filter_buffer_.capacity())) {
      data_.refuse(smtp::DataStatus::NoStorage);
      drop_buffer();
    }
    return;
  }
  if (!create_record(queue_envelope(env.sender, env.recipients))) return;
  auto received = session_.received_header(message_->envelope().id, std::time(nullptr));
  if (!message_->append(received)) append_failed_ = true;
}

queue::Envelope Connection::queue_envelope(const std::string& sender,
                                           const std::vector<std::string>& recipients) const {
  const auto& env = session_.envelope();
  queue::Envelope q;
  q.arrival = std::time(nullptr);
  q.sender = sender;
  q.client_ip = session_.client().ip;
  q.helo = env.helo;
  // Each RCPT had its mailbox checked (off the loop); here only the maps, in memory.
  auto expanded = routing::expand_recipients(*ctx_.router, recipients, routing::MailboxCheck::Skip);
  q.recipients = std::move(expanded.recipients);
  q.programs = std::move(expanded.programs);
  set_dsn(q, env, recipients, expanded.origin);
  return q;
}

bool Connection::create_record(queue::Envelope envelope) {
  append_failed_ = false;
  queue_error_ = 0;
  try {
    message_ = ctx_.backend.create(std::move(envelope));
    return true;
  } catch (const std::system_error& e) {
    logger().error(std::string("cannot create a queue file: ") + e.what());
    queue_error_ = e.code().value();
  } catch (const std::exception& e) {
    logger().error(std::string("cannot create a queue file: ") + e.what());
  }
  message_.reset();
  append_failed_ = true;
  return false;
}

void Connection::commit() {
  if (!message_ || append_failed_) {
    int error = message_ ? message_->write_error() : queue_error_;
    if (message_) ctx_.backend.abort(std::move(message_));
    logger().warning("queue write failed session=" + id_ +
                     (error ? std::string(" error=\"") + base::errno_text(error) + "\"" : ""));
    run(session_.on_queue_failed(failure_of(error)));
    return;
  }
  awaiting_commit_ = true;
  auto id = message_->envelope().id;
  auto sender = message_->envelope().sender;
  auto nrcpt = message_->envelope().recipients.size();
  auto size = message_->body_size();
  // The session's part runs only while this connection exists.
  auto answer = guard_.wrap([this, id](bool ok, int error) {
    awaiting_commit_ = false;
    ++messages_;
    run(ok ? session_.on_queued(id) : session_.on_queue_failed(failure_of(error)));
    resume();  // pipelined commands that waited for the commit
  });
  ctx_.committer.commit(std::move(message_), [&ctx = ctx_, answer = std::move(answer), id, sender,
                                              nrcpt, size, client = session_.client().peer_text()](
                                                 bool ok, int error) mutable {
    // The client may be gone; the message is queued all the same and courierd must know.
    if (ok) {
      logger().information("accepted id=" + id + " client=" + client + " from=<" + sender +
                           "> nrcpt=" + std::to_string(nrcpt) + " size=" + std::to_string(size));
      ctx.on_queued(id);
    } else {
      logger().error("commit failed id=" + id +
                     (error ? std::string(" error=\"") + base::errno_text(error) + "\"" : ""));
    }
    answer(ok, error);
  });
}

void Connection::send(const std::string& text) {
  if (out_start_ == out_.size()) {
    out_.clear();
    out_start_ = 0;
  }
  out_.append(text);
}

void Connection::flush() {
  if (handshaking_) return;  // replies made meanwhile wait for the handshake
  while (out_start_ < out_.size()) {
    ssize_t n = transmit(out_.data() + out_start_, out_.size() - out_start_);
    if (n > 0) {
      out_start_ += static_cast<std::size_t>(n);
      written_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    finish("write error");
    return;
  }
  if (closing_ && out_start_ == out_.size()) {
    finish("closed");
    return;
  }
  if (tls_after_flush_ && out_start_ == out_.size()) {
    start_handshake();
    return;
  }
  update_interest();
}

void Connection::update_interest() {
  if (finished_ || handshaking_) return;
  std::uint32_t want = 0;
  // Before the greeting: watched, to catch a client that talks first. During a hold: left as it
  // was until input comes (read_input), then off until the hold ends.
  if (!held()) input_during_hold_ = false;
  const bool hold_keeps_input = (interest_ & EPOLLIN) && !input_during_hold_;
  if (!closing_ && (!held() || hold_keeps_input) && !peer_eof_ && !output_backlog())
    want |= EPOLLIN;
  if (out_start_ < out_.size()) want |= EPOLLOUT;
  if (tls_) {
    if (tls_read_wants_write_) want |= EPOLLOUT;
    if (tls_write_wants_read_) want |= EPOLLIN;
    // Bytes OpenSSL already decrypted make no epoll event: read them from the next turn.
    if ((want & EPOLLIN) && !tls_read_posted_ && tls_->pending()) {
      tls_read_posted_ = true;
      ctx_.loop.post(guard_.wrap([this] {
        tls_read_posted_ = false;
        if (!finished_ && !handshaking_) read_input(EPOLLIN);
      }));
    }
  }
  if (want != interest_) {
    interest_ = want;
    ctx_.loop.modify_fd(fd_.get(), want);
  }
}

void Connection::finish(const char* why) {
  if (finished_) return;
  finished_ = true;
  auto elapsed = std::chrono::duration<double>(event::Clock::now() - started_).count();
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.3f", elapsed);
  logger().information(std::string("disconnect session=") + id_ + " reason=\"" + why +
                       "\" messages=" + std::to_string(messages_) + " time=" + secs + "s");
  if (tls_ && !handshaking_) tls_->shutdown();
  if (handshake_timer_) ctx_.loop.cancel_timer(handshake_timer_);
  handshake_timer_ = 0;
  handshaking_ = false;
  ctx_.loop.remove_fd(fd_.get());
  tls_.reset();
  fd_.reset();
  if (timer_) ctx_.loop.cancel_timer(timer_);
  timer_ = 0;
  if (deadline_timer_) ctx_.loop.cancel_timer(deadline_timer_);
  deadline_timer_ = 0;
  auto done = on_finished_;
  auto number = number_;
  // Destroy this connection from a fresh loop turn: we may be deep inside its own callback.
  ctx_.loop.post([done, number] { done(number); });
}

}  // namespace estafette::esmtpd
