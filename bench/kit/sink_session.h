// sink_session.h: the SMTP server side of estafette-bench's sink, as a pure conversation: bytes
// in, replies out, no I/O, no clock. It accepts any sender and recipient, answers EHLO with
// PIPELINING, 8BITMIME, SIZE and (when offered) STARTTLS, finds each message's end ("." alone on
// a line), and answers it 250 or with the configured failure reply. Input may be split at any
// byte; pipelined commands are answered in order into one output buffer.
// One per connection, on the sink's loop thread. Errors: none thrown; an over-long command line
// gets 500 and is dropped; the conversation goes on.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace estafette::bench {

class SinkSession final {
 public:
  struct Options {
    bool offer_starttls = false;
    std::string fail_reply;    // "" -> 250 at the end of DATA
    bool capture_ids = false;  // pass each message's Message-ID to on_message
  };
  // accepted: answered 250; bytes: of the message as sent (dot-stuffing kept, final "." not).
  using OnMessage = std::function<void(bool accepted, std::size_t bytes, std::string_view id)>;
  enum class Action { None, StartTls, Close };

  SinkSession(const Options& options, OnMessage on_message);
  SinkSession(const SinkSession&) = delete;
  SinkSession& operator=(const SinkSession&) = delete;

  static std::string_view greeting() { return "220 sink.bench.estafette.test ESMTP\r\n"; }
  // Consumes `bytes`, appending replies to `out`. StartTls: "220" is in `out`; the caller sends
  // it, handshakes and calls tls_started(); bytes after STARTTLS are dropped (RFC 3207: a client
  // may not pipeline past it). Close: after QUIT; send `out` and close.
  Action feed(std::string_view bytes, std::string& out);
  void tls_started();
  bool in_tls() const { return tls_; }

 private:
  Action command(std::string_view line, std::string& out);
  void end_message(std::string& out);

  const Options options_;
  OnMessage on_message_;
  bool tls_ = false;
  bool in_data_ = false;
  bool have_rcpt_ = false;
  std::string line_;        // command mode: the incomplete line; data mode: a partial "."
  bool line_start_ = true;  // data mode: the next byte starts a line
  bool in_headers_ = true;  // data mode: before the first empty line
  std::size_t message_bytes_ = 0;
  std::string headers_;  // captured header bytes (capture_ids only)
};

// The value of the first Message-ID header in `headers` (unfolded, trimmed), "" when none.
std::string message_id_of(std::string_view headers);

}  // namespace estafette::bench
