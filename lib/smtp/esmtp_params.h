// esmtp_params.h: the MAIL and RCPT parameters esmtpd takes (RFC 1870 SIZE, RFC 6152 BODY,
// RFC 3461 DSN: RET, ENVID, NOTIFY, ORCPT) and RFC 3461 xtext.
// Pure functions, any thread, never throw. parse_mail_params() / parse_rcpt_params() check the
// (KEYWORD, value) list from parse_command(): on any problem `error` holds the complete reply
// line (without CRLF): bad syntax and duplicates "501 5.5.4 ...", an unknown keyword
// "555 5.5.4 Unsupported option: X". Policy (the size limit) is the session's.
// ENVID and ORCPT are kept as received (xtext), which is what a next hop gets and what the queue
// stores (xtext has no spaces or control characters); reports decode them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/smtp/command.h"

namespace estafette::smtp {

// RFC 3461 4.4 / 4.2: ENVID at most 100 characters, an ORCPT address at most 500.
inline constexpr std::size_t kMaxEnvid = 100;
inline constexpr std::size_t kMaxOrcpt = 500;

// xtext (RFC 3461 4): "+" HEX HEX for a byte, any of "!".."~" but "+" and "=" as itself.
// decode: nullopt on bad syntax (a lone "+", lower-case or non-hex digits, a forbidden byte).
std::optional<std::string> xtext_decode(std::string_view xtext);
std::string xtext_encode(std::string_view text);

// NOTIFY (RFC 3461 4.1): "NEVER", or a comma list of SUCCESS, FAILURE and DELAY (any case).
enum NotifyFlag : std::uint8_t {
  kNotifyNever = 1,
  kNotifySuccess = 2,
  kNotifyFailure = 4,
  kNotifyDelay = 8,
};
// Flags of a NOTIFY value; nullopt on bad syntax (empty, an unknown word, NEVER with another,
// a word twice).
std::optional<std::uint8_t> parse_notify(std::string_view value);
// Canonical text: "NEVER" or e.g. "SUCCESS,DELAY" (this order); "" for 0 (not given).
std::string notify_text(std::uint8_t flags);
// What a stored NOTIFY text asks for; "" (not given) means FAILURE,DELAY (RFC 3461 4.1), and so
// does an unreadable one.
std::uint8_t notify_flags(std::string_view stored);

// ORCPT (RFC 3461 4.2): addr-type ";" xtext, e.g. "rfc822;joe+2Bx@example.com".
struct Orcpt {
  std::string type;     // the addr-type as given ("rfc822")
  std::string address;  // decoded
};
std::optional<Orcpt> parse_orcpt(std::string_view value);

enum class DsnRet { Unspecified, Full, Hdrs };
std::string_view ret_text(DsnRet ret);         // "", "FULL", "HDRS"
DsnRet parse_ret_text(std::string_view text);  // inverse; anything else is Unspecified

struct MailParams {
  std::size_t size = 0;   // SIZE=, 0 when not given (saturates when too big)
  std::string body_type;  // "7BIT", "8BITMIME" or ""
  DsnRet ret = DsnRet::Unspecified;
  std::string envid;         // xtext as received, "" = none
  bool require_tls = false;  // REQUIRETLS (RFC 8689), which takes no value
  // AUTH= (RFC 4954 5): the decoded mailbox, "<>" when the client gave that; nullopt = none.
  // Only syntax is checked here; the session decides whether the client may use it.
  std::optional<std::string> auth;
  std::string error;  // non-empty: the reply to send
};
MailParams parse_mail_params(const EsmtpParams& params);

struct RcptParams {
  std::string notify;  // canonical notify_text(), "" = not given
  std::string orcpt;   // "addr-type;xtext" as received, "" = none
  std::string error;   // non-empty: the reply to send
};
RcptParams parse_rcpt_params(const EsmtpParams& params);

}  // namespace estafette::smtp
