// protocol.h: the Postfix policy delegation protocol (SMTPD_POLICY_README), client side, as pure
// functions: the request (one "name=value" line per attribute, a blank line at the end), an
// incremental reader of the answer ("action=...", then a blank line), and the mapping of an
// action (Postfix's access(5) actions) to the filter interface's Verdict and Modifications.
// No I/O; used by filters/policy/client.h, policy_default_action's check and the fuzz target.
// Pure; any thread.
// DIAGNOSTICS: ReplyReader::feed() answers Error with error() set for an answer larger than
// kMaxReply, a line without '=', or an answer without "action="; it then stays failed.
// parse_action() answers false (and `error`) for an action that is empty or malformed (PREPEND
// without a header, a 4xx/5xx code out of range): the caller applies the default action.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filters/types.h"

namespace estafette::policy {

// An answer is one short line; Postfix's own limit on an attribute is far above any real one.
inline constexpr std::size_t kMaxReply = 8192;

using Attributes = std::vector<std::pair<std::string, std::string>>;

// The request: "name=value\n" per attribute, in order, then "\n". A CR, LF or NUL in a name or
// value (from the client: a HELO name, an address) becomes a space, so that it cannot end the
// line or the request.
std::string format_request(const Attributes& attributes);

class ReplyReader {
 public:
  enum class Status { NeedMore, Done, Error };
  // Feeds bytes as they arrive; Done once the blank line has come (bytes after it are an error:
  // the server answers one request at a time).
  Status feed(std::string_view bytes);
  const std::string& action() const { return action_; }
  const std::string& error() const { return error_; }
  void reset() { *this = ReplyReader(); }

 private:
  Status fail(std::string why);
  std::string line_;
  std::size_t total_ = 0;
  std::string action_;
  bool have_action_ = false;
  bool done_ = false;
  std::string error_;
};

// What one action means for the recipient being checked.
struct Decision {
  filters::Verdict verdict;                          // Continue, ReplyCode or Discard
  std::vector<filters::Modification> modifications;  // PREPEND (InsertHeader 0), HOLD (Quarantine)
  std::string note;  // for the log: WARN's text, or why an action was taken as DUNNO
};

// OK, DUNNO: continue. REJECT [text]: "554 5.7.1 text". DEFER [text], DEFER_IF_PERMIT [text]:
// "450 4.7.1 text". "4NN text"/"5NN text": that reply, an enhanced status code of the same class
// kept, else 4.7.1/5.7.1 added. PREPEND header: continue, the header inserted first. DISCARD:
// discard. HOLD [text]: continue, the message quarantined. WARN text: continue, noted. Anything
// else (FILTER, REDIRECT, BCC, DEFER_IF_REJECT, unknown words): continue, noted. Action words are
// case-insensitive (as in Postfix); a reply text is cut to one printable line.
bool parse_action(std::string_view action, Decision& out, std::string* error);

}  // namespace estafette::policy
