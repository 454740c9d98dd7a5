// config.h: Estafette's configuration, parsed from `key = value` files into validated typed
// structs. Pure apart from reading files; any thread. Every error is a ConfigError whose text is
// "file:line: reason", and stops start-up. Unknown keys are errors (a typo must not be ignored).
// Which keys exist, their defaults, parsers and docs: the settings table (settings.h). An
// embedded default (embedded_default_config()) runs a working instance with no files at all.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/access.h"
#include "lib/config/cidr.h"
#include "lib/config/destinations.h"
#include "lib/config/transport.h"
#include "lib/smtp/listener_role.h"

namespace estafette::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws ConfigError "where: why" (where: "file:line", or the file).
[[noreturn]] void fail(const std::string& where, const std::string& why);

using Seconds = std::chrono::seconds;
using Millis = std::chrono::milliseconds;

struct HostPort {
  std::string host;
  std::uint16_t port = 25;
  std::string to_string() const;
};

// One `listen` entry: an address and what its connections are for.
struct Listener {
  std::string host;
  std::uint16_t port = 25;
  smtp::ListenerRole role = smtp::ListenerRole::Mx;
  bool tls_required = false;  // option tls_required: no MAIL before STARTTLS (RFC 3207)
  bool auth = false;          // option auth: AUTH on an mx listener (submission roles: always)
  HostPort address() const { return {host, port}; }
  // "127.0.0.1:25 mx", "[::1]:465 submissions", "127.0.0.1:25 mx tls_required auth"
  std::string to_string() const;
  bool operator==(const Listener&) const = default;
};

// The `listen` value: addresses separated by commas or blanks, each optionally followed by its
// role ("127.0.0.1:25 mx, [::1]:587 submission, 127.0.0.1:465 submissions"; mx when none is
// given, port 25 when none is given) and options (tls_required, auth). Pure. Errors (empty list,
// a role or option with no address before it, two roles for one address, an option twice, a bad
// address, one address listed twice) throw std::invalid_argument with the reason.
std::vector<Listener> parse_listen(std::string_view value);

// Static routes, Courier esmtproutes style: "domain: host[,port]" ("host:port" also accepted);
// ".example.com: host" matches every subdomain; an empty domain is the smarthost.
struct Routes {
  std::map<std::string, HostPort> exact;
  std::map<std::string, HostPort> suffix;  // key without the leading dot
  std::optional<HostPort> smarthost;
  // The route for a (lower-case) domain: exact, then longest suffix, then the smarthost.
  std::optional<HostPort> lookup(const std::string& domain) const;
};

// One DNS list from the `dnsbl` file: "zone filter weight [reply]" (lib/checks checks the
// filter's syntax when esmtpd starts; `where` names the line for that message).
struct DnsListSpec {
  std::string zone;
  std::string filter;  // "" = any answer; "127.0.0.2", "127.0.0.[2..11]" (postscreen syntax)
  int weight = 1;      // negative: an allow-list
  std::string reply;   // "*" = the list's TXT record; "" = a default text
  std::string where;
};

// One entry of `filters`, in order: "milter:inet:8891@127.0.0.1", "module:/path/x.so",
// "policy:inet:10023@127.0.0.1" (a Postfix policy service, asked at each RCPT).
struct FilterSpec {
  // "milter", "module", "module-isolated" (a module run in its own estafette-filterhost),
  // "policy", "policy-data" or "policy-eom"
  std::string kind;
  std::string target;  // the milter's or policy service's socket spec, or the module's path
  std::string where;   // "file:line", for errors found when esmtpd loads it
  std::vector<std::string> args = {};  // module only: its main()'s argv[1...] (argv[0] is the path)
};

// The value of `filters =`: entries separated by commas or white space, each kind:target; an
// entry in double quotes may carry words after it, a module's arguments
// (`"module:/x.so -p inet:9999@127.0.0.1"`: split at white space, commas kept). Module paths
// are resolved against base_dir. Throws std::invalid_argument with the reason.
std::vector<FilterSpec> parse_filters(std::string_view value, const std::string& base_dir,
                                      const std::string& where);

