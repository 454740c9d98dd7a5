#include "esmtpclient/esmtp_client.h"

#include "lib/config/resolver_options.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>

#include "lib/auth/scram.h"
#include "lib/base/log.h"
#include "lib/smtp/address.h"

namespace estafette::esmtpclient {

namespace {

constexpr std::size_t kMaxTargets = 10;       // addresses tried per Deliver
constexpr std::size_t kMaxFallbacks = 10000;  // `may` hosts remembered as failing TLS

Poco::Logger& logger() {
  return base::log("esmtpclient");
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

}  // namespace

std::optional<Destination> parse_destination(const std::string& text, std::uint16_t mx_port) {
  if (text.empty()) return std::nullopt;
  Destination d;
  if (text.starts_with("lmtp:")) {
    auto t = config::parse_transport(text);
    if (!t || !t->lmtp()) return std::nullopt;
    d.lmtp = true;
    d.route = true;
    d.unix_path = t->path;
    d.host = t->kind == config::Transport::Kind::LmtpUnix ? t->path : t->host;
    d.port = t->port;
    return d;
  }
  if (text.starts_with("mx:")) {
    if (text.size() == 3) return std::nullopt;
    d.site = true;
    d.port = mx_port;
    return d;
  }
  if (text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close == 1) return std::nullopt;
    d.host = text.substr(1, close - 1);
    d.route = true;
    d.port = mx_port;
    std::string_view rest = std::string_view(text).substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      auto port = parse_port(rest.substr(1));
      if (!port) return std::nullopt;
      d.port = *port;
    }
    return d;
  }
  auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    d.host = text;
    d.port = mx_port;
    return d;
  }
  auto port = parse_port(std::string_view(text).substr(colon + 1));
  if (!port || colon == 0 || text.find(':') != colon) return std::nullopt;
  d.host = text.substr(0, colon);
  d.port = *port;
  d.route = true;
  return d;
}

smtp::ClientTimeouts timeouts_from(const config::Config& config) {
  smtp::ClientTimeouts t;
  t.connect = config.connect_timeout;
  t.greeting = config.greeting_timeout;
  t.mail = config.mail_timeout;
  t.rcpt = config.rcpt_timeout;
  t.data_init = config.data_timeout;
  t.data_block = config.data_block_timeout;
  t.data_end = config.data_end_timeout;
  t.idle = config.idle_reuse;
  t.tls_handshake = config.tls_handshake_timeout;
  return t;
}

EsmtpClient::EsmtpClient(event::Loop& loop, const config::Config& config, base::UniqueFd ipc_fd,
                         std::function<void()> on_exit, config::CredentialTable credentials)
    : loop_(loop),
      config_(config),
      helo_name_(config.hostname.empty() ? "localhost" : config.hostname),
      self_(base::load_self_addresses([&config] {
        std::vector<base::ListenEndpoint> listen;
        for (const auto& hp : config.listen) listen.push_back({hp.host, hp.port});
        return listen;
      }())),
      timeouts_(timeouts_from(config)),
      credentials_(std::move(credentials)),
      tls_(tls::ClientContext::load(tls::client_settings(config))),
      metrics_(metrics::Writer::open(config.metrics_listen.has_value(), config.metrics_dir(),
                                     "estafette-esmtpclient")),
      resolver_(loop, config::resolver_options(config)),
      channel_(
          loop, std::move(ipc_fd), [this](const ipc::Frame& f) { on_frame(f); },
          [this] {
            if (on_exit_) on_exit_();
          }),
      on_exit_(std::move(on_exit)) {
  if (config.mta_sts) policy_source();
  if (config.tls_reporting) reports_ = std::make_unique<TlsReports>(loop, config.tlsrpt_dir());
  channel_.send(ipc::encode(ipc::ModuleReady{"esmtp"}));
}

EsmtpClient::~EsmtpClient() = default;

void EsmtpClient::on_frame(const ipc::Frame& frame) {
  auto job = ipc::decode_deliver(frame);
  if (!job) {
    logger().warning("unexpected frame type=" + std::to_string(frame.type));
    return;
  }
  auto d = std::make_unique<Delivery>();
  d->job = std::move(*job);
  d->started = loop_.now();
  start(std::move(d));
}

