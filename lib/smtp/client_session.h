// client_session.h: the ESMTP client session state machine (RFC 5321, RFC 1870 SIZE, RFC 2920
// PIPELINING, RFC 3461 DSN, RFC 3207 STARTTLS, RFC 4954 AUTH PLAIN/LOGIN), and LMTP (RFC 2033:
// LHLO, then one reply per accepted recipient after the end of data, lmtp_replies.h). It does no
// I/O: the I/O layer feeds it events (connected, a parsed reply, the TLS handshake is done, the
// body was sent, the current timeout expired, the connection closed) and carries out the actions it
// returns, in order (send bytes, start TLS, send the message body, report a finished transaction,
// report that the connection is idle and reusable, close). What TLS and AUTH it asks for is
// fixed per connection (ClientSecurity); whether a certificate is good enough is the I/O layer's
// call, which it reports with on_tls_started(). After every event the I/O layer re-arms
// one timer with timeout(), the RFC 5321 4.5.3.2 limit of the current state. One session per
// connection, used on the loop thread that owns the connection; values only. Errors are never
// thrown: every failure becomes per-recipient results of the transaction (TempFail for 4xx,
// timeouts and lost connections; PermFail for 5xx).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lib/auth/scram.h"
#include "lib/base/delivery_status.h"
#include "lib/smtp/lmtp_replies.h"
#include "lib/smtp/reply_parser.h"