enum class DnsblAction {
  RejectRcpt,      // 550 5.7.1 <text> to every RCPT (the client learns why)
  RejectGreeting,  // 554 5.7.1 <text> instead of the greeting, then close
};

// For the line-oriented files (estafette.conf, esmtproutes, dnsbl, smtpaccess): calls fn(where,
// body) for each line that is neither blank nor a comment ("#" first), where = "name:line" and
// body = the line without surrounding white space.
void for_each_line(const std::string& text, const std::string& name,
                   const std::function<void(const std::string& where, std::string_view body)>& fn);
std::string_view trim(std::string_view text);

// Parses a dnsbl file (throws ConfigError with file:line).
std::vector<DnsListSpec> parse_dnsbl(const std::string& text, const std::string& name);

inline constexpr std::size_t kAutoProcesses = 0;  // "auto" in a *_processes setting
inline constexpr std::size_t kMaxProcesses = 256;

struct Config {
  std::string source = "(embedded default)";    // file the settings came from
  std::string hostname;                         // default: the system's host name
  std::string state_dir = "./estafette-state";  // made absolute; holds queue/, run/, maildir/
  std::vector<Listener> listen = {{"127.0.0.1", 2525}};
  // Lower-case; an entry ".example.com" stands for every subdomain of example.com.
  std::vector<std::string> local_domains;  // delivered by the local module
  std::vector<std::string> relay_domains;  // accepted from anyone, relayed
  std::vector<Cidr> relay_clients;         // may relay to any domain
  Routes routes;
  std::string maildir_root;  // default: <state_dir>/maildir; mail for user@local -> <root>/<user>/

  // Routing (lib/routing/router.h): files read by the Router, at start and on SIGHUP. `where` is
  // the setting's "file:line", for an error about the file itself; an empty path: no file.
  struct FileRef {
    std::string path;
    std::string where;
  };
  FileRef locals;            // more local domains, one per line
  FileRef hosteddomains;     // virtual domains, one per line
  FileRef hosted_mailboxes;  // "user@hosteddomain: mailbox"
  FileRef aliases;           // "name: target, ..." (Courier/sendmail)
  // Which local parts of the local domains have a mailbox: Create (any, made in maildir_root on
  // first delivery; the embedded default), Existing (directories already in maildir_root) or
  // System (a system user other than root: ~user/Maildir, written as that user).
  enum class LocalMailboxes { Create, Existing, System };
  LocalMailboxes local_mailboxes = LocalMailboxes::Existing;
  // How mail for the local and hosted domains' mailboxes is delivered (transport.h): Maildir by
  // estafette-local, or LMTP to a server (Dovecot) through estafette-esmtpclient. A line of
  // locals/hosteddomains may name its own (`transport=`).
  Transport local_transport;
  std::size_t max_mailbox_message_size = 0;  // per delivered message; 0: max_message_size
  bool allow_program_delivery = false;       // "|command" targets in aliases
  std::string program_user = "nobody";       // runs programs from root-owned alias files
  Seconds program_timeout{60};               // then the program's process group is killed

  std::size_t max_message_size = 10 << 20;
  std::size_t max_header_count = 1000;            // header fields per message (552 5.3.4 beyond)
  std::size_t max_header_size = 102400;           // one header field (Postfix's header_size_limit)
  std::size_t message_memory_budget = 256 << 20;  // per esmtpd process, messages held in memory
  std::size_t max_recipients = 1000;
  std::size_t max_line_length = 2048;
  // Mail loops (Postfix's hopcount_limit): the most Received: fields a message may carry, ours
  // included; esmtpd refuses more (554 5.4.6), estafette-local bounces a queued one (5.4.6).
  std::size_t max_hops = 50;
  // Postfix's allow_untrusted_routing: relay_domains mail with routing in the address (%, !,
  // a quoted '@', a source route) only from relay clients.
  bool allow_untrusted_routing = false;
  Seconds smtpd_timeout{300};  // idle, and no progress sending replies (Postfix's smtpd_timeout)
  Seconds session_deadline{3600};        // a whole SMTP session, at most
  Millis greet_pause{0};                 // the greeting never sooner; talking before it: 554
  std::size_t junk_command_limit = 100;  // NOOP/RSET/VRFY/HELP beyond it count as errors; 0 = any
  std::size_t max_sessions = 2000;  // MAXDAEMONS, in total: each esmtpd process takes its share
  std::size_t max_per_ip = 50;      // MAXPERIP: sessions from one address, all processes; 0 = any
  std::size_t max_per_c = 0;        // MAXPERC: sessions from one IPv4 /24 (IPv6 /64); 0 = any
  int ipv6_prefix_length = 64;      // MAXPERIP counts IPv6 clients per network of this length

