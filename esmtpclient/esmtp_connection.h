// esmtp_connection.h: one outbound SMTP connection of estafette-esmtpclient: a non-blocking TCP
// socket on the event loop carrying out the actions of an smtp::ClientSession (bytes out,
// replies in through smtp::ReplyParser, the message body with sendfile()). It never blocks: a
// slow peer only makes it wait for EPOLLOUT. One timer follows ClientSession::timeout(); while
// the body is being written it restarts on every write progress (the data-block timeout).
// Loop thread only. The owner (ConnectionOwner) owns the Connection and is told about finished
// transactions, idleness (the connection may be reused) and the close; it must not destroy the
// Connection from inside one of those calls (defer it to the loop). Failures (connect errors,
// resets, malformed replies, timeouts) become smtp results; nothing is thrown after connect().
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "lib/base/fd.h"
#include "lib/event/loop.h"
#include "lib/smtp/client_session.h"
#include "lib/smtp/reply_parser.h"

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

class Connection final {
 public:
  Connection(event::Loop& loop, ConnectionOwner& owner, std::uint64_t id, std::string key,
             std::string helo_name, smtp::ClientTimeouts timeouts);
  ~Connection();  // closes the socket without telling the owner
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts the non-blocking connect; `remote` names the peer in logs ("mx.example[1.2.3.4]:25").
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

 private:
  void on_events(std::uint32_t events);
  void on_connect_result();
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
  base::UniqueFd fd_;
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
  event::CallbackGuard guard_;  // the posted report of a failed connect() dies with us
};

}  // namespace estafette::esmtpclient
