// pickup/bounce.h: the message estafette-pickup returns to a user whose maildrop file was refused
// for good (esmtpd answered 5xx, or the file is not a maildrop file, or it is too big): from
// MAILER-DAEMON, with the reason, and the original attached (message/rfc822; only its header,
// text/rfc822-headers, when the whole would not fit; a file that did not parse is quoted as
// text, cut to a bound). Sent with the null sender, so nothing bounces back.
// Pure, any thread, nothing throws.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::pickup {

struct BounceInput {
  std::string hostname;    // ours: MAILER-DAEMON@hostname
  std::string to;          // the submitting user's address
  std::string date;        // RFC 5322 date
  std::string message_id;  // "<...>"
  std::string reason;      // why (any bytes: made printable ASCII on one line)
  std::string file_name;   // in the maildrop
  // What was in the file: a parsed entry (its wire form is attached) or nothing but `raw`.
  bool parsed = false;
  std::string sender;
  std::vector<std::string> recipients;
  std::string_view wire;            // parsed: CRLF, dot-stuffed (as it goes after DATA)
  std::string_view raw;             // not parsed: the file's first bytes
  std::size_t max_size = 10 << 20;  // the bounce's wire stays below this
};

struct Bounce {
  std::string wire;  // CRLF, dot-stuffed, without the final "."
  bool eight_bit = false;
};

Bounce compose_bounce(const BounceInput& in);

// Bytes as one line of printable ASCII: control characters and bytes >= 0x80 become "?",
// at most `max` bytes.
std::string printable(std::string_view text, std::size_t max = 1000);

// Arbitrary bytes as text for DATA: every line end (LF, CRLF, bare CR) made CRLF, lines starting
// with "." doubled, NUL made "?".
std::string to_wire(std::string_view text);

}  // namespace estafette::pickup
