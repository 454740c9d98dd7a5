// command.h: parser for one RFC 5321 command line (the line without its CRLF).
// Pure function, any thread. parse_command() never fails hard: an unrecognised verb yields
// Verb::Unknown, a recognised verb with bad arguments yields a Command whose `error` holds the
// complete reply line to send (without CRLF), e.g. "501 5.5.4 Syntax: MAIL FROM:<address>".
// AUTH takes a mechanism name and at most an initial response ("AUTH PLAIN dGVzdA=="); its
// argument is kept whole for the session to split (auth_argument()).
// A HELO/EHLO argument with a control character (NUL, CR, TAB, DEL, ...) or longer than
// kMaxHeloArgument is a syntax error (501 5.5.2).
// Semantic checks (sequence, relay control, which ESMTP parameters are supported) belong to
// the session, not to this parser.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace estafette::smtp {

enum class Verb {
  Helo,
  Ehlo,
  Mail,
  Rcpt,
  Data,
  Rset,
  Noop,
  Quit,
  Vrfy,
  Help,
  Starttls,
  Auth,
  Unknown
};

// Maximum length of a reverse-path or forward-path including the angle brackets (RFC 5321
// 4.5.3.1.3).
inline constexpr std::size_t kMaxPath = 256;
// Longest HELO/EHLO argument accepted (a domain name, RFC 5321 4.5.3.1.2; longer: 501). It goes
// into our Received: header, which must stay bounded.
inline constexpr std::size_t kMaxHeloArgument = 255;

using EsmtpParams = std::vector<std::pair<std::string, std::string>>;

struct Command {
  Verb verb = Verb::Unknown;
  std::string argument;       // everything after the verb, surrounding spaces removed
  std::string address;        // MAIL/RCPT: the path without <>, source route dropped; "" = <>
  bool source_route = false;  // MAIL/RCPT: the path had a source route ("<@a,@b:user@c>")
  EsmtpParams params;         // MAIL/RCPT: (KEYWORD upper-cased, value) in order; value "" if none
  std::string error;          // non-empty: a syntax error; the reply line to send, without CRLF
                              // (address and params are then empty)

  bool ok() const { return error.empty(); }
};

Command parse_command(std::string_view line);

// AUTH's argument split into the mechanism name and the initial response (nullopt: none).
struct AuthArgument {
  std::string_view mechanism;
  std::optional<std::string_view> initial_response;
};
AuthArgument auth_argument(std::string_view argument);

// "MAIL", "RCPT", ...; "UNKNOWN" for Verb::Unknown.
std::string_view verb_name(Verb verb);

}  // namespace estafette::smtp