  // esmtpd's connection checks (lib/checks), all started at connect, asynchronous.
  bool rdns_check = true;          // forward-confirmed reverse DNS, into Received and logs
  std::vector<DnsListSpec> dnsbl;  // from the `dnsbl` file
  int dnsbl_threshold = 1;         // blocked when the listing lists' weights reach this
  DnsblAction dnsbl_action = DnsblAction::RejectRcpt;
  bool ident_check = false;  // RFC 1413 query to the client's port 113
  Millis ident_timeout{10000};
  Millis greet_wait{0};                // hold the greeting this long for the checks; 0 = don't
  bool sender_dns_check = true;        // BOFHCHECKDNS: MAIL FROM domain needs an MX or address
  std::size_t dns_cache_size = 10000;  // answers kept per esmtpd process (per TTL); 0 = none
  AccessRules access;                  // from the `smtpaccess` file

  // Filters (milters and in-process modules) for every session, in this order.
  std::vector<FilterSpec> filters;
  std::string milter_default_action = "tempfail";  // tempfail, accept or reject when one fails
  Millis milter_connect_timeout{30000};
  Millis milter_command_timeout{30000};
  Millis milter_content_timeout{300000};  // each header, eoh, body chunk and eom reply
  // A module's callback that holds esmtpd's loop longer is logged with module, phase and
  // session (filters/callback_scope.h); 0: never.
  Millis filter_callback_warn_time{100};
  // Policy services (`policy:` entries): the time for each query, and the action (Postfix's
  // access(5) syntax; filters/policy checks it) when a service fails.
  Millis policy_timeout{100000};
  std::string policy_default_action = "451 4.3.5 Server configuration problem";
  // Processes that share the work of one program, each with its own event loop: esmtpd
  // processes all accept on the listen addresses (SO_REUSEPORT); courierd hands deliveries to
  // several esmtpclient processes. kAutoProcesses: one per usable CPU (resolve_processes).
  std::size_t esmtpd_processes = kAutoProcesses;
  std::size_t esmtpclient_processes = kAutoProcesses;
  std::size_t local_processes = kAutoProcesses;  // estafette-local (Maildir) processes
  std::string queue_backend = "segment";  // "segment" (group commit) or "file" (one per message)
  // courierd reads and checksums each body when it takes a message from the queue, and sets a
  // damaged one aside instead of delivering it (queue::BackendOptions::verify_bodies). On by
  // default: its cost is below what the relay benchmark resolves (docs/benchmarks.md).
  bool queue_verify_bodies = true;
  // New-mail notices an esmtpd keeps while courierd is away; past it they are dropped and
  // courierd is asked to rescan the queue once the link is back.
  std::size_t courierd_notify_backlog = 100000;

  // Scheduler limits, with Courier's names.
  std::size_t max_deliveries = 100;            // MAXDELS: deliveries in progress, all hosts
  std::size_t max_per_host = 10;               // MAXHOST: deliveries in progress per destination
  std::size_t initial_host_concurrency = 5;    // a new destination's first window (<= MAXHOST)
  std::size_t max_rcpt = 100;                  // MAXRCPT: recipients per transaction
  Millis retry_base{std::chrono::minutes(5)};  // first retry; doubles each time, with jitter
  Millis retry_max{std::chrono::hours(4)};
  Millis host_backoff{std::chrono::minutes(1)};  // a failed host gets no new connection before
  Seconds queue_lifetime{std::chrono::hours(24 * 5)};  // queuetime (Courier): then it bounces
  // warntime (Courier): one delay warning (DSN, Action: delayed) per message still queued this
  // long after arrival, to a sender whose NOTIFY asks for DELAY (or who gave none); 0 = never.
  Millis warn_time{std::chrono::hours(4)};
  // Per-destination concurrency, rate and MAXRCPT, from the `destinations` file.
  DestinationTable destinations;