namespace estafette::smtp {

struct ClientTimeouts {
  using Seconds = std::chrono::seconds;
  Seconds connect{30};
  Seconds greeting{300};
  Seconds mail{300};  // also EHLO/HELO and RSET
  Seconds rcpt{300};
  Seconds data_init{120};
  Seconds data_block{180};  // while the body is being written; restart on each write progress
  Seconds data_end{600};
  Seconds idle{10};  // an idle connection is kept this long for reuse, then QUIT
  Seconds quit{30};
  Seconds tls_handshake{60};
};

// RFC 3207 for one connection: never; when the server offers it (Postfix's "may": a refused
// STARTTLS goes on in plaintext); or required (no STARTTLS offered, or refused: a 4.7.5
// deferral of the transaction, never plaintext).
enum class StartTls { Never, IfOffered, Required };

// SMTP (EHLO, HELO when EHLO is refused) or LMTP (LHLO only; per-recipient end-of-data replies).
enum class Protocol { Smtp, Lmtp };

struct ClientCredentials {
  std::string user;
  std::string password;
};

struct ClientSecurity {
  StartTls starttls = StartTls::Never;
  bool implicit_tls = false;  // TLS from the first byte (port 465): no STARTTLS
  // AUTH after EHLO when the server offers SCRAM-SHA-256 (preferred: the password never crosses
  // the wire, and the server proves it knows the secret), PLAIN or LOGIN (and none of it when it
  // offers no AUTH at all, as Postfix does). A 5xx to AUTH defers the transaction: the
  // credentials are wrong for every message, which is the admin's to fix, not the senders'.
  std::optional<ClientCredentials> credentials = {};
  bool auth_without_tls = false;  // false: credentials never go over a plaintext connection
  std::string scram_nonce = {};   // the client nonce for SCRAM (auth::scram_server_nonce())
};

struct Transaction {
  std::string sender;  // "" = the null reverse-path
  std::vector<std::string> recipients;
  std::uint64_t size = 0;  // size of the wire-form body, for SIZE=
  // DSN (RFC 3461), sent only to a server that advertises DSN: RET and ENVID for MAIL, NOTIFY
  // and ORCPT per recipient (parallel to recipients, or shorter; "" = not given). Values as
  // received (ENVID and ORCPT in xtext).
  std::string ret = {};
  std::string envid = {};
  std::vector<std::string> notify = {};
  std::vector<std::string> orcpt = {};
  // REQUIRETLS (RFC 8689): MAIL carries it, and a next hop without TLS or without REQUIRETLS
  // gets nothing (a policy failure, 5.7.10).
  bool require_tls = false;
};

using DeliveryStatus = base::DeliveryStatus;

struct RecipientResult {
  DeliveryStatus status = DeliveryStatus::TempFail;
  std::string reply;  // "250 2.0.0 Ok" from the server, or a local explanation
};

// Actions for the I/O layer.
struct SendBytes {
  std::string bytes;
};
// Send the wire-form message body (dot-stuffed, CRLF) and the final ".\r\n", then call
// on_body_sent().
struct SendBody {};
// The transaction ended; results has one entry per recipient, in order.
struct TransactionDone {
  std::vector<RecipientResult> results;
  // The host failed before the transaction got anywhere (connect, greeting, EHLO/HELO, a
  // timeout or lost connection before MAIL): another host may do better, back off this one.
  bool host_failed = false;
  // The connection broke before any reply to this transaction arrived (e.g. a reused idle
  // connection the server had closed): retrying on a new connection is safe.
  bool no_reply = false;
  // The server advertised DSN, so the DSN parameters went with MAIL and RCPT.
  bool next_hop_dsn = false;
  // Our TLS policy refused this host (no STARTTLS, a refused certificate): host_failed is set
  // so that the next MX host is tried, but the host is not down for other destinations.
  bool policy_failed = false;
  std::string summary;  // the reply that decided it, for the log
};
// The session is idle: a new transaction may start (the connection can go to the pool).
struct Ready {};
// Close the connection (after writing what was queued before).
struct Close {};
// Start the TLS handshake now (after the 220 to STARTTLS; nothing else is queued), then call
// on_tls_started().
struct StartTlsNow {};

using Action = std::variant<SendBytes, SendBody, TransactionDone, Ready, Close, StartTlsNow>;
using Actions = std::vector<Action>;

struct Capabilities {
  bool esmtp = false;
  bool pipelining = false;
  bool size = false;  // SIZE advertised (with or without a limit)
  bool eight_bit_mime = false;
  bool dsn = false;  // RFC 3461: the DSN parameters are passed on
  bool starttls = false;
  bool requiretls = false;
  bool auth_plain = false;
  bool auth_login = false;
  bool auth_scram = false;       // SCRAM-SHA-256
  bool auth = false;             // AUTH advertised, with whatever mechanisms
  std::uint64_t size_limit = 0;  // 0 = none advertised
};

class ClientSession final {
 public:
  enum class State {
    Connecting,
    Greeting,
    Ehlo,
    Helo,
    StartTls,      // STARTTLS sent, waiting for its 220
    TlsHandshake,  // the I/O layer runs the handshake
    Auth,          // AUTH sent, in its exchange
    Idle,          // ready for a transaction
    Transaction,   // MAIL/RCPT/DATA sent, waiting for replies
    Body,          // the I/O layer is sending the body
    EndOfData,     // waiting for the reply to the end of data
    Rset,
    Quit,
    Closed,
  };

  ClientSession(std::string helo_name, ClientTimeouts timeouts, ClientSecurity security = {},
                Protocol protocol = Protocol::Smtp);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Starts a transaction: before the connection is up (it runs after the EHLO), or when idle.
  // Calling it in any other state is a bug (aborts).
  Actions start(Transaction transaction);
  // Gracefully ends an idle session (QUIT), or closes at once in any other state.
  Actions quit();

  Actions on_connected();  // with implicit_tls: after the handshake
  // The STARTTLS handshake is done. refusal "": the session goes on inside TLS (a new EHLO);
  // otherwise why the peer is not good enough ("certificate not trusted ..."): the transaction
  // is deferred with 4.7.5 and the session QUITs.
  Actions on_tls_started(const std::string& refusal);
  Actions on_reply(const Reply& reply);
  Actions on_body_sent();
  Actions on_timeout();
  // The connection failed or closed (connect error, EOF, write error, malformed reply).
  Actions on_closed(const std::string& reason);

