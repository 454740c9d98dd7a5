// server_session.h: the ESMTP server session state machine (RFC 5321, 1870, 2034, 2920, 3461).
// No I/O: the I/O layer (esmtpd, on the connection's event loop thread) feeds events -- the
// greeting, command lines from a CommandReader, the end of DATA from a DataReader, the queue's
// verdict, timeouts -- and carries out the returned actions in order:
//   Reply      write `text` (complete reply line(s) with CRLF); with PIPELINING the I/O layer
//              may collect replies and flush them when its input buffer is empty.
//   BeginData  switch the input to a DataReader (the bytes after the DATA line are message).
//   Commit     make the message durable (envelope() holds its envelope), then call
//              on_queued() or on_queue_failed(); the 250 goes out only then. While awaiting the
//              commit the I/O layer must NOT feed lines (it keeps pipelined input buffered).
//   Close      flush the pending replies and close the connection.
//   LookupSender  look up the MX/A/AAAA of the domain in `text` (BOFHCHECKDNS) and call
//              on_sender_checked(); until then waiting() is true.
//   StartTls   (after "220 2.0.0 Ready to start TLS") throw away every byte received after the
//              STARTTLS line (plaintext pipelined behind it must never run inside TLS:
//              CVE-2011-0411), send the 220, run the TLS handshake and call on_tls_started();
//              until then waiting() is true. A failed handshake ends the connection.
//   VerifyAuth  (text: the SASL mechanism) check take_credentials() with the auth backend and
//              call on_auth_result(); until then waiting() is true. Never log the credentials.
//   LookupScram  (text: the SCRAM user name) ask the auth backend for that user's SCRAM-SHA-256
//              secret and call on_scram_secret() with it and a fresh server nonce
//              (auth::scram_server_nonce()); until then waiting() is true.
//   AuthChecked  (text: the SASL mechanism) the session checked a SCRAM proof itself:
//              checked_auth() says the verdict and the user name; log and count it as a
//              backend's verdict and call on_auth_result() with it; until then waiting() is true.
//   LookupRecipient  policy.check_recipient said its answer needs a lookup that may block
//              (passwd, stat): run it off the loop for the address in `text` and call
//              on_recipient_checked() with its verdict, or on_recipient_lookup_failed(); until
//              then waiting() is true, so pipelined commands after the RCPT wait in order.
// Filters (ClientInfo::filtered): HELO, MAIL, RCPT, DATA and the end of data each emit a
// Filter* action instead of their reply; the I/O layer runs the session's filters and calls
// on_filter_verdict() with the filters' own verdict (lib/smtp/filter_verdict.h, the type filters/
// answers; no translation), which gives the reply (or, at the end of data, Commit); a Failed
// verdict is answered as Tempfail. At FilterMessage
// the I/O layer has the whole message: it applies the filters' modifications and makes the
// queue record itself, then Commit commits it. A connect-stage verdict (on_filter_connect)
// rejects or tempfails every later command.
// TLS (RFC 3207): EHLO offers STARTTLS while ClientInfo::tls_offered and not yet in TLS;
// on_tls_started() forgets what the client said before (EHLO, the transaction), as RFC 3207 4.2
// says, so the client must say EHLO again. Implicit TLS (port 465, RFC 8314): the I/O layer calls
// on_tls_started() before start(). The Received header then says how (RFC 3848: ESMTPS).
// SMTP AUTH (RFC 4954; PLAIN and LOGIN, lib/auth/sasl.h, and SCRAM-SHA-256, lib/auth/scram.h,
// when ClientInfo::auth_scram): offered when ClientInfo::auth_offered and the connection is
// encrypted (or policy.auth_allow_plaintext). SCRAM: AUTH [client-first] -> LookupScram ->
// 334 server-first -> client-final -> 334 v=server-final -> empty line -> AuthChecked -> 235
// (RFC 4954 4: no data with the 235); a wrong proof is AuthChecked too (535). During the SASL
// exchange
// on_line() takes the client's responses, not commands. A submission or submissions listener
// requires it before MAIL (530 5.7.0; local submissions never), a listener with tls_required
// requires TLS before MAIL. An authenticated client may relay; with policy.sender_owned set it
// may only use the senders that says it owns (553 5.7.1). policy.auth_blocked (the brute-force
// limit) is asked at AUTH and after each failure: a blocked client gets 421 4.7.0 and Close.
// on_tls_started() forgets an authentication made before TLS, as RFC 3207 says.
// Connection checks: with ClientInfo::checks_pending the first RCPT waits (waiting() is true, no
// reply yet) until on_checks_done() brings the verdict; the RCPT is then answered. While
// waiting() the I/O layer must NOT feed lines, as while awaiting a commit.
// Per-session problems become replies, never exceptions. Every 5xx reply to a command line counts
// as an error; at policy.max_errors (0 = no limit) the reply is followed by 421 4.7.0 and Close.
// Junk commands (NOOP, RSET, VRFY, HELP) beyond policy.max_junk_commands each count as an error
// too, as Postfix's smtpd_junk_command_limit; the count starts again after a queued message.
// A refused DATA (any reply but 354) ends a pipelined group (RFC 2920 3.1): input the client sent
// before it could see that reply is a message body, never commands. The I/O layer calls
// on_early_input() when it holds such input (refused_data() is true and bytes follow); a line
// after a refused DATA that is no valid command is taken as such a body too. Both: 421 and Close.
// Calling on_line() during DATA or while awaiting a commit is a broken invariant and aborts.
// After Close every event returns nothing.
// The session keeps a reference to the ServerPolicy, which must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "lib/auth/sasl.h"
#include "lib/auth/scram.h"
#include "lib/smtp/command.h"
#include "lib/smtp/esmtp_params.h"  // DsnRet
#include "lib/smtp/filter_verdict.h"
#include "lib/smtp/listener_role.h"
#include "lib/smtp/reader.h"  // LineStatus, DataStatus

