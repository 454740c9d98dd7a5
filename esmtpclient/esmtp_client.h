// esmtp_client.h: the delivery engine of estafette-esmtpclient. Takes Deliver messages from
// courierd over the IPC channel, finds where to connect (a static route "host:port" /
// "[v6]:port", resolved with lib/dns when host is a name, or the MX hosts of a bare domain),
// runs the SMTP transaction on a Connection and answers each Deliver with exactly one
// DeliverResult. Idle connections are pooled per destination and reused for the next Deliver to
// the same destination (for an MX site "mx:host,...", courierd's key for every domain whose MX
// hosts are these, a connection opened for one domain serves the others; the MX lookup is the
// domain of the job's recipients, which courierd keeps to one domain per job); a Deliver never uses
// more than one connection at a time (MX hosts are tried one after the other on connection failure
// or a temporary greeting failure). Loop thread only. Owns the channel, the resolver and every
// connection. on_exit runs when the channel closes (courierd is gone). Throws std::runtime_error
// from the constructor when the resolver cannot be set up.
// Mail loops: a target that is one of our own esmtpd listeners (`listen`, wildcards meaning
// every local address: lib/base/self_addresses.h, read once at start) is never connected to. As
// Postfix does, that MX host and every MX host of equal or worse preference are dropped; when
// nothing is left the job fails permanently with 554 5.4.6 "mail for DOMAIN loops back to
// myself" (a route that names another port or host is not ourselves and goes ahead).
// TLS: each Deliver's level (tls= of its destination in the destinations file, else tls_policy)
// and AUTH (client_credentials) decide the connection's smtp::ClientSecurity and TlsSetup; a
// pooled connection serves only jobs with the same level, names and credentials (its pool key).
// Under `may` a failed STARTTLS handshake is retried at once in plaintext on a new connection to
// the same address, and that address gets plaintext without a handshake for tls_fallback_time
// (a bounded table). One tls::ClientContext per process resumes sessions per address and policy.
// TLS reports: with tls_reporting, each new connection of an MX delivery that meant to do TLS is
// counted as a success or a failure of its domain's policy (tls_reports.h); so is a host that
// DANE or MTA-STS refused before any connection.
// LMTP (courierd's destination "lmtp:unix:/path" or "lmtp:inet:host:port", for local and
// hosted mailboxes under an LMTP transport): the same transaction with LHLO and one reply per
// recipient after the end of data (smtp::ClientSession, Protocol::Lmtp), plaintext, connections
// pooled and reused like SMTP ones; a unix socket is connected to non-blocking like TCP.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "esmtpclient/esmtp_connection.h"
#include "esmtpclient/tls_reports.h"
#include "lib/base/fd.h"
#include "lib/base/self_addresses.h"
#include "lib/config/client_credentials.h"
#include "lib/config/config.h"
#include "lib/dns/dane.h"
#include "lib/dns/resolver.h"
#include "lib/event/loop.h"
#include "lib/ipc/channel.h"
#include "lib/ipc/messages.h"
#include "lib/metrics/shm_file.h"
#include "lib/mtasts/policy_source.h"

namespace estafette::esmtpclient {

// A Deliver's destination: a static route (host and port) or a domain for an MX lookup.
struct Destination {
  std::string host;  // the route's host, or the domain ("" for a site until the job sets it)
  std::uint16_t port = 25;
  bool route = false;  // false: MX lookup of `host`
  bool site = false;   // "mx:...": an MX site; the MX lookup is the recipients' domain
  // "lmtp:unix:/path" or "lmtp:inet:host:port" (config/transport.h): LMTP, no TLS, no AUTH;
  // a route to host:port, or to the unix socket `unix_path`.
  bool lmtp = false;
  std::string unix_path;
};
// Parses "host:port", "[ipv6]:port", "[host]:port" (route), "mx:host,..." (site), an LMTP
// transport or a bare domain (MX lookup); nullopt when malformed.
std::optional<Destination> parse_destination(const std::string& text, std::uint16_t mx_port);

smtp::ClientTimeouts timeouts_from(const config::Config& config);

class EsmtpClient final : private ConnectionOwner {
 public:
  // credentials: the client_credentials file, read by the caller while still root.
  EsmtpClient(event::Loop& loop, const config::Config& config, base::UniqueFd ipc_fd,
              std::function<void()> on_exit, config::CredentialTable credentials = {});
  ~EsmtpClient();
  EsmtpClient(const EsmtpClient&) = delete;
  EsmtpClient& operator=(const EsmtpClient&) = delete;