  // esmtpclient (RFC 5321 4.5.3.2 defaults)
  std::uint16_t esmtp_port = 25;
  Seconds connect_timeout{30};
  Seconds greeting_timeout{300};
  Seconds mail_timeout{300};
  Seconds rcpt_timeout{300};
  Seconds data_timeout{120};
  Seconds data_block_timeout{180};
  Seconds data_end_timeout{600};
  Seconds idle_reuse{10};  // keep an idle connection this long for reuse
  // Outbound TLS (lib/tls's client side): the level of a destination without tls= in the
  // destinations file (Postfix's smtp_tls_security_level), the CAs verify/secure trust ("": the
  // system store; Postfix's smtp_tls_CAfile), and how long a host whose STARTTLS handshake
  // failed under `may` gets plaintext at once, without another try.
  TlsLevel tls_policy = TlsLevel::May;
  std::string tls_ca_file;
  Seconds tls_fallback_time{3600};
  // "destination user password" lines for AUTH to smarthosts and routes (root-only file, read
  // by esmtpclient before it drops privileges); "" = no AUTH.
  std::string client_credentials;
  bool client_auth_plaintext =
      false;  // AUTH without TLS too (Postfix: smtp_sasl_tls_security_options)
  std::vector<HostPort> dns_servers;  // empty: /etc/resolv.conf
  Millis dns_timeout{2000};
  int dns_tries = 2;
  // MTA-STS (RFC 8461, lib/mtasts): look policies up for recipient domains; the policy fetch's
  // total timeout; policies kept in <state_dir>/mta-sts.
  bool mta_sts = true;
  Seconds mta_sts_timeout{60};
  std::size_t mta_sts_cache_size = 10000;
  // TLS reporting (RFC 8460, lib/tlsrpt): esmtpclient journals per-policy session counts in
  // <state_dir>/tlsrpt; estafetted runs `estafette tls-report --send` once a day. "" below:
  // postmaster@hostname and hostname.
  bool tls_reporting = false;
  std::string tls_report_contact;
  std::string tls_report_organization;
  // Metrics (lib/metrics): where estafette-metrics serves /metrics; unset: no metrics program
  // and no metrics files.
  std::optional<HostPort> metrics_listen;

  // TLS (lib/tls): esmtpd's certificates and what it accepts. No certificate: no STARTTLS.
  std::vector<std::string> tls_cert_files;  // each: PEM certificate then its chain
  std::vector<std::string> tls_key_files;   // one per certificate; empty: in the cert files
  std::vector<std::string> tls_protocols = {"TLSv1.2", "TLSv1.3"};  // a range, lowest first
  std::string tls_ciphers;       // OpenSSL cipher list for TLS <= 1.2; "": OpenSSL's default
  std::string tls_ciphersuites;  // TLS 1.3 suites; "": OpenSSL's default
  std::string tls_groups;        // key exchange groups; "": OpenSSL's default
  bool tls_session_tickets = true;
  Seconds tls_session_timeout{3600};  // cached sessions and tickets resume this long
  Seconds tls_handshake_timeout{60};  // STARTTLS or port 465: the handshake, at most
  // Client certificates: "" = none asked for; else asked for (not required) and verified
  // against this CA file (Postfix's smtpd_tls_ask_ccert with smtpd_tls_CAfile).
  std::string tls_client_ca_file;
  // SHA-256 fingerprints of verified client certificates that may relay (lib/config/
  // fingerprints.h; Postfix's relay_clientcerts); "" = none. Read with the certificates.
  std::string relay_clientcerts;

  // SMTP AUTH (lib/auth): "file:PATH" or "dovecot:SOCKET"; "" = no AUTH anywhere.
  std::string auth_backend;
  bool auth_allow_plaintext = false;  // PLAIN/LOGIN without TLS (smtpd_tls_auth_only = no)
  std::size_t auth_fail_limit = 10;   // failed AUTHs per client and window; 0 = no limit
  Seconds auth_fail_window{600};
  // SMTP AUTH: the MAIL FROM addresses each login may use (lib/auth/sender_login_map.h reads
  // the file, at start and on SIGHUP); an empty path: no restriction.
  FileRef sender_login_map;