namespace estafette::smtp {

// The router's answer about one RCPT address (esmtpd: lib/routing's Router::expand).
struct RecipientVerdict {
  bool ours = false;  // a local or hosted mailbox or an alias: no relay permission needed
  std::string reply;  // non-empty: refuse the RCPT with it ("550 5.1.1 ..."), a counted error
  // The answer needs a lookup that may block (NSS, the file system): the session asks for it
  // with a LookupRecipient action instead; `ours` and `reply` are not set.
  bool lookup = false;
};

// Why a LookupRecipient got no verdict: too many lookups queued already (451 4.3.0), or none
// came in time (451 4.4.3). Neither counts as an error of the client.
enum class RecipientLookupFailure { Busy, TimedOut };

struct ClientInfo;

struct ServerPolicy {
  std::string hostname;                     // our name, in the greeting and Received
  std::size_t max_message_size = 10 << 20;  // SIZE extension value, enforced
  std::size_t max_recipients = 1000;        // 452 4.5.3 beyond it
  std::size_t max_errors = 20;              // 421 and close after this many bad commands
  std::size_t max_junk_commands = 100;      // NOOP/RSET/VRFY/HELP beyond it count as errors
  std::vector<std::string> local_domains;   // lower-case; mail for these is accepted from anyone
  std::vector<std::string> relay_domains;   // lower-case; also accepted from anyone (we relay)
  // Postfix's allow_untrusted_routing: false refuses relay_domains recipients with routing of
  // their own (%, !, a quoted '@' in the local part, a source route) unless relay_client.
  bool allow_untrusted_routing = false;
  // Postfix's hopcount_limit: a message that arrives with this many Received: fields or more
  // (ours would make one more) is refused at the end of DATA with 554 5.4.6; 0 = no limit.
  std::size_t max_hops = 50;
  std::string software = "Estafette";
  // Called for each RCPT before the relay check; unset: only the domain lists decide. On the
  // loop: it must not block (a verdict with `lookup` set defers what would).
  std::function<RecipientVerdict(const std::string& address)> check_recipient;
  // Called at DATA for a message the I/O layer keeps in memory to its end (a filtered or a
  // discarded one) with the SIZE= the client declared (0: none); false answers 452 4.3.1
  // instead of going on (the transaction stays). Unset: always admitted.
  std::function<bool(std::size_t declared_size)> admit_buffered;
  // AUTH with PLAIN and LOGIN also without TLS (Postfix's smtpd_tls_auth_only = no).
  bool auth_allow_plaintext = false;
  // sender_login_map: does `login` own `sender`? Asked at MAIL of an authenticated client
  // (never for the null sender); unset: any sender.
  std::function<bool(std::string_view login, std::string_view sender)> sender_owned;
  // The brute-force limit (auth_fail_limit): true while this client may not try AUTH.
  std::function<bool(const ClientInfo& client)> auth_blocked;
};

// What a TLS handshake agreed on (lib/tls's SessionInfo, as the session needs it).
struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
  int bits = 0;         // secret bits of the cipher
  int alg_bits = 0;     // bits of its algorithm
  // The client's certificate verified and is in relay_clientcerts: may relay to any domain
  // (Postfix's permit_tls_clientcerts).
  bool client_cert_trusted = false;
};