  // tls_reporting: appends the counts so far to the journal files now (also every five minutes).
  void flush_reports() {
    if (reports_) reports_->flush();
  }

 private:
  struct Target {
    std::string name;  // host name, for logs
    std::string ip;
    std::uint16_t port = 25;
    unsigned preference = 0;  // the MX host's; 0 for a route
  };
  // What a Deliver asks of its connections' security.
  struct Security {
    config::TlsLevel level = config::TlsLevel::May;
    std::vector<std::string> match;  // tls_match names, or empty
    bool implicit_tls = false;
    const config::Credentials* credentials = nullptr;
    std::string pool_key;  // the Deliver's destination plus all of the above
  };
  struct Delivery {
    ipc::Deliver job;
    Destination destination;
    Security security;
    bool plaintext_retry = false;  // `may`: the next connection skips STARTTLS
    std::vector<Target> targets;
    std::size_t next_target = 0;
    Connection* conn = nullptr;  // the connection running this job's transaction
    bool reused = false;         // conn came from the idle pool
    bool stale_retried = false;
    dns::Request dns;
    std::optional<dns::MxResult> mx;               // the MX answer, for DANE's verdicts
    std::map<std::string, dns::DaneVerdict> dane;  // by MX host name (dane, dane-only)
    mtasts::Lookup sts_lookup;
    std::optional<mtasts::Decision> sts;  // the MTA-STS policy of the recipients' domain
    std::optional<smtp::TransactionDone> last_failure;
    event::Clock::time_point started;
    // For the DeliverResult's timing: the first connection attempt (or the reuse of one) and
    // the MAIL of the last transaction tried.
    std::optional<event::Clock::time_point> connecting;
    std::optional<event::Clock::time_point> transaction;
  };

