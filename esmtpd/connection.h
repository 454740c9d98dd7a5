// connection.h: the I/O side of one SMTP server session. It reads bytes, splits them with the
// pure readers of lib/smtp, feeds the session state machine and carries out its actions: replies,
// opening a queue file at DATA, streaming the body into it, and the durable commit (the 250 is
// sent only when the Committer reports the message on disk). Nothing here blocks: an RCPT whose
// check needs passwd or the file system waits for RecipientLookups (and the commands pipelined
// after it wait in order), and the record's recipients are expanded without that check.
// Loop thread. Owned by the Server; it asks the Server to destroy it through on_finished, which
// runs outside of any of its own callbacks.
// A hostile client costs bounded memory and time: commands are read and run only while fewer than
// kMaxPendingOutput bytes of replies wait to be sent (the rest of a pipelined flood stays in the
// kernel); `timeout` bounds both idleness and a send that makes no progress (then the connection
// closes without a 421, which could not be sent either); `session_deadline` bounds the session
// (421, then at most `timeout` to read it); bytes before a held greeting are answered 554.
// TLS (lib/tls): after STARTTLS (the session's StartTls action), or from the first byte on a
// submissions listener, the same buffers and bounds carry decrypted bytes through a tls::Stream;
// every byte received after the STARTTLS line and before the handshake is thrown away
// (CVE-2011-0411), the handshake runs on the loop under `tls_handshake_timeout` (no idle
// timer meanwhile) and a failed one ends this connection only. Plain connections pay one test
// per read and write.
// AUTH: the session's VerifyAuth goes to the auth backend (ConnectionContext::auth); pipelined
// input waits meanwhile. Each success and failure is logged with the user and the client, never
// the password; each failure also counts towards the client's auth_fail_limit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "esmtpd/admission.h"
#include "esmtpd/message_memory.h"
#include "esmtpd/recipient_lookups.h"
#include "esmtpd/session_table.h"
#include "filters/chain.h"
#include "filters/filter_set.h"
#include "filters/message_edit.h"
#include "filters/types.h"
#include "lib/auth/backend.h"
#include "lib/base/fd.h"
#include "lib/checks/checks.h"
#include "lib/config/config.h"
#include "lib/dns/resolver.h"
#include "lib/event/loop.h"
#include "lib/metrics/shm_file.h"
#include "lib/queue/queue.h"
#include "lib/routing/router.h"
#include "lib/smtp/dotstuff.h"
#include "lib/smtp/hop_count.h"
#include "lib/smtp/reader.h"
#include "lib/smtp/server_session.h"
#include "lib/tls/stream.h"

namespace estafette::esmtpd {

// Connection-check figures of one esmtpd process, for its periodic log line.
struct CheckCounters {
  std::uint64_t checked = 0;
  std::uint64_t rdns_confirmed = 0, rdns_unconfirmed = 0, rdns_noptr = 0, rdns_tempfail = 0;
  std::uint64_t dnsbl_listed = 0, dnsbl_blocked = 0, dnsbl_tempfail = 0;
  std::uint64_t ident_ok = 0, ident_failed = 0;
  std::uint64_t refused_access = 0, refused_limits = 0;
  std::string summary() const;
};

// What every connection of one server shares; owned by the Server.
struct ConnectionContext {
  event::Loop& loop;
  const smtp::ServerPolicy& policy;
  queue::Backend& backend;
  queue::Committer& committer;
  std::function<void(const std::string& queue_id)> on_queued;  // tell courierd
  std::chrono::seconds timeout;  // idle, and no progress sending replies
  std::size_t max_line;
  dns::Resolver& resolver;
  std::chrono::milliseconds greet_wait;
  config::DnsblAction dnsbl_action;
  int dnsbl_threshold;
  CheckCounters& counters;
  const filters::FilterSet& filters;
  // The server's current routing (reloads swap it): the record's recipients are the expansion
  // of the RCPT addresses.
  const std::shared_ptr<const routing::Router>& router;
  std::chrono::seconds session_deadline;  // a whole session, at most
  std::chrono::milliseconds greet_pause;  // the greeting never sooner (pregreet detection)
  // The process's budget for messages held in memory (filtered ones), and the header limits
  // every message is read with.
  MessageMemory& memory;
  smtp::HeaderLimits header_limits;
  // The RCPT checks that may block (passwd, stat), off the loop.
  RecipientLookups& recipient_lookups;
  // The server's current TLS context (null: no certificate; reloads swap it), and how long a
  // handshake may take.
  const std::shared_ptr<const tls::ServerContext>& tls;
  std::chrono::seconds tls_handshake_timeout;
  // SMTP AUTH: where credentials are checked (null: no AUTH), and the failure count they feed
  // (auth_fail_limit, kept by the Admission across processes).
  auth::Backend* auth;
  Admission& admission;
  metrics::Writer& metrics;  // this process's counters (lib/metrics)
};

// This connection's checks, decided by the Admission.
struct ConnectionChecksSetup {
  const checks::Settings* settings = nullptr;  // nullptr: none
  checks::Endpoints endpoints;
  SessionTable::Slot slot;
};

// A command line as the log shows it: the verb, and the argument only for MAIL, RCPT, HELO,
// EHLO, VRFY and EXPN (printable, at most 256 bytes) and the mechanism for AUTH (its initial
// response is a secret); "?" for what is no verb.
std::string command_for_log(std::string_view line);

// A session's id in the log (session=): "PID.N", N counting this process's sessions from 1, so
// ids are unique across the esmtpd processes running at once (and across a restart, as long as
// the kernel does not hand the same pid back).
std::string session_id(long pid, std::uint64_t number);

class Connection final {
 public:
  // Replies waiting to be sent beyond which no more input is read or run.
  static constexpr std::size_t kMaxPendingOutput = 64 * 1024;