struct ClientInfo {
  std::string ip;  // "127.0.0.1" or "::1"; "" for a local submission
  std::uint16_t port = 0;
  bool relay_client = false;         // client IP is in relay_clients: may send to any domain
  std::string rdns = "unknown";      // confirmed reverse name, filled by later checks
  std::string ident_user;            // RFC 1413 user id, "" when unknown
  bool checks_pending = false;       // connection checks still running: hold the first RCPT reply
  bool check_sender_domain = false;  // BOFHCHECKDNS for this client
  bool filtered = false;             // filters (milters, modules) see this session
  // A local submission (esmtpd's unix socket <state>/run/submit.sock, estafette-sendmail): the
  // submitter's uid from SO_PEERCRED. Such a session relays (relay_client is set), its Received
  // header reads "from local (uid N)", and connection checks (rDNS, DNSBL, IDENT) are skipped.
  std::optional<uid_t> local_uid = std::nullopt;
  ListenerRole role = ListenerRole::Mx;  // of the listener the client came in on
  bool tls_offered = false;              // a certificate is configured: STARTTLS may be used
  std::optional<TlsInfo> tls;            // set once the connection is encrypted
  bool tls_required = false;             // the listener's tls_required: no MAIL before STARTTLS
  bool auth_offered = false;             // an auth backend serves this listener (AUTH)
  bool auth_scram = false;               // and it offers SCRAM-SHA-256
  bool is_local() const { return local_uid.has_value(); }
  // "[ip]:port", or "local uid=N", for logs.
  std::string peer_text() const;
};

// What the connection checks decided (lib/checks, mapped by esmtpd).
struct CheckVerdict {
  std::string rdns = "unknown";  // confirmed name
  std::string ident_user;
  std::string block_reply;  // non-empty: DNS lists block the client; 550 5.7.1 <this> per RCPT
};

enum class SenderDomain { Ok, NotFound, TempFail, NullMx };

// A recipient's DSN request (RFC 3461), as parse_rcpt_params() gives it; both "" when none.
struct RcptDsn {
  std::string notify;  // canonical NOTIFY ("NEVER", "SUCCESS,FAILURE", ...), "" = not given
  std::string orcpt;   // "addr-type;xtext" as received, "" = none
  bool operator==(const RcptDsn&) const = default;
};

struct Envelope {
  std::string helo;    // as given
  std::string sender;  // "" for the null sender
  std::vector<std::string> recipients;
  std::vector<RcptDsn> dsn;          // parallel to recipients
  std::string body_type;             // "7BIT", "8BITMIME" or "" (BODY= param)
  std::size_t declared_size = 0;     // SIZE= param
  DsnRet ret = DsnRet::Unspecified;  // RET= param
  std::string envid;                 // ENVID= param (xtext as received), "" = none
  std::string auth_user;             // the login of an authenticated client, "" = none
  bool require_tls = false;          // REQUIRETLS (RFC 8689): TLS all the way, or a bounce
};

enum class ActionKind {
  Reply,
  BeginData,
  Commit,
  Close,
  LookupSender,
  LookupRecipient,  // text: the RCPT address
  FilterHelo,       // text: the HELO/EHLO argument
  FilterMail,       // text: the sender
  FilterRcpt,       // text: the recipient
  FilterData,       // the DATA command
  FilterMessage,    // end of data: filter the message, apply changes, make the record
  StartTls,         // after the 220 to STARTTLS: drop buffered input, handshake, on_tls_started()
  VerifyAuth,       // text: the SASL mechanism; verify take_credentials(), on_auth_result()
  LookupScram,      // text: the SCRAM user; backend's secret -> on_scram_secret()
  AuthChecked,      // text: the SASL mechanism; checked_auth() -> log, count, on_auth_result()
};
// What the auth backend said about the credentials of a VerifyAuth.
enum class AuthResult {
  Accepted,     // 235 2.7.0
  Refused,      // 535 5.7.8, a counted error
  Unavailable,  // 454 4.7.0 (RFC 4954 6): the backend cannot answer now; the session goes on
};
// What the session decided about a SCRAM exchange (AuthChecked).
struct CheckedAuth {
  AuthResult result = AuthResult::Refused;  // Accepted or Refused
  std::string user;                         // the name the client gave (for the log)
};
// Why the queue write or commit failed: the disk is full (ENOSPC, EDQUOT), or anything else.
enum class QueueFailure { Temporary, NoSpace };

