// source.h: estafette-bench source: an SMTP load generator on one epoll loop (lib/event).
// Closed loop (the default): `concurrency` sessions at once until `messages` were tried,
// `per_session` per connection. Open loop (`rate` > 0): message i (from 0) is due offer_time(i)
// after the start and gets a session of its own then, from a loop timer; when `concurrency`
// sessions are busy (or, with --tls-resume, the first one still goes alone) it starts as soon
// as one ends, and counts as late.
// Each message has a unique Message-ID; PIPELINING (MAIL, RCPT, DATA in one write) when the
// server offers it and it is on; STARTTLS with lib/tls's client, resuming the newest session
// with --tls-resume. Replies are parsed by lib/smtp's ReplyParser.
// One per process, on the thread that calls run(). Errors: the constructor throws
// (std::runtime_error: the target does not resolve; tls::Error); a session that breaks counts
// its untried messages as failed and the run goes on.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include <sys/socket.h>

#include "bench/kit/options.h"
#include "bench/kit/timing.h"
#include "lib/event/loop.h"
#include "lib/tls/stream.h"

namespace estafette::bench {

// The message text (headers and body, CRLF lines, dot-stuffing not needed) of exactly `size`
// bytes (at least the headers' length) without the final ".", with a fixed-width id that
// set_message_id() overwrites in place.
class MessageTemplate final {
 public:
  MessageTemplate(std::size_t size, const std::string& from, const std::string& to,
                  const std::string& id_suffix);
  // The text with id `n` (n < 10^16) written into the Message-ID; followed by ".\r\n".
  const std::string& with_id(std::uint64_t n);
  // The Message-ID ("<...>") as last written by with_id().
  std::string_view message_id() const {
    return std::string_view(text_).substr(id_at_ - 1, id_end_ - id_at_ + 2);
  }

 private:
  std::string text_;
  std::size_t id_at_ = 0;
  std::size_t id_end_ = 0;  // of the closing '>'
};

// When message i (from 0) of an open-loop run at `rate` messages per second (> 0) is due: i /
// rate seconds after the start, to the nearest nanosecond, at most about 95 years. Pure.
std::chrono::nanoseconds offer_time(std::uint64_t i, double rate);

class Source final {
 public:
  struct Counts {
    std::uint64_t sent = 0;    // answered 250 after the data
    std::uint64_t failed = 0;  // refused, or lost with a broken session
    std::uint64_t sessions = 0;
    std::uint64_t handshakes = 0;
    std::uint64_t resumed = 0;
    std::uint64_t late = 0;  // open loop: messages that could not start when they were due
    double elapsed_s = 0;
    std::string first_error;
  };

  explicit Source(const SourceOptions& options);
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  void run();
  const Counts& counts() const { return counts_; }
  // "source: msgs_per_s=N sent=N failed=N handshakes=N resumed=N elapsed_s=S sessions=N
  //  handshakes_per_s=N rate=R late=N" (rate=0: closed loop)
  std::string summary() const;

 private:
  class Session;
  void start_sessions();
  void offer_due();  // open loop: makes what is due startable, then arms the timer for the next
  void release_first_session();
  void finished(int fd);
  void error(const std::string& what);

  SourceOptions options_;
  event::Loop loop_;
  sockaddr_storage target_{};
  socklen_t target_len_ = 0;
  std::shared_ptr<tls::ClientContext> tls_;
  std::string destination_;  // the session cache's key: the target
  MessageTemplate message_;
  std::uint64_t unassigned_;   // messages no session has taken yet
  std::uint64_t due_;          // of those, the ones that may start now (closed loop: all)
  std::uint64_t offered_ = 0;  // open loop: messages made due so far
  event::Clock::time_point start_;
  event::TimerId offer_timer_ = 0;  // 0: none armed
  std::uint64_t next_id_ = 0;
  std::uint64_t next_rcpt_ = 0;  // the last message number given to --to's {n}
  bool first_tls_done_ = false;  // with --tls-resume, the first session goes alone
  Counts counts_;
  std::uint64_t data_sent_ = 0;  // messages whose data was written (for the stats file)
  std::unique_ptr<TimeRecorder> sends_;
  std::unique_ptr<StatsFile> stats_;  // after counts_: it reads them
  std::unordered_map<int, std::unique_ptr<Session>> sessions_;
};

}  // namespace estafette::bench
