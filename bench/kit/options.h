// options.h: the command line of estafette-bench (sink and source subcommands) parsed into
// plain structs. Pure: no I/O, no globals; any thread. Errors: UsageError with a one-line
// reason naming the option (unknown option, missing or malformed value); main() prints it with
// the usage text and exits 2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::bench {

class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct HostPort {
  std::string host;  // "127.0.0.1", "::1" (brackets removed), "localhost"
  std::uint16_t port = 0;
  bool operator==(const HostPort&) const = default;
};

// "127.0.0.1:25", "[::1]:25", "localhost:2525"; a port 1..65535 is required.
HostPort parse_host_port(std::string_view text);

struct SinkOptions {
  HostPort listen;
  std::string fail_reply;  // "451 4.3.0 x": the reply to every end of DATA; "": 250
  std::string record_ids;  // file to append each accepted message's Message-ID to; "": none
  std::string tls_cert;    // both or neither: STARTTLS offered when given
  std::string tls_key;
  std::uint64_t count = 0;   // exit after this many messages (accepted or failed); 0: on SIGTERM
  std::string record_times;  // file to append "EPOCH MESSAGE-ID" of each accepted message to
  std::string stats;         // file to append the cumulative counts to every stats_interval_ms
  unsigned stats_interval_ms = 250;
  bool operator==(const SinkOptions&) const = default;
};

struct SourceOptions {
  HostPort target;
  std::uint64_t messages = 0;     // total, >= 1
  std::size_t concurrency = 1;    // sessions at once, >= 1
  std::size_t size = 400;         // bytes of each message (headers included), >= 100
  std::uint64_t per_session = 1;  // messages per session, >= 1
  // Messages offered per second, open loop: message i (from 0) is due i / rate seconds after
  // the start, each in a session of its own (per_session must be 1), `concurrency` still the cap
  // on sessions at once. 0: closed loop (`concurrency` sessions always busy).
  double rate = 0;
  bool pipelining = true;  // MAIL, RCPT and DATA in one write when the server offers it
  bool starttls = false;
  bool tls_resume = false;  // implies starttls
  int tls_max = 13;         // highest TLS version offered: 12 (TLS 1.2) or 13 (TLS 1.3)
  std::string helo = "source.bench.estafette.test";
  std::string from = "tester@bench.estafette.test";
  // A recipient template: "{n}" is the message's number (from 1), "{h}" that number mod
  // `hosts`, so that a run spreads its mail over `hosts` domains (rcpt-{n}@h{h}.example.com).
  std::string to = "recip1@domain1.grey";
  std::uint64_t hosts = 1;   // >= 1
  unsigned timeout_s = 600;  // the whole run
  // Each "message" is a session without mail: EHLO, STARTTLS, EHLO, QUIT (new TLS handshakes
  // per second); implies starttls and one per session.
  bool handshake_only = false;
  // Timing for the orchestration (bench/kit/timing.h): "EPOCH MESSAGE-ID" of each message when
  // its data is sent, and the cumulative counts every stats_interval_ms.
  std::string record_sends;
  std::string stats;
  unsigned stats_interval_ms = 250;
  bool operator==(const SourceOptions&) const = default;
};

// --rate's value: messages per second, digits with an optional fraction ("50", "2.5"), above 0
// and at most 1000000; anything else (0, "-1", "1e3", "inf", ".5", "") is a UsageError naming
// `option`.
double parse_rate(std::string_view option, std::string_view text);

// args: what follows the subcommand name.
SinkOptions parse_sink_options(const std::vector<std::string>& args);
SourceOptions parse_source_options(const std::vector<std::string>& args);

// The recipient of message n (from 1) by SourceOptions::to: every "{n}" replaced with n and
// every "{h}" with n mod hosts (hosts >= 1); anything else is copied as it is.
std::string expand_recipient(std::string_view to, std::uint64_t n, std::uint64_t hosts);

// "451 4.3.0 x" -> true: three digits 2xx..5xx, then a space or the end, printable ASCII.
bool valid_reply_text(std::string_view reply);

}  // namespace estafette::bench