// Why a refusing Reply refuses, when the session knows a reason worth counting (esmtpd's
// metrics); None for every other reply.
enum class Refusal : std::uint8_t { None, Dnsbl, Relay, UnknownUser, Filter };

struct Action {
  ActionKind kind;
  std::string text;                 // Reply: full reply line(s) including CRLF; empty otherwise
  Refusal refusal = Refusal::None;  // Reply
};
using Actions = std::vector<Action>;

class ServerSession final {
 public:
  ServerSession(const ServerPolicy& policy, ClientInfo client);
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  Actions start();                                            // 220 greeting
  Actions on_line(std::string_view line, LineStatus status);  // one command line without CRLF
  // DataReader found CRLF.CRLF; `received`: the message's own Received: fields (HopCounter).
  Actions on_data_end(DataStatus status, std::size_t size, std::size_t received = 0);
  Actions on_queued(std::string_view queue_id);  // durable: 250 2.0.0 Ok: queued as <id>
  // 451 4.3.0 temporary local problem; 452 4.3.1 when the queue's file system is full. The
  // session goes on: the client may retry on the same connection.
  Actions on_queue_failed(QueueFailure why = QueueFailure::Temporary);
  Actions on_timeout();      // 421 4.4.2 ... timeout, Close
  Actions on_deadline();     // the session's total time is over: 421 4.4.2, Close
  Actions on_pregreet();     // the client talked before the greeting: 554 5.5.1, Close
  Actions on_early_input();  // bytes sent before a refused DATA's reply: 421 4.5.0, Close
  Actions on_checks_done(const CheckVerdict& verdict);             // answers a held RCPT, if any
  Actions on_sender_checked(SenderDomain result);                  // answers the MAIL that asked
  Actions on_recipient_checked(const RecipientVerdict& verdict);   // answers a LookupRecipient
  Actions on_recipient_lookup_failed(RecipientLookupFailure why);  // 451 to its RCPT
  Actions on_filter_verdict(const FilterVerdict& verdict);  // answers the pending Filter* action
  Actions on_filter_connect(const FilterVerdict& verdict);  // the connect stage's verdict
  // The TLS handshake is done: after StartTls, the session starts again without EHLO (no
  // reply: the client speaks first); before start() (implicit TLS), only recorded.
  Actions on_tls_started(const TlsInfo& tls);
  // Answers a VerifyAuth; `user`: the authenticated login (Accepted only).
  Actions on_auth_result(AuthResult result, std::string_view user = {});
  // During VerifyAuth: the credentials to check (moved out; the session keeps no copy).
  auth::Credentials take_credentials();
  // Answers a LookupScram: 334 server-first, or 454 4.7.0 when the backend was Unavailable.
  // server_nonce: printable, no ',' (auth::scram_server_nonce()).
  Actions on_scram_secret(const auth::ScramLookup& lookup, std::string_view server_nonce);
  // During AuthChecked: what the session decided.
  const CheckedAuth& checked_auth() const { return checked_auth_; }
  const std::string& authenticated_user() const { return auth_user_; }  // "" = none
  // The mechanism of the AUTH in progress or done ("PLAIN", "LOGIN"); "" = none.
  std::string_view auth_mechanism() const;
  bool discarded() const { return discard_; }  // a filter said discard for this message
  // During FilterMail: the MAIL command's sender and parameters (SIZE, BODY).
  const Envelope& pending_mail() const { return pending_mail_; }

  bool in_data() const { return state_ == State::kData; }
  // An AUTH exchange runs: the next line is a SASL response (secret), not a command.
  bool in_auth() const { return state_ == State::kAuth; }
  bool awaiting_commit() const { return state_ == State::kCommit; }
  bool closed() const { return state_ == State::kClosed; }
  bool waiting() const { return state_ == State::kWait; }
  const Envelope& envelope() const { return envelope_; }
  const ClientInfo& client() const { return client_; }
  bool esmtp() const { return esmtp_; }  // the client said EHLO (not HELO)
  std::size_t error_count() const { return errors_; }
  // The last command was a DATA that got no 354 (and nothing came since).
  bool refused_data() const { return refused_data_; }