  State state() const { return state_; }
  bool idle() const { return state_ == State::Idle; }
  bool in_transaction() const { return transaction_.has_value(); }
  const Capabilities& capabilities() const { return caps_; }
  bool tls_active() const { return tls_active_; }
  // The server refused our SCRAM-SHA-256 proof (535) and PLAIN or LOGIN was tried instead: the
  // account's hash is not one SCRAM can use; the caller may skip SCRAM for it next time.
  bool scram_refused() const { return scram_refused_; }
  // EHLO or HELO was answered with success: STARTTLS was possible from then on.
  bool greeted() const { return greeted_; }
  bool authenticated() const { return authenticated_; }
  // The timeout that applies in the current state.
  std::chrono::seconds timeout() const;

 private:
  enum class Expect { Mail, Rcpt, Data };
  struct Pending {
    Transaction txn;
    std::vector<std::optional<RecipientResult>> results;
    std::vector<bool> accepted;
    bool mail_failed = false;
    bool mail_replied = false;
    bool got_reply = false;
    std::size_t next_rcpt = 0;   // unpipelined: next RCPT to send
    std::size_t rcpt_reply = 0;  // index of the next RCPT reply
    std::deque<Expect> expect;
    bool discard_body = false;        // a 354 arrived with no accepted recipient: send "." alone
    std::optional<LmtpReplies> lmtp;  // LMTP, after the body: the per-recipient replies
  };

  void begin_transaction(Actions& out);
  void on_transaction_reply(const Reply& reply, Actions& out);
  void on_ehlo_reply(const Reply& reply, Actions& out);
  // After EHLO/HELO (or a STARTTLS the server refused): STARTTLS, AUTH, then the transaction.
  void after_hello(Actions& out);
  void on_starttls_reply(const Reply& reply, Actions& out);
  void on_auth_reply(const Reply& reply, Actions& out);
  bool before_mail() const;  // connect to AUTH: a failure here is the host's
  // What a refused greeting or EHLO/HELO/LHLO means for the recipients: SMTP as the reply says,
  // LMTP always deferred.
  DeliveryStatus before_mail_status(const Reply& reply) const;
  // Ends the transaction: unresolved recipients get `status` / `reply`.
  TransactionDone& finish(Actions& out, DeliveryStatus status, const std::string& reply,
                          bool host_failed);
  void fail_host(Actions& out, DeliveryStatus status, const std::string& reply,
                 bool policy = false);
  void abort_transaction(Actions& out);  // finished early: report, then RSET
  void send_quit(Actions& out);
  bool any_accepted() const;
  // AUTH with the best mechanism the server offers (SCRAM-SHA-256 when allow_scram, PLAIN,
  // LOGIN); false when it offers none of them.
  bool start_auth(Actions& out, bool allow_scram);
  std::string mail_command() const;
  std::string rcpt_command(std::size_t rcpt) const;

  // LMTP: the replies so far become results; the ones still missing get `why`.
  void settle_lmtp(const std::string& why);

  std::string helo_name_;
  ClientTimeouts timeouts_;
  Protocol protocol_;
  ClientSecurity security_;
  bool tls_active_ = false;
  bool starttls_tried_ = false;  // once per connection, whatever came of it
  bool greeted_ = false;
  bool authenticated_ = false;
  bool auth_login_ = false;                   // AUTH LOGIN: the next 334 asks for the password
  std::unique_ptr<auth::ScramClient> scram_;  // AUTH SCRAM-SHA-256 in progress
  bool scram_answered_ = false;               // client-final sent
  bool scram_refused_ = false;
  bool scram_verified_ = false;  // the server's signature was right
  std::string auth_error_;       // why we cancelled the exchange ("*")
  State state_ = State::Connecting;
  Capabilities caps_;
  std::optional<Pending> transaction_;
  std::string decisive_reply_;
};

const char* to_string(ClientSession::State state);
DeliveryStatus status_of(const Reply& reply);

}  // namespace estafette::smtp
