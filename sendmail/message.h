// message.h: how estafette-sendmail turns what it reads on stdin into an SMTP submission: where
// the message ends (a "." line unless -i), its header (RFC 5322 fields, folded lines), the
// recipients of -t (To:, Cc:, Bcc:; Bcc: is then removed), the From:/Date:/Message-ID: fields
// added when missing, and the wire form for DATA (CRLF line ends, dot-stuffed). Line ends may be
// LF, CRLF or a bare CR (each one ends a line).
// Pure code, no I/O, any thread; nothing throws: problems are returned as text.
#pragma once

#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::sendmail {

// Collects stdin. Unless ignore_dots, a line that is exactly "." (LF or CRLF) ends the message
// (the line itself is not part of it); feed() then returns true and the rest must not be read.
// Accepts the input split at any byte.
class MessageInput final {
 public:
  explicit MessageInput(bool ignore_dots) : ignore_dots_(ignore_dots) {}
  bool feed(std::string_view bytes);
  // End of input: a final "." without a line end also ends the message.
  void finish();
  bool done() const { return done_; }
  const std::string& text() const { return text_; }

 private:
  bool ignore_dots_;
  bool done_ = false;
  std::string text_;
  std::size_t line_start_ = 0;  // where the current (incomplete) line starts in text_
};

// The lines of a text: LF, CRLF and a bare CR each end a line; the line ends are not included.
// A last line without a line end is included when it is not empty.
std::vector<std::string_view> split_lines(std::string_view text);

// The addresses of an RFC 5322 address list ("A <a@x>, b@y (c), grp: c@z, d@z;"): angle
// addresses, bare addresses, members of groups; display names, comments and source routes
// dropped, white space outside quoted strings removed. Empty results are skipped.
std::vector<std::string> parse_address_list(std::string_view value);

// "Tue, 14 Nov 2023 22:13:20 +0100" for time t at UTC offset gmtoff (seconds east of UTC).
std::string format_date(std::time_t t, long gmtoff);

struct ComposeInput {
  std::string_view text;                // the message as read (MessageInput::text)
  bool extract_recipients = false;      // -t
  std::vector<std::string> recipients;  // from the command line
  std::string from_address;             // for the From: we add when there is none
  std::string full_name;                // -F, for that From:
  std::string date;                     // for the Date: we add (format_date)
  std::string message_id;               // for the Message-ID: we add, "<...>"
  std::string qualify_domain;           // appended ("@" + domain) to addresses without "@"
};

struct Composed {
  std::string error;                    // not empty: nothing to send (why)
  std::vector<std::string> recipients;  // command line + -t, in order, duplicates dropped
  std::string wire;                     // for DATA: CRLF, dot-stuffed, without the final "."
  bool eight_bit = false;               // a byte >= 0x80 somewhere (BODY=8BITMIME)
};

Composed compose(const ComposeInput& in);

}  // namespace estafette::sendmail
