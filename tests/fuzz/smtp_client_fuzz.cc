// smtp_client_fuzz.cc: libFuzzer harness for esmtpclient's side of a conversation with a hostile
// server: lib/smtp/reply_parser.h parses the server's bytes and lib/smtp/client_session.h acts
// on the replies, as esmtpclient/esmtp_connection.cc drives them, without sockets. The input
// is the server's byte stream; a NUL byte followed by a letter is an event of the I/O layer
// instead ('T' timeout, 'C' connection closed, 'S' a new transaction when idle, 'Q' quit).
// Checks: the parser gives the same replies and errors fed in chunks or byte by byte; every reply
// has a three-digit code and is within kMaxReplySize; every command the session sends is CRLF
// terminated with no other CR or LF; every started transaction ends exactly once with one
// result per recipient; nothing is sent after Close; abort()s on any violation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lib/smtp/client_session.h"
#include "lib/smtp/reply_parser.h"

namespace {

using namespace estafette::smtp;

void check(bool ok) {
  if (!ok) std::abort();
}

Transaction transaction(std::size_t n) {
  Transaction t;
  t.sender = n % 2 ? "" : "alice@example.org";
  for (std::size_t i = 0; i <= n % 4; ++i)
    t.recipients.push_back("rcpt" + std::to_string(i) + "@example.net");
  t.size = 1000 * n;
  t.ret = "HDRS";
  t.envid = "id+2B" + std::to_string(n);
  t.notify = {"SUCCESS,FAILURE"};
  t.orcpt = {"rfc822;first@example.net"};
  return t;
}

class Driver final {
 public:
  Driver() : session_("client.example", ClientTimeouts{}) {}
  ~Driver() {
    dispatch(session_.on_closed("end of input"));
    check(session_.state() == ClientSession::State::Closed && !session_.in_transaction());
    check(done_ == started_.size());
  }

  void start() {
    if (closed_ || !(session_.idle() || session_.state() == ClientSession::State::Connecting) ||
        session_.in_transaction())
      return;
    Transaction t = transaction(started_.size());
    started_.push_back(t.recipients.size());
    dispatch(session_.start(std::move(t)));
  }
  void connected() { dispatch(session_.on_connected()); }
  void event(char what) {
    if (what == 'T') dispatch(session_.on_timeout());
    if (what == 'C') dispatch(session_.on_closed("connection reset"));
    if (what == 'S') start();
    if (what == 'Q') dispatch(session_.quit());
  }
  void bytes(std::string_view in, std::size_t chunk) {
    for (std::size_t i = 0; i < in.size() && !closed_; i += chunk) {
      parser_.feed(in.substr(i, chunk));
      for (char c : in.substr(i, chunk)) bytewise_.feed(std::string_view(&c, 1));
      while (auto reply = parser_.next()) {
        auto same = bytewise_.next();
        check(same && *same == *reply);
        check(reply->code >= 0 && reply->code <= 999 && !reply->lines.empty());
        std::size_t text = 0;
        for (const auto& line : reply->lines) text += line.size();
        check(text <= kMaxReplySize);
        dispatch(session_.on_reply(*reply));
        if (closed_) return;
      }
      check(!bytewise_.next());
      check(bytewise_.error() == parser_.error());
      if (parser_.error() != ReplyParser::Error::None) {
        dispatch(session_.on_closed("bad reply: " + parser_.error_text()));
        return;
      }
    }
  }

 private:
  void dispatch(const Actions& actions) {
    for (const Action& a : actions) {
      check(!closed_);
      if (auto* send = std::get_if<SendBytes>(&a)) {
        const std::string& b = send->bytes;
        check(b.size() >= 2 && b.compare(b.size() - 2, 2, "\r\n") == 0);
        check(lines_ok(b));
      } else if (std::holds_alternative<SendBody>(a)) {
        body_pending_ = true;
      } else if (auto* done = std::get_if<TransactionDone>(&a)) {
        check(done_ < started_.size());
        check(done->results.size() == started_[done_]);
        ++done_;
      } else if (std::holds_alternative<Ready>(a)) {
        check(session_.idle());
      } else if (std::holds_alternative<Close>(a)) {
        closed_ = true;
      }
    }
    if (body_pending_ && !closed_) {
      body_pending_ = false;
      dispatch(session_.on_body_sent());
    }
  }
  // A pipelined group: each command CRLF terminated, no bare CR or LF.
  static bool lines_ok(const std::string& b) {
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (b[i] == '\r' && (i + 1 >= b.size() || b[i + 1] != '\n')) return false;
      if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r')) return false;
    }
    return true;
  }

  ClientSession session_;
  ReplyParser parser_;
  ReplyParser bytewise_;              // the same bytes fed one at a time
  std::vector<std::size_t> started_;  // recipients of each started transaction
  std::size_t done_ = 0;
  bool closed_ = false;
  bool body_pending_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t chunk = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Driver driver;
  driver.start();
  driver.connected();
  while (!input.empty()) {
    std::size_t nul = input.find('\0');
    driver.bytes(input.substr(0, nul), chunk);
    if (nul == std::string_view::npos || nul + 1 >= input.size()) break;
    driver.event(input[nul + 1]);
    input.remove_prefix(nul + 2);
  }
  return 0;
}