void EsmtpClient::start(std::unique_ptr<Delivery> owned) {
  Delivery& d = *owned;
  std::uint64_t id = d.job.job_id;
  if (deliveries_.count(id)) {
    logger().error("duplicate job_id=" + std::to_string(id));
    ipc::DeliverResult r;
    r.job_id = id;
    r.results.assign(d.job.recipients.size(), {ipc::RcptStatus::TempFail, "duplicate job"});
    channel_.send(ipc::encode(r));
    return;
  }
  deliveries_[id] = std::move(owned);
  auto dest = parse_destination(d.job.destination, config_.esmtp_port);
  if (!dest) {
    finish_all(d, ipc::RcptStatus::TempFail,
               "451 4.3.5 bad destination '" + d.job.destination + "'", false);
    return;
  }
  d.destination = *dest;
  if (dest->site) {
    // One domain per job (courierd); any recipient's domain names the MX hosts.
    d.destination.host = d.job.recipients.empty() ? "" : smtp::domain_of(d.job.recipients[0]);
    if (d.destination.host.empty()) {
      finish_all(d, ipc::RcptStatus::TempFail, "451 4.3.5 no recipient domain for a site", false);
      return;
    }
  }
  d.security = security_for(d);
  if (d.security.level == config::TlsLevel::MtaSts && !wants_mta_sts(d)) {
    finish_all(
        d, ipc::RcptStatus::TempFail,
        "451 4.7.5 tls=mta-sts applies to MX deliveries, not to the route " + d.job.destination,
        false);
    return;
  }
  if (wants_mta_sts(d)) {
    d.sts_lookup = policy_source().lookup(d.destination.host, [this,
                                                               id](const mtasts::Decision& sts) {
      auto it = deliveries_.find(id);
      if (it == deliveries_.end()) return;
      Delivery& dd = *it->second;
      dd.sts = sts;
      if (!sts.note.empty())
        logger().information("id=" + dd.job.queue_id + " mta-sts " + sts.domain + ": " + sts.note);
      if (dd.security.level == config::TlsLevel::MtaSts && sts.mode != mtasts::Mode::Enforce) {
        // tls=mta-sts: no enforced policy, no delivery (an attacker who strips the policy must
        // not get the mail in plaintext or to another host).
        std::string why = sts.source == mtasts::Decision::Source::None
                              ? (sts.note.empty() ? "no policy" : sts.note)
                              : std::string("policy mode ") + mtasts::to_string(sts.mode);
        if (reports_ && sts.failed)  // the domain may have a policy we could not get
          reports_->failure(report_policy(dd, {}, nullptr),
                            {tlsrpt::ResultType::StsPolicyFetchError, "", "", "", why});
        finish_all(dd, ipc::RcptStatus::TempFail,
                   "451 4.7.5 MTA-STS is required for " + dd.destination.host + ": " + why, false);
        return;
      }
      // A connection made under an enforced policy is not one made without it.
      if (sts.mode == mtasts::Mode::Enforce) dd.security.pool_key += " mta-sts=" + sts.id;
      connect_or_reuse(dd);
    });
    return;
  }
  connect_or_reuse(d);
}

mtasts::PolicySource& EsmtpClient::policy_source() {
  if (!sts_) {
    sts_cache_ =
        std::make_unique<mtasts::PolicyCache>(config_.mta_sts_dir(), config_.mta_sts_cache_size);
    mtasts::SourceOptions options;
    options.fetch.timeout = config_.mta_sts_timeout;
    sts_ = std::make_unique<mtasts::PolicySource>(loop_, resolver_, tls_, *sts_cache_, options);
  }
  return *sts_;
}

bool EsmtpClient::wants_mta_sts(const Delivery& d) const {
  using L = config::TlsLevel;
  const L level = d.security.level;
  if (d.destination.route || d.security.implicit_tls) return false;
  return level == L::MtaSts ||
         (config_.mta_sts && (level == L::May || level == L::Dane || level == L::Encrypt));
}

void EsmtpClient::connect_or_reuse(Delivery& d) {
  if (Connection* conn = take_idle(d.security.pool_key)) {
    d.reused = true;
    if (!d.connecting) d.connecting = loop_.now();
    run_on(d, *conn);
    return;
  }
  resolve(d);
}

EsmtpClient::Security EsmtpClient::security_for(const Delivery& d) const {
  Security s;
  if (d.destination.lmtp) {  // a local delivery server: no TLS, no AUTH (as Postfix's lmtp)
    s.level = config::TlsLevel::None;
    s.pool_key = d.job.destination;
    return s;
  }
  s.level = config_.tls_policy;
  // Routes are named as in the destinations file; MX deliveries by the recipients' domain.
  std::string key = smtp::to_lower(d.destination.route ? d.job.destination : d.destination.host);
  const config::DestinationLimits* limits = d.destination.route
                                                ? config_.destinations.for_route(key)
                                                : config_.destinations.for_domain(key);
  if (limits && limits->tls) s.level = *limits->tls;
  // REQUIRETLS (RFC 8689 4.2.1): a trusted certificate that names the MX host, at least.
  if (d.job.require_tls && s.level < config::TlsLevel::Verify &&
      s.level != config::TlsLevel::DaneOnly)
    s.level = config::TlsLevel::Verify;
  if (limits) s.match = limits->tls_match;
  s.implicit_tls = limits && limits->implicit_tls
                       ? *limits->implicit_tls
                       : d.destination.route && d.destination.port == 465;
  // Implicit TLS is TLS or nothing.
  if (s.implicit_tls && s.level < config::TlsLevel::Encrypt) s.level = config::TlsLevel::Encrypt;
  s.credentials = credentials_.find(key);
  s.pool_key = d.job.destination + " tls=" + config::to_string(s.level);
  for (const auto& m : s.match) s.pool_key += "," + m;
  if (s.implicit_tls) s.pool_key += " implicit";
  if (s.credentials) s.pool_key += " auth=" + s.credentials->user;
  return s;
}