  Connection(ConnectionContext& context, base::UniqueFd fd, smtp::ClientInfo client,
             std::uint64_t number, std::function<void(std::uint64_t)> on_finished,
             ConnectionChecksSetup checks = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  // Sends a reply and closes (over the session limit, shutting down); on a submissions
  // listener after the TLS handshake.
  void reject(const std::string& reply);

 private:
  void on_events(std::uint32_t events);
  void read_input(std::uint32_t events);
  void process_input();
  void run(smtp::Actions actions);
  void log_refusal(std::string_view reply);  // a 4xx/5xx reply: the "reject" log line
  void greet();
  void on_checks_done();
  void lookup_sender(const std::string& domain);
  void lookup_recipient(const std::string& address);
  void resume();  // after an answer the session waited for: pipelined input, then interest
  void filter_connect();
  void filter_action(const smtp::Action& action);
  void log_filter_verdict(const filters::Verdict& v, const char* phase);
  void filter_answer(const filters::Verdict& verdict, const char* phase);
  void filter_whole_message();
  filters::Macros message_macros() const;
  void drop_buffer();  // the buffered message is refused or done: its memory goes back
  filters::Macros connect_macros() const;
  void begin_data();
  void commit();
  // The queue envelope of this session's message from `sender` and `recipients` (the session's,
  // or the filters' changes of them): aliases expanded, each recipient with its DSN.
  queue::Envelope queue_envelope(const std::string& sender,
                                 const std::vector<std::string>& recipients) const;
  // Starts the queue record in message_; false (append_failed_, queue_error_ set) if it cannot.
  bool create_record(queue::Envelope envelope);
  void send(const std::string& text);
  void flush();
  // recv/send through TLS when it is on; the same results (EAGAIN when TLS wants the socket).
  ssize_t receive(char* buffer, std::size_t size);
  ssize_t transmit(const char* data, std::size_t size);
  // A TLS read's or write's outcome as recv()/send() report theirs (bytes, 0 at the end of
  // input, -1 with errno EAGAIN, or ECONNRESET/EPIPE after logging why).
  ssize_t as_socket_result(const tls::Stream::Result& r, bool reading);
  // After the 220 to STARTTLS: drop what the client sent behind it, handshake once it is sent.
  void prepare_tls();
  void start_handshake();
  void continue_handshake();
  void handshake_done();
  filters::Macros tls_macros() const;
  filters::Macros auth_macros() const;        // {auth_type}, {auth_authen} once authenticated
  auth::ClientInfo auth_client_info() const;  // who is authenticating, for the backend
  void verify_auth(const std::string& mechanism);
  void lookup_scram(const std::string& user);
  // Logs the verdict (never a secret), counts a refusal for the brute-force limit, answers it.
  void auth_verdict(const std::string& mechanism, const std::string& name, auth::Verdict verdict,
                    const std::string& user);
  void update_interest();
  void arm_timer();
  void on_idle_timer();
  void on_deadline();
  void on_pregreet();
  // After a refused DATA: input the client sent before it saw the refusal is not commands.
  void check_early_input();
  bool output_backlog() const { return out_.size() - out_start_ > kMaxPendingOutput; }
  // A filter phase or the queue commit has the session: its commands wait.
  bool held() const { return awaiting_commit_ || session_.waiting(); }
  void finish(const char* why);

  ConnectionContext& ctx_;
  base::UniqueFd fd_;
  std::unique_ptr<tls::Stream> tls_;  // set from the handshake on; before fd_ is closed
  filters::Macros cert_macros_;       // {verify}, {cert_*}: from the handshake on
  bool implicit_tls_ = false;         // submissions: the handshake comes before the greeting
  std::string tls_refusal_;           // reject() on submissions: sent once the handshake is done
  bool tls_after_flush_ = false;      // STARTTLS answered: handshake once the 220 is out
  bool handshaking_ = false;
  bool tls_read_wants_write_ = false;  // the last TLS read needs the socket writable
  bool tls_write_wants_read_ = false;  // the last TLS write needs it readable
  bool tls_read_posted_ = false;       // a read of bytes OpenSSL holds is posted
  event::TimerId handshake_timer_ = 0;
  smtp::ServerSession session_;
  std::uint64_t number_;      // this process's count, the key of the server's table
  std::string id_;            // session= in the log: session_id(pid, number_)
  std::string last_command_;  // command_for_log() of the last command line, for refusals
  std::function<void(std::uint64_t)> on_finished_;
  smtp::CommandReader commands_;
  smtp::DataReader data_;
  smtp::HopCounter hops_;  // Received: fields of the message in DATA (max_hops)
  std::unique_ptr<queue::IncomingMessage> message_;
  bool append_failed_ = false;
  int queue_error_ = 0;  // errno of a failed create/append (ENOSPC: 452 rather than 451)
  std::string in_;
  std::size_t in_start_ = 0;
  std::string out_;
  std::size_t out_start_ = 0;
  bool awaiting_commit_ = false;
  bool closing_ = false;  // Close action seen: flush, then finish
  bool finished_ = false;
  bool peer_eof_ = false;
  std::uint32_t interest_ = 0;
  // Input arrived while a filter phase or the queue commit held the session: EPOLLIN stays off
  // until the hold ends. A hold keeps EPOLLIN registered otherwise (a client that waits for its
  // reply sends nothing), which saves two epoll_ctl calls per hold.
  bool input_during_hold_ = false;
  bool processing_input_ = false;  // inside process_input(): its loop runs the next command
  event::TimerId timer_ = 0;
  std::uint64_t written_ = 0;         // reply bytes sent, ever
  std::uint64_t written_at_arm_ = 0;  // written_ when timer_ was armed: progress since?
  event::TimerId deadline_timer_ = 0;
  bool deadline_passed_ = false;
  event::Clock::time_point started_;
  std::size_t messages_ = 0;
  ConnectionChecksSetup setup_;
  std::unique_ptr<checks::ConnectionChecks> checks_;
  bool greeted_ = false;
  event::TimerId greet_timer_ = 0;
  dns::Request sender_lookup_;
  // Filters (when configured): the session's chain, calls in order one at a time.
  std::unique_ptr<filters::Chain> filters_;
  bool filter_connect_pending_ = false;
  std::optional<smtp::Action> deferred_filter_;  // waits for the connect stage
  bool filter_in_message_ = false;               // MAIL went to the filters, no eom yet
  bool buffering_ = false;                       // DATA goes to filter_buffer_, not the queue
  std::string filter_buffer_;                    // plain form (unstuffed), our Received first
  smtp::Unstuffer unstuffer_;                    // wire -> filter_buffer_, as it arrives
  MessageMemory::Reservation buffer_charge_;     // filter_buffer_ (then the parsed message)
  queue::QueueId filter_id_;
  event::CallbackGuard guard_;  // last: callbacks handed out die first
};

}  // namespace estafette::esmtpd