  // Privileges: esmtpd (after binding listen), esmtpclient and courierd's own work run as this
  // user; estafetted and estafette-local stay root. "" = every process stays as started.
  std::string user;
  // Who may submit on <state>/run/submit.sock: user names, uids and @groups; empty: anyone
  // (Postfix's authorized_submit_users = static:anyone). root and `user` always may.
  std::vector<std::string> submit_allowed_users;

  std::string log_file;  // empty: stderr
  bool syslog = false;
  std::string log_level = "information";

  // Where each setting the file gives is ("file:line", by the setting's own name, not its
  // alias): messages about a setting found later (a missing user) name its line.
  std::map<std::string, std::string> given;
  // Lines accepted, but not as written: "file:line: why". A setting given twice (the last one
  // wins, with a warning, as in Postfix), an esmtproutes domain given twice, a smarthost route
  // that the smarthost setting overrides. The daemons start; check-config prints them.
  std::vector<std::string> warnings;

  std::string queue_dir() const { return state_dir + "/queue"; }
  std::string run_dir() const { return state_dir + "/run"; }
  std::string mta_sts_dir() const { return state_dir + "/mta-sts"; }
  std::string tlsrpt_dir() const { return state_dir + "/tlsrpt"; }
  std::string courierd_socket() const { return run_dir() + "/courierd.sock"; }
  std::string metrics_dir() const { return run_dir() + "/metrics"; }
  bool is_local_domain(const std::string& domain) const;
};

// Parses config text, each line by its entry in the settings table (settings.h), then checks
// across settings and reads the files they name; `name` is used in error messages, relative
// paths are resolved against `base_dir`. Throws ConfigError.
Config parse_config(const std::string& text, const std::string& name, const std::string& base_dir);
// Reads and parses a file; an empty path means the embedded default.
Config load_config(const std::string& path);
// The config a program uses when given none: an installed program (base::running_installed)
// reads <sysconfdir>/estafette/estafette.conf when that file exists; otherwise "" (the
// embedded default), so programs run from the build tree keep the embedded default.
std::string default_config_path();
// Parses an esmtproutes file into routes (throws ConfigError with file:line); a domain given
// twice: the last line wins, and `warnings` (when given) gets "file:line: why".
void parse_routes(const std::string& text, const std::string& name, Routes& routes,
                  std::vector<std::string>* warnings = nullptr);

// The settings a config gives (Config::given) that have no effect with the others, each as
// "file:line: NAME: ignored: why" (program_user without allow_program_delivery, milter
// timeouts without a milter, ...): `estafette check-config --strict`. Pure.
std::vector<std::string> ignored_settings(const Config& config);

// How many processes a *_processes setting asks for when `cpus` CPUs are usable: the number
// itself, or for kAutoProcesses one per CPU (at least 1, at most kMaxProcesses).
std::size_t resolve_processes(std::size_t configured, std::size_t cpus);
// local_processes: estafette-local waits on fsync, not on a CPU, so auto is 4 per usable CPU,
// at least 4 and at most 32 (the loopback benchmark: 2 processes on 2 CPUs delivered about 100
// msgs/s, 8 about 470, 16 about 530; docs/benchmarks.md).
std::size_t resolve_local_processes(std::size_t configured, std::size_t cpus);
// One esmtpd process's share of max_sessions when `processes` of them share the listen
// addresses: max_sessions / processes rounded down (at least 1), so the total never exceeds it.
std::size_t session_share(std::size_t max_sessions, std::size_t processes);

// Value parsers, exposed for tests: "30s", "5m", "2h", "1d", "250ms"; "10M", "64K", "1G".
std::optional<Millis> parse_duration(std::string_view text);
std::optional<std::size_t> parse_size(std::string_view text);
std::optional<HostPort> parse_host_port(std::string_view text, std::uint16_t default_port);

}  // namespace estafette::config