  void on_frame(const ipc::Frame& frame);
  void start(std::unique_ptr<Delivery> delivery);
  // After the policies are known: an idle connection with the same pool key, or a new one.
  void connect_or_reuse(Delivery& d);
  // MTA-STS (RFC 8461) applies to MX deliveries under may, dane (where DANE does not apply)
  // and encrypt, with mta_sts = yes; verify, secure and dane-only have their own stricter rules.
  // tls=mta-sts (any MX delivery; routes are deferred) also wants it, mta_sts = yes or not.
  bool wants_mta_sts(const Delivery& d) const;
  mtasts::PolicySource& policy_source();  // made on first use
  Security security_for(const Delivery& d) const;
  // The connection's STARTTLS/AUTH settings and TLS setup for one target of d.
  // dane: the host's DANE verdict under dane/dane-only, else null.
  // sts: the MTA-STS check of an enforced policy for this host, else null.
  std::pair<smtp::ClientSecurity, TlsSetup> connection_security(const Delivery& d, const Target& t,
                                                                const dns::DaneVerdict* dane,
                                                                const mtasts::MxCheck* sts);
  // dane/dane-only: the verdict for the next target, after its TLSA lookup; false while the
  // lookup runs (try_next_target is called again when it is done).
  bool dane_ready(Delivery& d, const Target& t);
  // The TLSA lookup at base (host's CNAME target, or host itself) for MX host `host`; a secure
  // "none" at a CNAME target looks again at host. Then try_next_target, from the loop.
  void tlsa_lookup(Delivery& d, const std::string& host, const std::string& base,
                   std::uint16_t port);
  // The next target is refused by DANE or MTA-STS before any connection: a policy failure
  // (4.7.5 `reply`), then the target after it.
  void refuse_target(Delivery& d, const std::string& reply);
  bool in_fallback(const std::string& address);
  void resolve(Delivery& d);
  void on_targets(Delivery& d);
  void try_next_target(Delivery& d);
  void run_on(Delivery& d, Connection& conn);
  // next_hop_dsn: the server advertised DSN and got the DSN parameters (DeliverResult).
  void finish(Delivery& d, std::vector<ipc::RcptResult> results, bool host_failed,
              const std::string& remote, const std::string& summary, bool next_hop_dsn = false);
  void finish_all(Delivery& d, ipc::RcptStatus status, const std::string& reply, bool host_failed);
  // A REQUIRETLS job whose last host failed our TLS policy: its temporary results become 5.7.10.
  static void requiretls_bounce(const Delivery& d, std::vector<ipc::RcptResult>& results);
  // TLS reporting (RFC 8460): the policy of the recipients' domain that applied to target t, and
  // the outcome of a new connection's TLS under it (nothing for routes, reused connections and
  // connections that never got as far as TLS).
  tlsrpt::Policy report_policy(const Delivery& d, const Target& t,
                               const dns::DaneVerdict* dane) const;
  void report_tls(const Delivery& d, const Connection& conn);
  void report_refusal(const Delivery& d, const Target& t, const tlsrpt::Policy& policy,
                      tlsrpt::ResultType result, const std::string& why);
  Connection* take_idle(const std::string& key);
  void collect_garbage();

  void on_transaction_done(Connection& conn, const smtp::TransactionDone& done) override;
  void on_ready(Connection& conn) override;
  void on_closed(Connection& conn) override;

  event::Loop& loop_;
  const config::Config& config_;
  std::string helo_name_;
  base::SelfAddresses self_;  // our esmtpd's listeners: a target there is a mail loop
  smtp::ClientTimeouts timeouts_;
  config::CredentialTable credentials_;
  std::shared_ptr<tls::ClientContext> tls_;
  std::unique_ptr<metrics::Writer> metrics_;  // outlives the connections (declared before)
  // `may` hosts ("ip:port") whose handshake failed, until when they get plaintext at once.
  std::unordered_map<std::string, event::Clock::time_point> tls_fallback_;
  // Logins ("user destination") whose server refused our SCRAM proof and took PLAIN: their
  // accounts hold a hash SCRAM cannot use, so they skip SCRAM (and a failed login each time,
  // which the server may count against us). Per process (each of esmtpclient_processes learns
  // it once), until a restart. Bounded: cleared when full.
  std::unordered_set<std::string> no_scram_;
  dns::Resolver resolver_;
  std::unique_ptr<mtasts::PolicyCache> sts_cache_;  // with mta_sts = yes, or for tls=mta-sts
  std::unique_ptr<mtasts::PolicySource> sts_;
  std::unique_ptr<TlsReports> reports_;  // with tls_reporting = yes
  ipc::Channel channel_;
  std::function<void()> on_exit_;
  std::map<std::uint64_t, std::unique_ptr<Delivery>> deliveries_;  // by job id
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::unordered_map<Connection*, std::uint64_t> busy_;   // connection -> job id
  std::map<std::string, std::vector<Connection*>> idle_;  // pool by destination
  std::vector<std::unique_ptr<Connection>> graveyard_;    // closed, destroyed from the loop
  std::vector<std::unique_ptr<Delivery>> finished_;
  bool gc_posted_ = false;      // collect_garbage() is posted on the loop
  event::CallbackGuard guard_;  // posted callbacks die with this object
  std::uint64_t next_conn_id_ = 1;
};

}  // namespace estafette::esmtpclient
