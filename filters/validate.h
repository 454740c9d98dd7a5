// validate.h: what a filter hands back is checked before any of it is used. A milter is another
// program (possibly another host), and what it sends ends up in SMTP replies, in the message
// and in queue records: a header name with ':' or CR/LF, a value whose line ends are not folding
// (a new header or the end of the header), an address with a line end (a new queue record), a
// multi-line reply whose later lines carry another code, or an unbounded number of changes.
// filters::Chain (filters/chain.h) runs these on every filter's verdict and modifications; one
// that fails is that filter's failure (its default action, and a log line naming it).
// Pure; any thread. Each check answers "" when all is well, else the reason (for the log).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "filters/types.h"

namespace estafette::filters {

struct ModificationLimits {
  std::size_t max_modifications = 1000;  // per message, all filters of a chain together
  std::size_t max_header_name = 256;
  std::size_t max_header_value = 102400;  // max_header_size
  std::size_t max_body = 10 << 20;        // a replacement body: max_message_size
};

// A header field name: 1 to max_header_name printable ASCII characters, no ':' (RFC 5322 2.2).
std::string check_header_name(std::string_view name, const ModificationLimits& limits);
// A header value as a filter gives it (after the colon; lines folded with LF or CRLF): no NUL,
// no CR that is not part of CRLF, and every line end followed by a continuation line (white space
// first, then something other than white space): nothing that ends the field or the header.
std::string check_header_value(std::string_view value, const ModificationLimits& limits);
// One modification (names, values, addresses, arguments, the size of a body).
std::string check_modification(const Modification& mod, const ModificationLimits& limits);
// Every modification of one message, and their number.
std::string check_modifications(const std::vector<Modification>& mods,
                                const ModificationLimits& limits);
// The text of a ReplyCode verdict, which the session sends as it is: lines split by CRLF (no
// other CR or LF), at most 32 of at most 510 characters, each "CODE-text" but the last
// "CODE text" (or just "CODE"), the same 4xx or 5xx CODE on every line, printable ASCII or tab,
// and an enhanced status code (RFC 3463), where a line has one, of the same class.
std::string check_reply(std::string_view text);

}  // namespace estafette::filters