bool EsmtpClient::in_fallback(const std::string& address) {
  auto it = tls_fallback_.find(address);
  if (it == tls_fallback_.end()) return false;
  if (it->second > loop_.now()) return true;
  tls_fallback_.erase(it);
  return false;
}

std::pair<smtp::ClientSecurity, TlsSetup> EsmtpClient::connection_security(
    const Delivery& d, const Target& t, const dns::DaneVerdict* dane, const mtasts::MxCheck* sts) {
  Security s = d.security;
  smtp::ClientSecurity security;
  TlsSetup setup;
  setup.metrics = metrics_.get();
  const bool dane_verify = dane && dane->state == dns::DaneState::Verify;
  std::string dane_note;
  if (dane && !dane_verify) {         // `dane` where DANE does not apply: opportunistic (dane-only
    s.level = config::TlsLevel::May;  // never gets here: try_next_target refused the host)
    dane_note = " (DANE does not apply: " + dane->reason + ")";
  }
  if (sts) {  // an enforced MTA-STS policy: PKIX-valid TLS for the MX host name, or defer
    s.level = config::TlsLevel::Verify;
    s.match = {sts->verify_name};
  }
  if (s.credentials) {
    security.credentials = smtp::ClientCredentials{s.credentials->user, s.credentials->password};
    if (!no_scram_.contains(s.credentials->user + " " + d.job.destination))
      security.scram_nonce = auth::scram_server_nonce();  // used if the server offers SCRAM
    security.auth_without_tls = config_.client_auth_plaintext;
  }
  const std::string address = t.ip + ":" + std::to_string(t.port);
  bool plaintext =
      s.level == config::TlsLevel::None ||
      (s.level == config::TlsLevel::May && (d.plaintext_retry || in_fallback(address)));
  setup.policy = dane ? std::string(config::to_string(d.security.level)) + dane_note
                      : config::to_string(s.level);
  if (sts) setup.policy = "mta-sts enforce (" + d.sts->id + ")";
  setup.opportunistic = s.level == config::TlsLevel::May;
  if (plaintext) {
    if (s.level == config::TlsLevel::May) setup.policy = "may (plaintext after a failed handshake)";
    return {security, setup};
  }
  security.implicit_tls = s.implicit_tls;
  security.starttls = s.implicit_tls || s.level >= config::TlsLevel::Encrypt
                          ? smtp::StartTls::Required
                          : smtp::StartTls::IfOffered;
  setup.context = tls_;
  if (!is_ip_literal(t.name)) setup.options.server_name = t.name;  // SNI
  if (dane_verify) {
    // RFC 7672: the TLSA records alone authenticate the server; the MX host name is the base
    // domain (DANE-TA's name check).
    security.starttls = smtp::StartTls::Required;
    setup.options.tlsa = dane->records;
    setup.options.dane_base_domain = t.name;
    if (!dane->base_domain.empty()) {
      // The records came from the CNAME target: it is the base domain and the SNI name, and a
      // DANE-TA certificate may name either (RFC 7672 3.2.2).
      setup.options.dane_base_domain = dane->base_domain;
      setup.options.server_name = dane->base_domain;
      setup.options.verify_names = {t.name};
    }
    setup.require_dane = true;
    // A session resumes only where the same records (and base domain) verified it: a session
    // made under one domain's TLSA records must not stand in for another domain's at that address.
    setup.options.destination = address + " dane " + setup.options.dane_base_domain;
    for (const auto& r : dane->records) setup.options.destination += " " + dns::tlsa_text(r);
    return {security, setup};
  }
  if (s.level >= config::TlsLevel::Verify) {
    setup.require_verified = true;
    if (!s.match.empty()) {
      setup.options.verify_names = s.match;
    } else if (s.level == config::TlsLevel::Secure) {
      // The next hop: the recipients' domain, or the route's host; names below it too.
      setup.options.verify_names = {d.destination.host, "." + d.destination.host};
    } else if (!is_ip_literal(t.name)) {
      setup.options.verify_names = {t.name};  // the MX host (or route host) name
    }
  }
  // Sessions are resumed per address and per policy: a session from a `may` connection must
  // never let a `verify` one skip its checks.
  setup.options.destination = address + " " + setup.policy;
  for (const auto& n : setup.options.verify_names) setup.options.destination += " " + n;
  return {security, setup};
}

