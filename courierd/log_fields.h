// log_fields.h: how courierd's log lines write values, so that every component writes them
// alike: quoted replies, seconds, and the one line per recipient per delivery attempt (Postfix's
// "to=<...>, orig_to=<...>, relay=..., delay=..., delays=a/b/c/d, dsn=..., status=..."), with the
// split of its delay and the enhanced status code it shows.
// Pure functions, any thread; no errors (values from modules and clients are bounded and made
// printable here, so a hostile reply or ORCPT cannot forge or break a log line).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "courierd/scheduler.h"
#include "lib/base/delivery_status.h"

namespace estafette::courierd {

// "text" with CR dropped, LF as a space, `"` and `\` escaped and trailing spaces cut. (Not
// named `quoted`: for a std::string argument, ADL would also find std::quoted.)
std::string log_quoted(std::string_view text);
// "1.5s"; a negative time is "0.0s".
std::string seconds_text(double seconds);

// The delays= of one attempt, in milliseconds, each >= 0, summing to the delay since arrival:
//   queue     a: arrival until courierd handed the job to the module (the arrival is in whole
//                seconds, so a carries up to 1 s of its rounding)
//   before    b: in the module before its connection: DNS, MTA-STS/DANE lookups, waiting for
//                a connection, and the trip over the IPC channel both ways (the rest of b+c+d)
//   setup     c: the module's connection set-up: connect, greeting, EHLO, STARTTLS, AUTH
//                (0 on a reused connection and for estafette-local)
//   transfer  d: MAIL to the last reply (estafette-local: the delivery itself)
struct Delays {
  std::int64_t queue = 0;
  std::int64_t before = 0;
  std::int64_t setup = 0;
  std::int64_t transfer = 0;
  std::int64_t total() const { return queue + before + setup + transfer; }
};
// c and d are the module's claims: each is cut to what courierd's own clock saw between the
// hand-off and the result (setup first, then transfer), and b is what is left.
Delays split_delays(std::int64_t arrival, Time dispatched, Time now, std::uint64_t setup_ms,
                    std::uint64_t transfer_ms);
// No module: queue is all of it (expiry, cancel, delete).
Delays queue_delays(std::int64_t arrival, Time now);
// "0.52" (seconds, two decimals).
std::string delay_seconds(std::int64_t ms);
// "0.01/0.00/0.31/0.20".
std::string delays_text(const Delays& d);

// The enhanced status code (RFC 3463) of a reply ("250 2.1.5 ok" -> "2.1.5"), when it has one
// whose class agrees with status; else the class's default ("2.0.0", "4.0.0", "5.0.0").
std::string dsn_code(std::string_view reply, base::DeliveryStatus status);

// The original recipient to show for rcpt: the address of an rfc822 ORCPT ("addr-type;xtext"
// as queued: the client's, or the address an alias expanded), or "" when there is none or it is
// rcpt itself (case aside).
std::string orig_to_of(std::string_view rcpt, std::string_view orcpt);

// An address or relay for a log field: control characters as '?', at most 512 bytes.
std::string log_text(std::string_view text);

// One recipient's line for one delivery attempt. status: sent, deferred, bounced, expired,
// deleted. extra: " key=value..." fields before status= (retry_in=, held=yes, host_failed=yes).
struct AttemptLine {
  std::string_view id;
  std::string_view rcpt;
  std::string_view orig_to;  // "" = none
  std::string_view relay;
  Delays delays;
  std::string_view dsn;
  std::string_view status;
  std::string extra;
  std::string_view reply;
};
// "id=ID to=<rcpt> [orig_to=<orig>] relay=R delay=T delays=a/b/c/d dsn=X.Y.Z[extra]
// status=S (reply)"; the reply on one line, at most 1000 bytes.
std::string attempt_line(const AttemptLine& line);

}  // namespace estafette::courierd
