// esmtp_connection.h: one outbound SMTP connection of estafette-esmtpclient: a non-blocking TCP
// socket on the event loop carrying out the actions of an smtp::ClientSession (bytes out,
// replies in through smtp::ReplyParser, the message body with sendfile()). It never blocks: a
// slow peer only makes it wait for EPOLLOUT. One timer follows ClientSession::timeout(); while
// the body is being written it restarts on every write progress (the data-block timeout).
// TLS (RFC 3207 STARTTLS when the session asks for it, or implicit TLS from the first byte) runs
// through a lib/tls client Stream on the same loop; then bytes and the body go through it (the
// body read from the queue file in blocks instead of sendfile()). After the 220 to STARTTLS
// nothing the server sent in plaintext is kept: bytes after it are a response injection and
// close the connection. Whether the certificate is good enough is TlsSetup's rule, which the
// Connection applies after the handshake (the session then defers with 4.7.5).
// Loop thread only. The owner (ConnectionOwner) owns the Connection and is told about finished
// transactions, idleness (the connection may be reused) and the close; it must not destroy the
// Connection from inside one of those calls (defer it to the loop). Failures (connect errors,
// resets, malformed replies, timeouts, failed handshakes) become smtp results; nothing is thrown
// after connect().
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "lib/base/fd.h"
#include "lib/event/loop.h"
#include "lib/metrics/shm_file.h"
#include "lib/smtp/client_session.h"
#include "lib/smtp/reply_parser.h"
#include "lib/tls/stream.h"

namespace estafette::esmtpclient {

class Connection;

class ConnectionOwner {
 public:
  virtual void on_transaction_done(Connection& conn, const smtp::TransactionDone& done) = 0;
  virtual void on_ready(Connection& conn) = 0;   // idle: may start another transaction
  virtual void on_closed(Connection& conn) = 0;  // the socket is closed; destroy later

 protected:
  ~ConnectionOwner() = default;
};

// The wire-form body of a message: bytes [offset, offset + size) of an open queue file.
struct MessageBody {
  base::UniqueFd fd;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

// How a connection does TLS. No context: never (the session must not ask for it).
struct TlsSetup {
  std::shared_ptr<tls::ClientContext> context;
  tls::ClientOptions options;          // SNI, the names to verify, the session cache key
  bool require_verified = false;       // verify/secure: an unverified certificate is refused
  bool require_dane = false;           // options.tlsa set: only a DANE match is accepted
  bool opportunistic = false;          // `may`: a failed handshake is retried in plaintext
  std::string policy;                  // the level's name, for the log ("may", "verify", ...)
  metrics::Writer* metrics = nullptr;  // handshakes counted there (null: not counted)
};

class Connection final {
 public:
  Connection(event::Loop& loop, ConnectionOwner& owner, std::uint64_t id, std::string key,
             std::string helo_name, smtp::ClientTimeouts timeouts,
             smtp::ClientSecurity security = {}, TlsSetup tls = {},
             smtp::Protocol protocol = smtp::Protocol::Smtp);
  ~Connection();  // closes the socket without telling the owner
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts the non-blocking connect; `remote` names the peer in logs ("mx.example[1.2.3.4]:25").
  // An AF_UNIX address (an LMTP socket) works the same way.
  // A failure is reported later, from the loop, as a failed transaction.
  void connect(const sockaddr* addr, socklen_t len, std::string remote);
  // Starts a transaction: right after connect(), or when idle (a reused connection).
  void start(smtp::Transaction transaction, MessageBody body);
  // QUIT when idle; otherwise close at once.
  void quit();

  std::uint64_t id() const { return id_; }
  const std::string& key() const { return key_; }  // pool key (the Deliver's destination)
  const std::string& remote() const { return remote_; }
  bool idle() const { return !closed_ && session_.idle(); }
  bool closed() const { return closed_; }
  // The TLS handshake failed (not a certificate the policy refused): under `may` the caller
  // retries in plaintext.
  bool tls_failed() const { return tls_failed_; }
  // Implicit TLS whose certificate the policy refused (with STARTTLS the session reports it).
  bool policy_refused() const { return policy_refused_; }
  bool opportunistic() const { return tls_setup_.opportunistic; }
  // For TLS reports: whether this connection meant to do TLS (it has a context), the server
  // answered EHLO/HELO, a handshake was started, and what a successful one agreed on.
  bool tls_wanted() const { return tls_setup_.context != nullptr; }
  bool scram_refused() const { return session_.scram_refused(); }
  bool greeted() const { return session_.greeted(); }
  bool tls_attempted() const { return tls_ != nullptr; }
  const std::optional<tls::SessionInfo>& tls_session() const { return tls_session_; }
  const std::string& tls_error() const { return tls_error_; }  // the failed handshake's reason
  const std::string& local_ip() const { return local_ip_; }    // once connected, else ""
  // For the delivery log: "tls=TLSv1.3/TLS_AES_256_GCM_SHA384 cert=verified policy=verify",
  // "tls=none policy=may", with why a certificate did not verify.
  std::string tls_summary() const;
  // When the current transaction's MAIL went out (after the greeting, EHLO, STARTTLS and AUTH
  // of a new connection; at start() on a reused one); nullopt while it has not: for the
  // delays= split of courierd's log.
  std::optional<event::Clock::time_point> transaction_started() const { return txn_started_; }

 private:
  void on_events(std::uint32_t events);
  void on_connect_result();
  void start_tls();
  void step_handshake();
  // One read or write on the socket or through TLS: bytes moved, or why none were.
  enum class Io { Done, Again, Eof, Error };
  struct IoResult {
    Io io;
    std::size_t bytes = 0;
    std::string error = {};
  };
  IoResult receive(char* buffer, std::size_t size);
  IoResult from_tls(tls::Stream::Result result, bool reading);
  IoResult send_some(const char* data, std::size_t size);
  void read_replies();
  void dispatch(smtp::Actions actions);
  void flush();
  void fail(const std::string& reason);
  void do_close();
  void log_close(const std::string& reason);
  void arm_timer();
  void update_interest();

  event::Loop& loop_;
  ConnectionOwner& owner_;
  std::uint64_t id_;
  std::string key_;
  std::string remote_;
  smtp::ClientSession session_;
  smtp::ReplyParser parser_;
  TlsSetup tls_setup_;
  base::UniqueFd fd_;
  std::unique_ptr<tls::Stream> tls_;  // after fd_: destroyed before the socket closes
  bool handshaking_ = false;
  bool tls_wants_write_ = false;  // the last TLS call needs the socket writable
  bool tls_failed_ = false;
  bool policy_refused_ = false;
  std::string tls_info_;  // "TLSv1.3/TLS_AES_... cert=verified", once the handshake is done
  std::optional<tls::SessionInfo> tls_session_;
  std::string tls_error_;
  std::string local_ip_;
  bool connecting_ = false;
  bool closed_ = false;
  bool want_write_ = false;
  event::TimerId timer_ = 0;
  std::string out_;
  std::size_t out_start_ = 0;
  MessageBody body_;
  bool body_active_ = false;    // SendBody in progress
  std::uint64_t body_pos_ = 0;  // next file offset to send
  bool trailer_queued_ = false;
  int transactions_ = 0;
  std::string close_reason_;
  event::Clock::time_point opened_;
  std::optional<event::Clock::time_point> txn_started_;
  event::CallbackGuard guard_;  // the posted report of a failed connect() dies with us
};

}  // namespace estafette::esmtpclient