void EsmtpClient::resolve(Delivery& d) {
  const Destination& dest = d.destination;
  d.targets.clear();
  d.next_target = 0;
  if (!dest.unix_path.empty()) {
    d.targets.push_back({"unix:" + dest.unix_path, "", 0});
    on_targets(d);
    return;
  }
  if (dest.route && is_ip_literal(dest.host)) {
    d.targets.push_back({dest.host, dest.host, dest.port});
    on_targets(d);
    return;
  }
  if (dest.route) {
    d.dns = resolver_.resolve_host(
        dest.host, [this, &d](dns::Status s, std::vector<std::string> addrs) {
          if (s != dns::Status::Ok) {
            finish_all(d, ipc::RcptStatus::TempFail,
                       "451 4.4.3 cannot resolve route host " + d.destination.host + ": " +
                           dns::to_string(s),
                       false);
            return;
          }
          for (auto& a : addrs) d.targets.push_back({d.destination.host, a, d.destination.port});
          on_targets(d);
        });
    return;
  }
  d.dns = resolver_.resolve_mx(dest.host, [this, &d](const dns::MxResult& mx) {
    d.mx = mx;
    const std::string& domain = d.destination.host;
    switch (mx.status) {
      case dns::Status::PermFail:
        finish_all(d, ipc::RcptStatus::PermFail,
                   "556 5.1.10 domain " + domain + " does not accept mail (null MX)", false);
        return;
      case dns::Status::NotFound:
        finish_all(d, ipc::RcptStatus::PermFail,
                   "550 5.1.2 host or domain name not found: " + domain, false);
        return;
      case dns::Status::TempFail:
        finish_all(d, ipc::RcptStatus::TempFail,
                   "451 4.4.3 DNS lookup for " + domain + " failed temporarily", false);
        return;
      case dns::Status::Ok:
        break;
    }
    for (const auto& host : mx.hosts) {
      for (const auto& a : host.addresses)
        d.targets.push_back({host.name, a, d.destination.port, host.preference});
    }
    on_targets(d);
  });
}

void EsmtpClient::on_targets(Delivery& d) {
  // Ourselves: drop that host and every one not better than it (the ones after it).
  auto self = std::find_if(d.targets.begin(), d.targets.end(),
                           [this](const Target& t) { return self_.contains(t.ip, t.port); });
  if (self != d.targets.end()) {
    const unsigned preference = self->preference;
    logger().information("id=" + d.job.queue_id + " destination=" + d.job.destination + " " +
                         self->name + "[" + self->ip + "]:" + std::to_string(self->port) +
                         " is this host: dropping MX preference >= " + std::to_string(preference));
    std::erase_if(d.targets, [preference](const Target& t) { return t.preference >= preference; });
    if (d.targets.empty()) {
      finish_all(d, ipc::RcptStatus::PermFail,
                 "554 5.4.6 mail for " + d.destination.host + " loops back to myself", false);
      return;
    }
  }
  if (d.targets.size() > kMaxTargets) d.targets.resize(kMaxTargets);
  if (d.targets.empty()) {
    finish_all(d, ipc::RcptStatus::TempFail, "451 4.4.3 no address for " + d.destination.host,
               false);
    return;
  }
  try_next_target(d);
}

