#include "lib/config/settings.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <vector>

#include "lib/config/values.h"
#include "lib/smtp/address.h"

namespace estafette::config {
namespace {

// Typed parsers: each stores into one Config field and throws std::invalid_argument with the
// reason. The reasons are the texts parse_config has always given (tests match them).

template <bool Config::*F>
void yes_no(ParseState& s, const std::string& v) {
  auto l = lower(v);
  if (l == "yes" || l == "true" || l == "on" || l == "1")
    s.config.*F = true;
  else if (l == "no" || l == "false" || l == "off" || l == "0")
    s.config.*F = false;
  else
    throw std::invalid_argument("expected yes or no");
}

// A size with an optional unit (K, M, G), at least kMin.
template <std::size_t Config::*F, std::size_t kMin>
void size(ParseState& s, const std::string& v) {
  auto n = parse_size(v);
  if (!n) throw std::invalid_argument("expected a size such as 1000, 64K or 10M");
  if (*n < kMin) throw std::invalid_argument("must be at least " + std::to_string(kMin));
  s.config.*F = *n;
}

enum class Zero { Invalid, NoLimit };

// A count; with Zero::NoLimit, 0 is allowed and means "no limit".
template <std::size_t Config::*F, Zero kZero = Zero::Invalid>
void count(ParseState& s, const std::string& v) {
  constexpr bool zero_ok = kZero == Zero::NoLimit;
  auto n = parse_number<std::size_t>(v);
  if (!n || (*n == 0 && !zero_ok))
    throw std::invalid_argument(zero_ok ? "expected a number (0 = no limit)"
                                        : "expected a positive number");
  s.config.*F = *n;
}

// A number from kMin to kMax, with its own reason.
template <int Config::*F, int kMin, int kMax>
void int_in_range(ParseState& s, const std::string& v) {
  auto n = parse_number<int>(v);
  if (!n || *n < kMin || *n > kMax)
    throw std::invalid_argument(kMax == std::numeric_limits<int>::max()
                                    ? "expected a positive number"
                                    : "expected " + std::to_string(kMin) + " to " +
                                          std::to_string(kMax));
  s.config.*F = *n;
}

template <std::size_t Config::*F>
void processes(ParseState& s, const std::string& v) {
  if (lower(v) == "auto") {
    s.config.*F = kAutoProcesses;
    return;
  }
  auto n = parse_number<std::size_t>(v);
  if (!n || *n < 1 || *n > kMaxProcesses)
    throw std::invalid_argument("expected auto or a number from 1 to " +
                                std::to_string(kMaxProcesses));
  s.config.*F = *n;
}

template <Millis Config::*F>
void millis(ParseState& s, const std::string& v) {
  auto d = parse_duration(v);
  if (!d) throw std::invalid_argument("expected a duration such as 250ms, 30s, 5m, 4h or 5d");
  s.config.*F = *d;
}

// A duration of at least one second, kept in whole seconds.
template <Seconds Config::*F>
void seconds(ParseState& s, const std::string& v) {
  auto d = parse_duration(v);
  if (!d || d->count() < 1000) throw std::invalid_argument("expected a duration >= 1s");
  s.config.*F = std::chrono::duration_cast<Seconds>(*d);
}

// One of a fixed list of words; the reason lists them ("expected a, b or c").
template <typename T>
struct Choice {
  std::string_view text;
  T value;
};

template <auto F, const auto& kChoices>
void one_of(ParseState& s, const std::string& v) {
  for (const auto& c : kChoices)
    if (v == c.text) {
      s.config.*F = c.value;
      return;
    }
  std::string expected = "expected ";
  for (std::size_t i = 0; i < std::size(kChoices); ++i)
    expected += std::string(i == 0                         ? ""
                            : i + 1 == std::size(kChoices) ? " or "
                                                           : ", ") +
                std::string(kChoices[i].text);
  throw std::invalid_argument(expected);
}

template <std::vector<std::string> Config::*F>
void domains(ParseState& s, const std::string& v) {
  auto& field = s.config.*F;
  field.clear();
  for (auto& d : split_list(v)) {
    if (!valid_domain(d)) throw std::invalid_argument("bad domain '" + d + "'");
    field.push_back(lower(d));
  }
}

template <std::vector<HostPort> Config::*F, std::uint16_t kPort>
void host_ports(ParseState& s, const std::string& v) {
  auto& field = s.config.*F;
  field.clear();
  for (auto& item : split_list(v)) {
    auto hp = parse_host_port(item, kPort);
    if (!hp) throw std::invalid_argument("bad address '" + item + "' (expected host:port)");
    field.push_back(*hp);
  }
}

void listen(ParseState& s, const std::string& v) {
  s.config.listen = parse_listen(v);
}

// "file:PATH" (relative to the config's directory) or "dovecot:SOCKET"; "" = none.
void auth_backend(ParseState& s, const std::string& v) {
  if (v.empty()) {
    s.config.auth_backend.clear();
    return;
  }
  std::size_t colon = v.find(':');
  std::string kind = v.substr(0, colon);
  if (colon == std::string::npos || colon + 1 == v.size() || (kind != "file" && kind != "dovecot"))
    throw std::invalid_argument("expected file:PATH or dovecot:SOCKET");
  s.config.auth_backend = kind + ":" + resolve(s.base_dir, v.substr(colon + 1));
}

// A list of paths, each relative to the config file's directory, each once.
template <std::vector<std::string> Config::*F>
void paths(ParseState& s, const std::string& v) {
  auto& field = s.config.*F;
  field.clear();
  for (auto& item : split_list(v)) {
    auto p = resolve(s.base_dir, item);
    if (std::find(field.begin(), field.end(), p) != field.end())
      throw std::invalid_argument("'" + item + "' listed twice");
    field.push_back(p);
  }
}

// An OpenSSL list (ciphers, suites, groups), passed on as it is: OpenSSL's own words and
// separators only, so a typo such as ';' is found here rather than by the TLS context.
template <std::string Config::*F>
void openssl_list(ParseState& s, const std::string& v) {
  for (char c : v)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("_-+!@=:., ").find(c) == std::string_view::npos)
      throw std::invalid_argument(std::string("unexpected character '") + c + "'");
  s.config.*F = v;
}

void tls_policy(ParseState& s, const std::string& v) {
  auto level = parse_tls_level(v);
  if (!level)
    throw std::invalid_argument(
        "expected none, may, dane, encrypt, dane-only, verify, secure or mta-sts");
  s.config.tls_policy = *level;
}

// A contiguous range of TLS versions, in any order ("TLSv1.2 TLSv1.3"); kept lowest first.
void tls_protocols(ParseState& s, const std::string& v) {
  static constexpr std::string_view kVersions[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
  bool on[std::size(kVersions)] = {};
  auto items = split_list(v);
  if (items.empty()) throw std::invalid_argument("expected TLS versions such as TLSv1.2 TLSv1.3");
  for (const auto& item : items) {
    auto it = std::find(std::begin(kVersions), std::end(kVersions), item);
    if (it == std::end(kVersions))
      throw std::invalid_argument("unknown protocol '" + item +
                                  "' (expected TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)");
    on[it - std::begin(kVersions)] = true;
  }
  auto& field = s.config.tls_protocols;
  field.clear();
  for (std::size_t i = 0; i < std::size(kVersions); ++i) {
    if (!on[i]) continue;
    if (!field.empty() && !on[i - 1])
      throw std::invalid_argument("the protocols must be a range without gaps");
    field.emplace_back(kVersions[i]);
  }
}

void cidrs(ParseState& s, const std::string& v) {
  s.config.relay_clients.clear();
  for (auto& item : split_list(v)) {
    auto n = Cidr::parse(item);
    if (!n) throw std::invalid_argument("bad network '" + item + "'");
    if (auto why = host_bits_error(*n, item); !why.empty()) throw std::invalid_argument(why);
    s.config.relay_clients.push_back(*n);
  }
}

// A path, relative to the config file's directory.
template <std::string Config::*F>
void path(ParseState& s, const std::string& v) {
  s.config.*F = resolve(s.base_dir, v);
}

// One file, read later (lib/tls reads the TLS ones with the certificates, again on SIGHUP).
template <std::string Config::*F>
void one_file(ParseState& s, const std::string& v) {
  if (split_list(v).size() > 1) throw std::invalid_argument("expected one file");
  s.config.*F = resolve(s.base_dir, v);
}

// A routing file: lib/routing's Router reads it (again on reload); here only its path and the
// setting's file:line. An empty value: no such file.
template <Config::FileRef Config::*F>
void routing_file(ParseState& s, const std::string& v) {
  auto& field = s.config.*F;
  field.path = v.empty() ? "" : resolve(s.base_dir, v);
  field.where = s.where;
}

// dnsbl, smtpaccess, destinations: read by parse_config after every line.
template <const std::string_view& kName>
void named_file(ParseState& s, const std::string& v) {
  s.files[std::string(kName)] = {resolve(s.base_dir, v), s.where};
}
constexpr std::string_view kDnsbl = "dnsbl";
constexpr std::string_view kSmtpaccess = "smtpaccess";
constexpr std::string_view kDestinations = "destinations";

void hostname(ParseState& s, const std::string& v) {
  if (!valid_domain(v)) throw std::invalid_argument("bad host name");
  s.config.hostname = v;
}

void report_contact(ParseState& s, const std::string& v) {
  if (!v.empty() && !smtp::parse_mailbox(v)) throw std::invalid_argument("expected a mailbox");
  s.config.tls_report_contact = v;
}

void report_organization(ParseState& s, const std::string& v) {
  for (char ch : v)
    if (ch < 0x20 || ch > 0x7e) throw std::invalid_argument("printable ASCII only");
  if (v.size() > 200) throw std::invalid_argument("at most 200 characters");
  s.config.tls_report_organization = v;
}

void state_dir(ParseState& s, const std::string& v) {
  if (v.empty()) throw std::invalid_argument("must not be empty");
  s.config.state_dir = resolve(s.base_dir, v);
}

void user(ParseState& s, const std::string& v) {
  // POSIX portable user names; "" = stay as started.
  for (char ch : v)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.'))
      throw std::invalid_argument("bad user name '" + v + "'");
  if (!v.empty() && v[0] == '-') throw std::invalid_argument("bad user name '" + v + "'");
  s.config.user = v;
}

void submit_users(ParseState& s, const std::string& v) {
  auto& field = s.config.submit_allowed_users;
  field.clear();
  auto items = split_list(v);
  if (items.size() == 1 && items[0] == "anyone") return;
  if (items.empty()) throw std::invalid_argument("expected anyone or users, uids and @groups");
  for (auto& item : items) {
    std::string_view name = item;
    if (name.starts_with('@')) name.remove_prefix(1);
    bool ok = !name.empty() && name[0] != '-';
    for (char ch : name)
      ok = ok &&
           (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.');
    if (!ok || item == "anyone") throw std::invalid_argument("bad user or @group '" + item + "'");
    field.push_back(item);
  }
}

void log_level(ParseState& s, const std::string& v) {
  static constexpr std::string_view kLevels[] = {"fatal",  "critical",    "error", "warning",
                                                 "notice", "information", "debug", "trace"};
  if (std::find(std::begin(kLevels), std::end(kLevels), v) == std::end(kLevels)) {
    std::string expected = "expected one of";  // every level, as estafette.conf(5) lists them
    for (auto level : kLevels) expected += " " + std::string(level) + ",";
    expected.pop_back();
    throw std::invalid_argument(expected);
  }
  s.config.log_level = v;
}

void smarthost(ParseState& s, const std::string& v) {
  s.smarthost.reset();
  if (v.empty()) return;
  s.smarthost = parse_host_port(v, 25);
  if (!s.smarthost) throw std::invalid_argument("bad smarthost (expected host[:port])");
}

void metrics_listen(ParseState& s, const std::string& v) {
  s.config.metrics_listen.reset();
  if (v.empty()) return;
  s.config.metrics_listen = parse_host_port(v, 9465);
  if (!s.config.metrics_listen) throw std::invalid_argument("expected host[:port]");
}

void esmtproutes(ParseState& s, const std::string& v) {
  s.routes_file = resolve(s.base_dir, v);
  s.routes_where = s.where;
}

void filters(ParseState& s, const std::string& v) {
  s.config.filters = parse_filters(v, s.base_dir, s.where);
}

// Postfix's access(5) words; filters/policy checks the action itself (FilterSet::check).
void policy_default_action(ParseState& s, const std::string& v) {
  if (v.empty()) throw std::invalid_argument("expected an action such as DUNNO or 451 text");
  s.config.policy_default_action = v;
}

void program_user(ParseState& s, const std::string& v) {
  if (v.empty() || v == "root") throw std::invalid_argument("must name a user other than root");
  s.config.program_user = v;
}

void esmtp_port(ParseState& s, const std::string& v) {
  auto p = parse_number<unsigned>(v);
  if (!p || *p == 0 || *p > 65535) throw std::invalid_argument("expected a port number");
  s.config.esmtp_port = static_cast<std::uint16_t>(*p);
}

void local_transport(ParseState& s, const std::string& v) {
  std::string why;
  auto t = parse_transport(v, &why);
  if (!t) throw std::invalid_argument(why);
  s.config.local_transport = *t;
}

using Mailboxes = Config::LocalMailboxes;
constexpr std::array<Choice<Mailboxes>, 3> kMailboxes = {{{"create", Mailboxes::Create},
                                                          {"existing", Mailboxes::Existing},
                                                          {"system", Mailboxes::System}}};
constexpr std::array<Choice<DnsblAction>, 2> kDnsblActions = {
    {{"reject_rcpt", DnsblAction::RejectRcpt}, {"reject_greeting", DnsblAction::RejectGreeting}}};
constexpr std::array<Choice<std::string_view>, 3> kMilterActions = {
    {{"tempfail", "tempfail"}, {"accept", "accept"}, {"reject", "reject"}}};
constexpr std::array<Choice<std::string_view>, 2> kQueueBackends = {
    {{"segment", "segment"}, {"file", "file"}}};

// The table. Defaults are what Config's members start as (config.h) and what parse_config
// leaves when a setting is absent; the unit tests check both. Docs: one line, the page
// (docs/man/estafette.conf.5) says more.
// clang-format off
constexpr Setting kSettings[] = {
    // Identity and places
    {"hostname", std::nullopt, hostname, "Our name in the greeting, EHLO and Received: headers.",
     {}, "the system's host name"},
    {"state_dir", "./estafette-state", state_dir,
     "Holds queue/, run/ (pid file, sockets) and maildir/."},
    {"maildir_root", "", path<&Config::maildir_root>,
     "Mail for user@<local domain> goes to <root>/user/.", {}, "state_dir/maildir"},
    {"user", "", user,
     "The unprivileged user esmtpd, esmtpclient and courierd run as; empty: stay as started."},
    {"submit_allowed_users", "anyone", submit_users,
     "Who may submit through submit.sock (estafette-sendmail): anyone, or users, uids and "
     "@groups; root and user always may."},
    {"log_file", "", path<&Config::log_file>, "Every daemon's log, one line per event.", {},
     "standard error"},
    {"syslog", "no", yes_no<&Config::syslog>, "Also log to syslog, facility mail."},
    {"log_level", "information", log_level,
     "fatal, critical, error, warning, notice, information, debug or trace."},
    // TLS (esmtpd)
    {"tls_cert_file", "", paths<&Config::tls_cert_files>,
     "PEM certificate files (each: the certificate, then its chain); several for RSA and "
     "ECDSA, or for other names (SNI). None: no STARTTLS."},
    {"tls_key_file", "", paths<&Config::tls_key_files>,
     "The private key of each tls_cert_file, in order; none: the keys are in the cert files."},
    {"tls_protocols", "TLSv1.2 TLSv1.3", tls_protocols,
     "TLS versions accepted: a range of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3."},
    {"tls_ciphers", "", openssl_list<&Config::tls_ciphers>,
     "OpenSSL cipher list for TLS 1.2 and older.", {}, "OpenSSL's default"},
    {"tls_ciphersuites", "", openssl_list<&Config::tls_ciphersuites>,
     "OpenSSL cipher suites for TLS 1.3.", {}, "OpenSSL's default"},
    {"tls_groups", "", openssl_list<&Config::tls_groups>,
     "Key exchange groups (X25519:P-256:ffdhe2048 ...).", {}, "OpenSSL's default"},
    {"tls_session_tickets", "yes", yes_no<&Config::tls_session_tickets>,
     "Resume TLS sessions with tickets (RFC 5077, TLS 1.3) besides the session cache."},
    {"tls_session_timeout", "1h", seconds<&Config::tls_session_timeout>,
     "How long a TLS session may be resumed."},
    {"tls_handshake_timeout", "60s", seconds<&Config::tls_handshake_timeout>,
     "The TLS handshake after STARTTLS or on a submissions port, at most."},
    {"tls_client_ca_file", "", one_file<&Config::tls_client_ca_file>,
     "PEM CA certificates: ask clients for a certificate (not required) and verify it against "
     "them (Postfix: smtpd_tls_ask_ccert, smtpd_tls_CAfile). None: no client certificates."},
    {"relay_clientcerts", "", one_file<&Config::relay_clientcerts>,
     "A file of SHA-256 fingerprints (AA:BB:... or hex, one a line) of client certificates "
     "that may relay once verified against tls_client_ca_file (Postfix: relay_clientcerts)."},
    // SMTP AUTH (esmtpd)
    {"auth_backend", "", auth_backend,
     "Where AUTH checks passwords: file:PATH (user:HASH lines, a crypt(3) hash or a "
     "{SCRAM-SHA-256} secret; `estafette passwd`) or "
     "dovecot:SOCKET (Dovecot's auth-client socket). None: no AUTH."},
    {"auth_allow_plaintext", "no", yes_no<&Config::auth_allow_plaintext>,
     "Offer AUTH PLAIN/LOGIN without TLS too (Postfix: smtpd_tls_auth_only = no)."},
    {"auth_fail_limit", "10", count<&Config::auth_fail_limit, Zero::NoLimit>,
     "Failed AUTH attempts per client address (IPv6: per network) in auth_fail_window, "
     "counted by every esmtpd process; beyond it AUTH gets 421 4.7.0. 0: no limit."},
    {"auth_fail_window", "10m", seconds<&Config::auth_fail_window>,
     "The window auth_fail_limit counts in; a blocked client waits until it has passed."},
    // sender_login_map: a FileRef like the routing files; lib/auth reads it.
    {"sender_login_map", "", routing_file<&Config::sender_login_map>,
     "Which logins may use which MAIL FROM addresses (\"address login, ...\", \"@domain "
     "login\"); none: any (Postfix's smtpd_sender_login_maps)."},
    // esmtpd: what mail to accept, and from whom
    {"listen", "127.0.0.1:2525", listen,
     "The addresses esmtpd listens on ([IPv6]:port for IPv6), each with its role: mx "
     "(the default), submission or submissions (TLS from the first byte; both need AUTH "
     "before MAIL), then options: tls_required (no MAIL before STARTTLS), auth (AUTH on mx)."},
    // The embedded default accepts mail for the test domains.
    {"local_domains", "", domains<&Config::local_domains>,
     "Domains delivered here by estafette-local; .example.com: every subdomain.", {}, {},
     "estafette.test, localhost"},
    {"relay_domains", "", domains<&Config::relay_domains>,
     "Domains accepted from anyone and relayed (backup MX, gateway)."},
    {"relay_clients", "", cidrs, "Networks (CIDR) that may relay to any domain."},
    {"max_message_size", "10M", size<&Config::max_message_size, 1024>,
     "Announced with SIZE and enforced."},
    {"max_header_count", "1000", count<&Config::max_header_count>,
     "Header fields per message; more: 552 5.3.4."},
    {"max_header_size", "100K", size<&Config::max_header_size, 1000>,
     "One header field with its continuation lines; larger: 552 5.3.4 (header_size_limit)."},
    {"message_memory_budget", "256M", size<&Config::message_memory_budget, 0>,
     "Per esmtpd process: filtered messages held in memory together; over it 452 4.3.1; 0: no "
     "limit."},
    {"max_recipients", "1000", count<&Config::max_recipients>, "Recipients per message."},
    {"max_line_length", "2048", size<&Config::max_line_length, 512>,
     "Command lines, with CRLF (at least 512)."},
    {"max_hops", "50", count<&Config::max_hops>,
     "Received: fields a message may carry (ours included); more: a mail loop, refused with "
     "554 5.4.6 or bounced (Postfix's hopcount_limit)."},
    {"allow_untrusted_routing", "no", yes_no<&Config::allow_untrusted_routing>,
     "Relay mail for relay_domains whose address has routing (%, !, a quoted @, a source route) "
     "from clients other than relay clients (Postfix's allow_untrusted_routing)."},
    {"smtpd_timeout", "300s", seconds<&Config::smtpd_timeout>,
     "Idle time, or time without progress sending replies, before esmtpd closes a session."},
    {"session_deadline", "1h", seconds<&Config::session_deadline>,
     "The longest an SMTP session may last in total; then 421 4.4.2 and close."},
    {"greet_pause", "0s", millis<&Config::greet_pause>,
     "Send the greeting no sooner; a client that talks first gets 554 5.5.1; 0: greet at once."},
    {"smtpd_junk_command_limit", "100", count<&Config::junk_command_limit, Zero::NoLimit>,
     "NOOP, RSET, VRFY and HELP beyond this many (per message) count as errors; 0: no limit."},
    {"max_sessions", "2000", count<&Config::max_sessions>,
     "Sessions in total over all esmtpd processes; above it 421 4.7.0.", "MAXDAEMONS"},
    {"MAXPERIP", "50", count<&Config::max_per_ip, Zero::NoLimit>,
     "Sessions from one address, over all esmtpd processes; 0: no limit."},
    {"MAXPERC", "0", count<&Config::max_per_c, Zero::NoLimit>,
     "Sessions from one IPv4 /24 (IPv6 /64); 0: no limit."},
    {"ipv6_prefix_length", "64", int_in_range<&Config::ipv6_prefix_length, 1, 128>,
     "MAXPERIP counts IPv6 clients per network of this prefix length (128: per address)."},
    {"smtpaccess", "", named_file<kSmtpaccess>, "Access rules per network, see smtpaccess(5)."},
    {"esmtpd_processes", "auto", processes<&Config::esmtpd_processes>,
     "esmtpd processes sharing the listen addresses; auto: one per usable CPU."},
    {"queue_backend", "segment", one_of<&Config::queue_backend, kQueueBackends>,
     "segment (shared segments, group commit) or file (one file per message)."},
    {"queue_verify_bodies", "yes", yes_no<&Config::queue_verify_bodies>,
     "courierd checks each body's checksum when it takes a message from the queue and sets a "
     "damaged one aside (queue/corrupt/) instead of delivering it (cost: docs/benchmarks.md)."},
    {"courierd_notify_backlog", "100000", count<&Config::courierd_notify_backlog>,
     "New-mail notices esmtpd keeps while courierd is away; past it, courierd rescans the queue."},
    // esmtpd: connection checks. The embedded default also runs on machines without DNS.
    {"rdns_check", "yes", yes_no<&Config::rdns_check>,
     "Forward-confirmed reverse DNS of the client, into Received: and the log.", {}, {}, "no"},
    {"dnsbl", "", named_file<kDnsbl>, "DNS black and allow lists, see dnsbl(5)."},
    {"dnsbl_threshold", "1",
     int_in_range<&Config::dnsbl_threshold, 1, std::numeric_limits<int>::max()>,
     "The client is blocked when the weights of the lists that list it reach this."},
    {"dnsbl_action", "reject_rcpt", one_of<&Config::dnsbl_action, kDnsblActions>,
     "reject_rcpt: 550 5.7.1 to every RCPT; reject_greeting: 554 5.7.1 instead of the greeting."},
    {"ident_check", "no", yes_no<&Config::ident_check>,
     "RFC 1413 query to the client's port 113; the user goes into Received:."},
    {"ident_timeout", "10s", millis<&Config::ident_timeout>, "Bounds the IDENT query."},
    {"greet_wait", "0s", millis<&Config::greet_wait>,
     "Hold the greeting up to this long for the checks; 0: greet at once."},
    {"BOFHCHECKDNS", "yes", yes_no<&Config::sender_dns_check>,
     "The MAIL FROM domain needs an MX or address record.", {}, {}, "no"},
    {"dns_cache_size", "10000", count<&Config::dns_cache_size, Zero::NoLimit>,
     "DNS answers kept per esmtpd process, by TTL; 0: none."},
    // esmtpd: filters
    {"filters", "", filters,
     "Milters (milter:SOCKET), modules (module:PATH) and Postfix policy services "
     "(policy:SOCKET, asked at each RCPT; policy-data: at DATA, policy-eom: at the end of the "
     "message), in this order."},
    {"milter_default_action", "tempfail", one_of<&Config::milter_default_action, kMilterActions>,
     "What a session does when a filter fails or times out."},
    {"milter_connect_timeout", "30s", millis<&Config::milter_connect_timeout>,
     "Connecting to a milter."},
    {"milter_command_timeout", "30s", millis<&Config::milter_command_timeout>,
     "Each command's reply."},
    {"milter_content_timeout", "300s", millis<&Config::milter_content_timeout>,
     "From the first header to the end of the message."},
    {"filter_callback_warn_time", "100ms", millis<&Config::filter_callback_warn_time>,
     "A module callback that holds esmtpd's event loop longer is logged; 0: never."},
    {"policy_timeout", "100s", millis<&Config::policy_timeout>,
     "Connecting to a policy service and its answer to one query."},
    {"policy_default_action", "451 4.3.5 Server configuration problem",
     policy_default_action,
     "The action (as a policy service answers: DUNNO, DEFER, 4NN text, ...) when a policy "
     "service fails, times out or answers nonsense."},
    // Routing: local and hosted domains, aliases, routes
    {"locals", "", routing_file<&Config::locals>,
     "More local domains, one per line, see locals(5)."},
    {"hosteddomains", "", routing_file<&Config::hosteddomains>,
     "Hosted (virtual) domains, one per line, see hosteddomains(5)."},
    {"hosted_mailboxes", "", routing_file<&Config::hosted_mailboxes>,
     "\"user@domain: mailbox\" for the hosted domains, see hosted_mailboxes(5)."},
    {"aliases", "", routing_file<&Config::aliases>, "Courier/sendmail aliases, see aliases(5)."},
    // The embedded default makes any local part's Maildir on first delivery.
    {"local_mailboxes", "existing", one_of<&Config::local_mailboxes, kMailboxes>,
     "Which users of the local domains have a mailbox: existing, create or system.", {}, {},
     "create"},
    {"local_transport", "maildir", local_transport,
     "How local and hosted mailboxes get their mail: maildir (estafette-local), "
     "lmtp:unix:/path or lmtp:inet:host:port (an LMTP server such as Dovecot's)."},
    {"smarthost", "", smarthost, "Everything not local and without a route goes there."},
    {"esmtproutes", "", esmtproutes, "Static routes per domain, see esmtproutes(5)."},
    // estafette-local: mailboxes and programs
    {"max_mailbox_message_size", "0", size<&Config::max_mailbox_message_size, 0>,
     "A larger message is not written to a mailbox (552 5.2.3); 0: max_message_size."},
    {"allow_program_delivery", "no", yes_no<&Config::allow_program_delivery>,
     "Run \"|command\" targets of aliases and ~/.forward files."},
    {"program_user", "nobody", program_user,
     "Runs the programs of alias files owned by root; not root."},
    {"program_timeout", "60s", seconds<&Config::program_timeout>,
     "A program still running after this is killed; tried again later."},
    // courierd: the scheduler
    {"MAXDELS", "100", count<&Config::max_deliveries>, "Deliveries in progress, all destinations."},
    {"MAXHOST", "10", count<&Config::max_per_host>,
     "Deliveries in progress per destination (at most MAXDELS)."},
    {"initial_host_concurrency", "5", count<&Config::initial_host_concurrency>,
     "A destination starts with this many, one more per success."},
    {"MAXRCPT", "100", count<&Config::max_rcpt>, "Recipients per SMTP transaction."},
    {"retry_base", "5m", millis<&Config::retry_base>,
     "The first retry; doubled per attempt, with jitter."},
    {"retry_max", "4h", millis<&Config::retry_max>, "The longest wait between retries."},
    {"host_backoff", "1m", millis<&Config::host_backoff>,
     "A destination that failed gets no new connection before this."},
    {"queue_lifetime", "5d", seconds<&Config::queue_lifetime>,
     "A recipient not delivered this long after arrival bounces.", "queuetime"},
    {"warntime", "4h", millis<&Config::warn_time>,
     "One delay warning per message still queued this long after arrival; 0: never."},
    {"destinations", "", named_file<kDestinations>,
     "Limits of their own for some destinations, see destinations(5)."},
    {"local_processes", "auto", processes<&Config::local_processes>,
     "estafette-local processes; auto: 4 per usable CPU (4 to 32): each waits on fsync."},
    {"esmtpclient_processes", "auto", processes<&Config::esmtpclient_processes>,
     "estafette-esmtpclient processes sharing MAXDELS; auto: one per usable CPU."},
    // esmtpclient: outgoing SMTP (RFC 5321 4.5.3.2 timeouts)
    {"esmtp_port", "25", esmtp_port, "The port for MX hosts."},
    {"connect_timeout", "30s", seconds<&Config::connect_timeout>, "Connecting to a server."},
    {"greeting_timeout", "300s", seconds<&Config::greeting_timeout>, "Waiting for the greeting."},
    {"mail_timeout", "300s", seconds<&Config::mail_timeout>, "The reply to MAIL."},
    {"rcpt_timeout", "300s", seconds<&Config::rcpt_timeout>, "The reply to RCPT."},
    {"data_timeout", "120s", seconds<&Config::data_timeout>, "The reply to DATA."},
    {"data_block_timeout", "180s", seconds<&Config::data_block_timeout>,
     "Sending each block of the message."},
    {"data_end_timeout", "600s", seconds<&Config::data_end_timeout>, "The reply to the final dot."},
    {"idle_reuse", "10s", seconds<&Config::idle_reuse>,
     "Keep an idle connection this long for the next message."},
    {"tls_policy", "may", tls_policy,
     "Outbound TLS where the destinations file sets no tls=: none, may (STARTTLS when offered), "
     "encrypt (TLS or defer), verify (and a trusted certificate for the MX host name), secure "
     "(for the next-hop domain). Postfix: smtp_tls_security_level."},
    {"tls_ca_file", "", one_file<&Config::tls_ca_file>,
     "PEM CA certificates that outbound TLS trusts (verify and secure MX hosts, MTA-STS policy "
     "hosts; Postfix: smtp_tls_CAfile).",
     {}, "the system store"},
    {"tls_fallback_time", "1h", seconds<&Config::tls_fallback_time>,
     "After a failed STARTTLS handshake under may, the host gets plaintext this long without "
     "another try."},
    {"client_credentials", "", one_file<&Config::client_credentials>,
     "A root-only file of \"destination user password\" lines: AUTH to those smarthosts and "
     "routes (Postfix: smtp_sasl_password_maps). None: no AUTH."},
    {"client_auth_plaintext", "no", yes_no<&Config::client_auth_plaintext>,
     "Send client_credentials over connections without TLS too."},
    {"dns_servers", "", host_ports<&Config::dns_servers, 53>,
     "DNS servers for esmtpd's checks and esmtpclient's lookups.", {}, "/etc/resolv.conf"},
    {"dns_timeout", "2s", millis<&Config::dns_timeout>, "Per DNS try."},
    {"dns_tries", "2", int_in_range<&Config::dns_tries, 1, 10>, "DNS tries, 1 to 10."},
    // MTA-STS (RFC 8461): esmtpclient and `estafette mta-sts`
    {"mta_sts", "yes", yes_no<&Config::mta_sts>,
     "Look up the MTA-STS policy of recipient domains (_mta-sts TXT, HTTPS fetch, cache).", {},
     {}, "no"},
    {"mta_sts_timeout", "60s", seconds<&Config::mta_sts_timeout>,
     "An MTA-STS policy fetch (DNS, connect, TLS, HTTP), at most (RFC 8461 3.3)."},
    {"mta_sts_cache_size", "10000", count<&Config::mta_sts_cache_size>,
     "MTA-STS policies kept in <state_dir>/mta-sts (one small file each)."},
    // TLS reporting (RFC 8460): esmtpclient counts, estafetted sends the daily reports
    {"tls_reporting", "no", yes_no<&Config::tls_reporting>,
     "Count outbound TLS sessions per recipient domain policy and mail each domain that asks "
     "(_smtp._tls TXT rua=mailto:) a daily report."},
    {"tls_report_contact", "", report_contact,
     "From: and contact-info of TLS reports (a mailbox).", {}, "postmaster@<hostname>"},
    {"tls_report_organization", "", report_organization,
     "organization-name of TLS reports.", {}, "<hostname>"},
    // Metrics: estafette-metrics, a child of estafetted
    {"metrics_listen", "", metrics_listen,
     "Serve Prometheus metrics on http://host:port/metrics (e.g. 127.0.0.1:9465); none: off."},
};
// clang-format on

}  // namespace

std::string_view Setting::default_text() const {
  if (!shown.empty()) return shown;
  if (!value || value->empty()) return "none";
  return *value;
}

std::span<const Setting> settings() {
  return kSettings;
}

const Setting* find_setting(std::string_view name) {
  for (const auto& s : kSettings)
    if (s.name == name || (!s.alias.empty() && s.alias == name)) return &s;
  return nullptr;
}

std::string embedded_default_config() {
  std::string text =
      "# Estafette's embedded default configuration: accepts mail on 127.0.0.1:2525 for the\n"
      "# test domains and delivers it to <state_dir>/maildir/<user>/. Nothing is relayed: to\n"
      "# relay for 127.0.0.1 through a smarthost, use a config file with\n"
      "# \"smarthost = host:port\" and \"relay_clients = 127.0.0.0/8\".\n";
  for (const auto& s : kSettings)
    if (s.embedded) text += std::string(s.name) + " = " + std::string(*s.embedded) + "\n";
  return text;
}

std::string settings_listing() {
  struct Row {
    std::string_view name, def;
    std::string doc;
  };
  std::vector<Row> rows;
  for (const auto& s : kSettings) {
    std::string doc(s.doc);
    if (s.embedded) doc += " Embedded default: " + std::string(*s.embedded) + ".";
    rows.push_back({s.name, s.default_text(), doc});
    if (!s.alias.empty())
      rows.push_back({s.alias, s.default_text(), "The same as " + std::string(s.name) + "."});
  }
  std::size_t name_width = 4, default_width = 7;
  for (const auto& r : rows) {
    name_width = std::max(name_width, r.name.size());
    default_width = std::max(default_width, r.def.size());
  }
  auto line = [&](std::string_view name, std::string_view def, std::string_view doc) {
    std::string out(name);
    out.resize(name_width + 2, ' ');
    out += def;
    out.resize(name_width + 2 + default_width + 2, ' ');
    return out + std::string(doc) + "\n";
  };
  std::string out = line("NAME", "DEFAULT", "DESCRIPTION");
  for (const auto& r : rows) out += line(r.name, r.def, r.doc);
  return out;
}

}  // namespace estafette::config