  // "Received: from HELO (RDNS [IP])" ("(USER@RDNS [IP])" with an ident user)\r\n\tby HOST
  // (SOFTWARE) with ESMTP id QID\r\n"; over TLS a line "\t(using VERSION with cipher CIPHER
  // (BITS/ALG_BITS bits))\r\n" comes before "\tby"; "with" is protocol_name() (Postfix's form).
  // "\tfor <RCPT>; DATE\r\n" -- the "for" clause only with exactly one recipient, "with SMTP"
  // after HELO, "[IPv6:...]" for IPv6 clients, DATE in RFC 5322 form in UTC. A local
  // submission's first line is "Received: from local (uid N)\r\n". Text from the client or
  // DNS (HELO, RDNS, USER) is printable ASCII without the characters that would end its token
  // (space, parentheses, ';', '\\', '"': each becomes '?'), each at most kMaxDomain bytes, so
  // the field stays well-formed and bounded whatever the client sends.
  std::string received_header(std::string_view queue_id, std::time_t now) const;
  // RFC 3848's "with" protocol: SMTP (HELO), ESMTP, ESMTPS (TLS), ESMTPA (AUTH), ESMTPSA.
  std::string protocol_name() const;

 private:
  enum class State { kInit, kReady, kData, kCommit, kWait, kClosed, kAuth };

  Actions on_helo(std::string_view argument, bool esmtp);
  Actions on_mail(const Command& cmd);
  Actions accept_mail();
  Actions mail_checked();  // after the sender lookup: the filters, or accept
  Actions helo_reply() const;
  Actions wait_for(ActionKind filter_action, std::string text);
  Actions on_rcpt(const Command& cmd);
  Actions rcpt_routed(const Command& cmd, const RecipientVerdict& routed);
  Actions on_data();
  Actions on_starttls();
  Actions on_auth(const Command& cmd);
  Actions sasl_step(auth::SaslStep step);
  Actions on_auth_line(std::string_view line, LineStatus status);
  Actions scram_line(std::string_view line);
  Actions scram_client_first(std::string_view response);
  Actions scram_checked(AuthResult result);
  bool auth_advertised() const;
  Actions error(std::string_view reply);  // a counted error reply (+ 421 when over the limit)
  Actions junk(std::string_view reply);   // a junk command's reply, an error past the junk limit
  Actions reply(std::string_view reply) const;
  Actions refuse(Refusal why, std::string_view reply) const;  // reply() with its reason
  Actions close(std::string_view reply);
  void reset_transaction();
  bool relay_allowed(std::string_view recipient, bool source_route) const;

  const ServerPolicy& policy_;
  ClientInfo client_;
  Envelope envelope_;
  State state_ = State::kInit;
  bool esmtp_ = false;
  bool in_transaction_ = false;         // MAIL accepted
  std::string block_reply_;             // from the checks
  std::optional<Command> held_rcpt_;    // waiting for the checks
  std::optional<Command> lookup_rcpt_;  // waiting for its LookupRecipient verdict
  Envelope pending_mail_;               // MAIL waiting for its sender-domain lookup or the filters
  std::string pending_rcpt_;            // RCPT waiting for the filters
  RcptDsn pending_rcpt_dsn_;            // and its NOTIFY / ORCPT
  ActionKind waiting_for_ = ActionKind::Reply;  // the Filter* action waiting for its verdict
  std::string session_reply_;  // a connect-stage filter rejected the session: every reply
  bool discard_ = false;       // this message is discarded (a filter said so)
  bool discard_session_ = false;
  std::size_t errors_ = 0;
  std::size_t junk_ = 0;
  bool refused_data_ = false;
  std::optional<auth::SaslExchange> sasl_;         // kAuth: the exchange in progress
  std::optional<auth::Mechanism> auth_mechanism_;  // of the AUTH in progress or done
  std::optional<auth::Credentials> credentials_;   // VerifyAuth: until take_credentials()
  std::optional<auth::ScramServer> scram_;         // a SCRAM exchange in progress
  // What a SCRAM line in kAuth is: client-first, client-final, or the empty line after v=.
  enum class ScramWants { ClientFirst, ClientFinal, Ack } scram_wants_ = ScramWants::ClientFirst;
  CheckedAuth checked_auth_;  // AuthChecked: until on_auth_result()
  std::string auth_user_;     // authenticated as; "" = not
};

}  // namespace estafette::smtp