void EsmtpClient::try_next_target(Delivery& d) {
  if (d.next_target >= d.targets.size()) {
    if (d.last_failure) {
      std::vector<ipc::RcptResult> results;
      for (const auto& r : d.last_failure->results) results.push_back({r.status, r.reply});
      if (d.last_failure->policy_failed) requiretls_bounce(d, results);
      finish(d, std::move(results), !d.last_failure->policy_failed, "", d.last_failure->summary);
    } else {
      finish_all(d, ipc::RcptStatus::TempFail, "451 4.4.1 no host could be reached", true);
    }
    return;
  }
  const Target& t = d.targets[d.next_target];
  if (!dane_ready(d, t)) return;  // its TLSA lookup runs; back here when it is done
  ++d.next_target;
  const dns::DaneVerdict* dane = nullptr;
  if (auto v = d.dane.find(t.name); v != d.dane.end()) {
    dane = &v->second;
    const bool temp = dane->state == dns::DaneState::TempFail;
    if (temp || (dane->state == dns::DaneState::NotApplicable &&
                 d.security.level == config::TlsLevel::DaneOnly)) {
      report_refusal(
          d, t,
          temp ? tlsrpt::Policy{tlsrpt::PolicyType::Tlsa, d.destination.host, {}, {t.name}}
               : report_policy(d, t, nullptr),
          temp ? tlsrpt::ResultType::DnssecInvalid : tlsrpt::ResultType::DaneRequired,
          dane->reason);
      refuse_target(d, "451 4.7.5 DANE for " + t.name + ": " + dane->reason);
      return;
    }
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  auto* un = reinterpret_cast<sockaddr_un*>(&ss);
  const std::string& path = d.destination.unix_path;
  if (!path.empty()) {
    // transport.h bounds the path to sun_path (with its NUL); checked again, it is cheap.
    if (path.size() >= sizeof un->sun_path) {
      finish_all(d, ipc::RcptStatus::TempFail, "451 4.3.5 LMTP socket path too long: " + path,
                 false);
      return;
    }
    un->sun_family = AF_UNIX;
    path.copy(un->sun_path, path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  } else if (inet_pton(AF_INET, t.ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(t.port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, t.ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(t.port);
    len = sizeof *v6;
  } else {
    try_next_target(d);
    return;
  }
  // MTA-STS (DANE wins where it applies, RFC 8461 2).
  std::optional<mtasts::MxCheck> sts;
  if (d.sts && d.sts->mode != mtasts::Mode::None &&
      !(dane && dane->state == dns::DaneState::Verify)) {
    mtasts::MxCheck check = mtasts::check_mx(*d.sts, t.name);
    if (!check.allowed) {
      report_refusal(d, t, report_policy(d, t, dane), tlsrpt::ResultType::ValidationFailure,
                     check.reason);
      refuse_target(d, "451 4.7.5 MTA-STS: " + check.reason);
      return;
    }
    if (check.verify && !check.report_only)
      sts = std::move(check);
    else if (check.report_only && !check.reason.empty())
      logger().information("id=" + d.job.queue_id + " mta-sts testing: " + check.reason);
  }
  auto [security, tls_setup] = connection_security(d, t, dane, sts ? &*sts : nullptr);
  if (!sts && d.sts && d.sts->mode == mtasts::Mode::Testing && tls_setup.context &&
      tls_setup.options.verify_names.empty() && !tls_setup.require_dane) {
    // testing: the certificate is checked as enforce would, for the report; nothing depends on it.
    tls_setup.options.verify_names = {mtasts::check_mx(*d.sts, t.name).verify_name};
    tls_setup.options.destination += " " + tls_setup.options.verify_names[0];
  }
  d.plaintext_retry = false;  // that one connection only
  auto owned = std::make_unique<Connection>(
      loop_, static_cast<ConnectionOwner&>(*this), next_conn_id_++, d.security.pool_key, helo_name_,
      timeouts_, std::move(security), std::move(tls_setup),
      d.destination.lmtp ? smtp::Protocol::Lmtp : smtp::Protocol::Smtp);
  Connection& conn = *owned;
  connections_[&conn] = std::move(owned);
  std::string remote =
      !path.empty() ? t.name
                    : (t.name == t.ip ? "" : t.name) + "[" + t.ip + "]:" + std::to_string(t.port);
  if (!d.connecting) d.connecting = loop_.now();
  d.transaction.reset();
  conn.connect(reinterpret_cast<sockaddr*>(&ss), len, remote);
  d.reused = false;
  run_on(d, conn);
}

void EsmtpClient::refuse_target(Delivery& d, const std::string& reply) {
  // This host fails our policy before any connection: the next one may do better.
  logger().information("id=" + d.job.queue_id + " destination=" + d.job.destination +
                       " policy=" + config::to_string(d.security.level) + " " + reply);
  smtp::TransactionDone done;
  done.host_failed = true;
  done.policy_failed = true;
  done.summary = reply;
  done.results.assign(d.job.recipients.size(), {smtp::DeliveryStatus::TempFail, reply});
  d.last_failure = std::move(done);
  try_next_target(d);
}

bool EsmtpClient::dane_ready(Delivery& d, const Target& t) {
  const auto level = d.security.level;
  if (level != config::TlsLevel::Dane && level != config::TlsLevel::DaneOnly) return true;
  if (d.dane.contains(t.name)) return true;
  const dns::MxHost* host = nullptr;
  if (d.mx) {
    for (const auto& h : d.mx->hosts)
      if (h.name == t.name) host = &h;
  }
  if (!host) {
    d.dane[t.name] = {
        dns::DaneState::NotApplicable, {}, "a static route has no DNSSEC-secured MX lookup"};
    return true;
  }
  if (!dns::dane_wants_tlsa(*d.mx, *host)) {
    d.dane[t.name] = dns::dane_verdict(*d.mx, *host, nullptr);
    return true;
  }
  // An alias: the TLSA records of the end of its CNAME chain first, then (none there, securely)
  // the MX host name's own (RFC 7672 2.2.2; the addresses, and so the chain, are secure here).
  tlsa_lookup(d, t.name, host->canonical.empty() ? t.name : host->canonical, t.port);
  return false;
}

void EsmtpClient::tlsa_lookup(Delivery& d, const std::string& host, const std::string& base,
                              std::uint16_t port) {
  const std::uint64_t id = d.job.job_id;
  d.dns =
      resolver_.lookup_tlsa(base, port, [this, id, host, base, port](const dns::TlsaResult& tlsa) {
        auto it = deliveries_.find(id);
        if (it == deliveries_.end() || !it->second->mx) return;
        Delivery& dd = *it->second;
        const dns::MxHost* h = nullptr;
        for (const auto& mx_host : dd.mx->hosts)
          if (mx_host.name == host) h = &mx_host;
        if (!h) return;
        if (base != host && tlsa.status == dns::Status::NotFound && tlsa.authenticated) {
          // Not from inside the resolver's callback.
          loop_.post(guard_.wrap([this, id, host, port] {
            if (auto d2 = deliveries_.find(id); d2 != deliveries_.end())
              tlsa_lookup(*d2->second, host, host, port);
          }));
          return;
        }
        dns::DaneVerdict verdict = dns::dane_verdict(*dd.mx, *h, &tlsa);
        if (base != host) {
          verdict.reason += " (TLSA records of " + base + ", the CNAME target of " + host + ")";
          verdict.base_domain = base;
        }
        dd.dane[host] = std::move(verdict);
        // Not from inside the resolver's callback: the next step may start another lookup.
        loop_.post(guard_.wrap([this, id] {
          if (auto d2 = deliveries_.find(id); d2 != deliveries_.end()) try_next_target(*d2->second);
        }));
      });
}

void EsmtpClient::run_on(Delivery& d, Connection& conn) {
  base::UniqueFd body(::open(d.job.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!body) {
    std::string reason =
        "451 4.3.0 cannot open queue file " + d.job.path + ": " + base::errno_text(errno);
    if (d.reused) {
      idle_[conn.key()].push_back(&conn);  // untouched: back to the pool
    } else {
      conn.quit();
    }
    finish_all(d, ipc::RcptStatus::TempFail, reason, false);
    return;
  }
  busy_[&conn] = d.job.job_id;
  d.conn = &conn;
  smtp::Transaction txn{d.job.sender, d.job.recipients, d.job.body_size, d.job.ret,
                        d.job.envid,  d.job.notify,     d.job.orcpt,     d.job.require_tls};
  conn.start(std::move(txn), MessageBody{std::move(body), d.job.body_offset, d.job.body_size});
}

tlsrpt::Policy EsmtpClient::report_policy(const Delivery& d, const Target& t,
                                          const dns::DaneVerdict* dane) const {
  tlsrpt::Policy p;
  p.domain = smtp::to_lower(d.destination.host);
  if (dane && dane->state == dns::DaneState::Verify) {
    p.type = tlsrpt::PolicyType::Tlsa;
    for (const auto& r : dane->records) p.strings.push_back(dns::tlsa_text(r));
    p.mx_hosts = {t.name};
  } else if (d.sts && (d.sts->source == mtasts::Decision::Source::None
                           ? d.sts->failed
                           : d.sts->mode != mtasts::Mode::None)) {
    p.type = tlsrpt::PolicyType::Sts;
    if (d.sts->source != mtasts::Decision::Source::None) {
      std::string text = mtasts::format_policy(d.sts->policy);
      for (std::size_t start = 0, end; start < text.size(); start = end + 1) {
        end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) p.strings.push_back(std::move(line));
      }
      p.mx_hosts = d.sts->policy.mx;
    }
  } else {
    p.type = tlsrpt::PolicyType::NoPolicyFound;
  }
  return p;
}

void EsmtpClient::report_refusal(const Delivery& d, const Target& t, const tlsrpt::Policy& policy,
                                 tlsrpt::ResultType result, const std::string& why) {
  if (!reports_ || d.destination.route) return;
  reports_->failure(policy, {result, "", t.name, t.ip, why});
}

void EsmtpClient::report_tls(const Delivery& d, const Connection& conn) {
  if (!reports_ || d.destination.route || d.reused || d.next_target == 0 || !conn.tls_wanted())
    return;
  const Target& t = d.targets[d.next_target - 1];
  const dns::DaneVerdict* dane = nullptr;
  if (auto v = d.dane.find(t.name); v != d.dane.end()) dane = &v->second;
  tlsrpt::Policy policy = report_policy(d, t, dane);
  tlsrpt::Failure f{tlsrpt::ResultType::ValidationFailure, conn.local_ip(), t.name, t.ip, ""};
  if (policy.type == tlsrpt::PolicyType::Sts && d.sts->source == mtasts::Decision::Source::None) {
    f.result = tlsrpt::ResultType::StsPolicyFetchError;  // the domain may have a policy we lack
    f.additional = d.sts->note;
    reports_->failure(policy, f);
    return;
  }
  if (const auto& info = conn.tls_session()) {
    using PeerCert = tls::SessionInfo::PeerCert;
    using Why = tls::SessionInfo::VerifyFailure;
    bool ok = true;
    if (policy.type == tlsrpt::PolicyType::Tlsa) {
      ok = info->dane == tls::SessionInfo::Dane::Verified;
    } else if (policy.type == tlsrpt::PolicyType::Sts) {
      ok = info->peer_cert == PeerCert::Verified;
      if (!ok) {
        switch (info->verify_failure) {
          case Why::NameMismatch:
            f.result = tlsrpt::ResultType::CertificateHostMismatch;
            break;
          case Why::Expired:
            f.result = tlsrpt::ResultType::CertificateExpired;
            break;
          case Why::NotTrusted:
            f.result = tlsrpt::ResultType::CertificateNotTrusted;
            break;
          default:
            break;
        }
      }
    }
    if (ok) {
      reports_->success(policy);
      return;
    }
    f.additional = info->verify_error.empty() ? "certificate not verified" : info->verify_error;
    reports_->failure(policy, f);
    return;
  }
  if (conn.tls_attempted()) {  // the handshake failed
    f.additional = "TLS handshake failed: " + conn.tls_error();
  } else if (conn.greeted()) {  // not offered, or refused
    f.result = tlsrpt::ResultType::StarttlsNotSupported;
  } else {
    return;  // the connection ended before TLS could be tried: not a TLS session
  }
  reports_->failure(policy, f);
}

Connection* EsmtpClient::take_idle(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  Connection* found = nullptr;
  auto& list = it->second;
  while (!list.empty() && !found) {
    Connection* c = list.back();
    list.pop_back();
    if (c->idle()) found = c;
  }
  if (list.empty()) idle_.erase(it);
  return found;
}

void EsmtpClient::on_transaction_done(Connection& conn, const smtp::TransactionDone& done) {
  auto b = busy_.find(&conn);
  if (b == busy_.end()) return;
  std::uint64_t id = b->second;
  busy_.erase(b);
  auto it = deliveries_.find(id);
  if (it == deliveries_.end()) return;
  Delivery& d = *it->second;
  d.conn = nullptr;
  d.transaction = conn.transaction_started();

  std::size_t ok = 0, temp = 0, perm = 0;
  for (const auto& r : done.results) {
    if (r.status == smtp::DeliveryStatus::Delivered) ++ok;
    if (r.status == smtp::DeliveryStatus::TempFail) ++temp;
    if (r.status == smtp::DeliveryStatus::PermFail) ++perm;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(loop_.now() - d.started);
  logger().information("id=" + d.job.queue_id + " conn=" + std::to_string(conn.id()) +
                       " remote=" + conn.remote() + " size=" + std::to_string(d.job.body_size) +
                       " rcpts=" + std::to_string(done.results.size()) +
                       " delivered=" + std::to_string(ok) + " deferred=" + std::to_string(temp) +
                       " bounced=" + std::to_string(perm) + (d.reused ? " reused=yes" : "") +
                       (done.host_failed ? " host_failed=yes" : "") + " " + conn.tls_summary() +
                       " time=" + std::to_string(ms.count()) + "ms reply=" + done.summary);

  report_tls(d, conn);
  if (conn.scram_refused() && d.security.credentials) {
    if (no_scram_.size() >= kMaxFallbacks) no_scram_.clear();
    no_scram_.insert(d.security.credentials->user + " " + d.job.destination);
  }
  if (done.no_reply && d.reused && !d.stale_retried) {
    // The pooled connection had gone stale: retry once on a fresh connection.
    d.stale_retried = true;
    d.reused = false;
    resolve(d);
    return;
  }
  bool all_temp = temp == done.results.size();
  if (conn.tls_failed() && conn.opportunistic() && d.next_target > 0) {
    // Opportunistic TLS that failed: the same host again in plaintext, and for a while.
    const Target& t = d.targets[d.next_target - 1];
    const std::string address = t.ip + ":" + std::to_string(t.port);
    if (tls_fallback_.size() >= kMaxFallbacks) {
      std::erase_if(tls_fallback_, [now = loop_.now()](const auto& e) { return e.second <= now; });
      if (tls_fallback_.size() >= kMaxFallbacks) tls_fallback_.erase(tls_fallback_.begin());
    }
    tls_fallback_[address] = loop_.now() + config_.tls_fallback_time;
    logger().warning("id=" + d.job.queue_id + " remote=" + conn.remote() +
                     " TLS handshake failed under policy may (" + done.summary +
                     "): retrying in plaintext; plaintext for this host for " +
                     std::to_string(config_.tls_fallback_time.count()) + "s");
    d.plaintext_retry = true;
    --d.next_target;
    try_next_target(d);
    return;
  }
  // A failed handshake or a refused certificate is our policy's verdict on this host, not a
  // host that is down: courierd must not hold back other destinations' mail for it.
  const bool policy_failed = done.policy_failed || conn.tls_failed() || conn.policy_refused();
  if (done.host_failed && all_temp && d.next_target < d.targets.size()) {
    d.last_failure = done;
    d.last_failure->policy_failed = policy_failed;
    try_next_target(d);
    return;
  }
  std::vector<ipc::RcptResult> results;
  for (const auto& r : done.results) results.push_back({r.status, r.reply});
  if (policy_failed) requiretls_bounce(d, results);
  finish(d, std::move(results), done.host_failed && !policy_failed, conn.remote(), done.summary,
         done.next_hop_dsn);
}

void EsmtpClient::on_ready(Connection& conn) {
  if (busy_.count(&conn)) return;
  auto& list = idle_[conn.key()];
  if (std::find(list.begin(), list.end(), &conn) == list.end()) list.push_back(&conn);
}

void EsmtpClient::on_closed(Connection& conn) {
  if (auto it = idle_.find(conn.key()); it != idle_.end()) {
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), &conn), list.end());
    if (list.empty()) idle_.erase(it);
  }
  if (auto b = busy_.find(&conn); b != busy_.end()) {  // never expected: the session reports first
    std::uint64_t id = b->second;
    busy_.erase(b);
    if (auto it = deliveries_.find(id); it != deliveries_.end())
      finish_all(*it->second, ipc::RcptStatus::TempFail, "connection closed", true);
  }
  auto it = connections_.find(&conn);
  if (it != connections_.end()) {
    graveyard_.push_back(std::move(it->second));
    connections_.erase(it);
  }
  if (!gc_posted_) {
    gc_posted_ = true;
    loop_.post(guard_.wrap([this] { collect_garbage(); }));
  }
}

void EsmtpClient::collect_garbage() {
  gc_posted_ = false;
  graveyard_.clear();
  finished_.clear();
}

void EsmtpClient::finish(Delivery& d, std::vector<ipc::RcptResult> results, bool host_failed,
                         const std::string& remote, const std::string& summary, bool next_hop_dsn) {
  ipc::DeliverResult r;
  r.job_id = d.job.job_id;
  r.next_hop_dsn = next_hop_dsn;
  r.remote = remote;
  r.host_failed = host_failed;
  r.results = std::move(results);
  r.results.resize(d.job.recipients.size(), {ipc::RcptStatus::TempFail, summary});
  if (d.connecting) {  // c: connection set-up until MAIL; d: MAIL until the end
    const auto end = loop_.now();
    const auto mail = d.transaction ? *d.transaction : end;
    auto ms = [](event::Clock::duration t) {
      return static_cast<std::uint64_t>(std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(t).count()));
    };
    r.setup_ms = ms(mail - *d.connecting);
    r.transfer_ms = ms(end - mail);
  }
  channel_.send(ipc::encode(r));
  auto it = deliveries_.find(d.job.job_id);
  if (it != deliveries_.end()) {
    finished_.push_back(std::move(it->second));
    deliveries_.erase(it);
  }
  if (!gc_posted_) {
    gc_posted_ = true;
    loop_.post(guard_.wrap([this] { collect_garbage(); }));
  }
}

void EsmtpClient::requiretls_bounce(const Delivery& d, std::vector<ipc::RcptResult>& results) {
  // RFC 8689 4.2.1: no MX host could take REQUIRETLS mail over verified TLS: the message is
  // returned, not retried on plaintext or an unverified host.
  if (!d.job.require_tls) return;
  for (auto& r : results) {
    if (r.status != ipc::RcptStatus::TempFail) continue;
    r.status = ipc::RcptStatus::PermFail;
    r.reply = "550 5.7.10 REQUIRETLS could not be met: " + r.reply;
  }
}

void EsmtpClient::finish_all(Delivery& d, ipc::RcptStatus status, const std::string& reply,
                             bool host_failed) {
  if (status != ipc::RcptStatus::Delivered) {
    logger().information("id=" + d.job.queue_id + " destination=" + d.job.destination +
                         " rcpts=" + std::to_string(d.job.recipients.size()) + " " +
                         (status == ipc::RcptStatus::PermFail ? "bounced" : "deferred") +
                         " reply=" + reply);
  }
  std::vector<ipc::RcptResult> results(d.job.recipients.size(), {status, reply});
  finish(d, std::move(results), host_failed, "", reply);
}

}  // namespace estafette::esmtpclient
