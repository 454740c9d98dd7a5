// message_edit.h: a message as filters see it (header fields and a body, CRLF, not dot-stuffed)
// and the application of their modifications (filters/types.h, milter semantics) to it and to
// the envelope.
// Pure; any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "filters/types.h"

namespace estafette::filters {

struct HeaderField {
  std::string name;
  std::string value;  // after the colon, as written: leading space and folding (CRLF + WSP) kept
};

struct ParsedMessage {
  std::vector<HeaderField> headers;
  std::string body;  // after the empty line that ends the header (CRLF line ends)
};

// Splits a plain CRLF message. The header ends at the first empty line; a line that is neither
// a field ("name:") nor a continuation (starts with space or tab) also ends it and starts the
// body (as Postfix does), so no byte is lost.
ParsedMessage parse_message(std::string_view plain);
// The same, reusing `plain`'s memory for the body (no copy of the body).
ParsedMessage parse_message_in_place(std::string&& plain);
std::string render_message(const ParsedMessage& message);
// smtp::stuff(render_message(message)) in pieces of about 64 KiB, each cut after a line end,
// handed to `sink` in order (no whole copy of the message); stops at the first false from sink
// and answers false then.
bool write_wire(const ParsedMessage& message, const std::function<bool(std::string_view)>& sink);

struct Envelope {
  std::string sender;
  std::vector<std::string> recipients;
  std::string quarantine;  // non-empty: a filter asked for it (the reason)
};

// Applies modifications in order, as libmilter defines them:
//   AddHeader: append; ChangeHeader: the index-th (1-based) field of that name (any case), an
//   empty value deletes it, a missing one is added; InsertHeader: at position index (0 = first);
//   AddRcpt/DelRcpt (addresses with or without <>, DelRcpt compares case-insensitively);
//   ReplaceBody (bare LF becomes CRLF); ChangeFrom; Quarantine (the reason through
//   sanitize_reason()).
// A value from a filter without leading white space gets one space after the colon; bare LF in
// it becomes CRLF.
// Callers check the modifications first (filters/validate.h): apply() trusts names and values.
void apply(const std::vector<Modification>& mods, ParsedMessage& message, Envelope& envelope);

// A filter's quarantine reason made fit for a header value and a log line: printable ASCII
// (anything else, and '"' and '\\', becomes '?'), at most 200 characters; "quarantined by a
// filter" when empty.
std::string sanitize_reason(std::string_view reason);

}  // namespace estafette::filters
