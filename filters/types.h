// types.h: the vocabulary of the filter interface (filters/filter.h), shared by every kind of
// filter and by their users: the verdict, the modifications a filter asks for at end of
// message, what to do when a filter fails, the connect family and the macros of each phase.
// The milter client (filters/milter/) and the in-process modules (native ABI, libmilter shim)
// are implementations that speak these types; this header includes nothing of theirs.
// The verdict: one type from the filter to the SMTP session, with no parallel type and no
// translation. filters::Verdict IS smtp::FilterVerdict (lib/smtp/filter_verdict.h): the session
// (lib/smtp/server_session.h) is a pure state machine of lib/, and lib/ may not include
// filters/, so the type lives below both and filters/ names it here.
// Value types; any thread. parse_default_action() answers false for an unknown word.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/smtp/filter_verdict.h"

namespace estafette::filters {

// What a filter decided (Continue, Accept, Reject, Tempfail, Discard, ReplyCode, Failed), its
// text and the filter's name; to_string() gives "continue", "replycode", ...
using Verdict = smtp::FilterVerdict;
using smtp::to_string;

// A change a filter asked for at end of message, in the order it asked.
struct Modification {
  enum class Kind {
    AddHeader,     // name, value: append "name:value"
    ChangeHeader,  // name, value, index: the index-th (1-based) "name" header; empty value deletes
    InsertHeader,  // name, value, index: insert at position index (0 = first header)
    AddRcpt,       // address, args (ESMTP parameters, may be empty)
    DelRcpt,       // address
    ReplaceBody,   // body: the whole new body (chunks joined)
    Quarantine,    // text: the reason
    ChangeFrom,    // address, args
  };
  Kind kind = Kind::AddHeader;
  std::string name;
  std::string value;  // the text after the colon, leading space included, as it is to be written
  std::uint32_t index = 0;
  std::string address;
  std::string args;
  std::string body;
  std::string text;
  bool operator==(const Modification&) const = default;
};

// What the Chain does when a filter fails (Postfix's milter_default_action).
enum class DefaultAction { Tempfail, Accept, Reject };
// "tempfail", "accept", "reject"; false (out unchanged) otherwise.
bool parse_default_action(std::string_view text, DefaultAction& out);

// The client's address family at connect. The letters are the milter protocol's SMFIA_* (the
// milter client sends them as they are; filters/milter/protocol.cc checks they agree).
enum class Family : char {
  Unknown = 'U',  // no address (a local submission)
  Unix = 'L',
  Inet = '4',
  Inet6 = '6',
};

// Macro name (as sendmail names them: "j", "{client_addr}") and value, in the order given.
using Macros = std::vector<std::pair<std::string, std::string>>;

// A message's header fields as filters get them: name, and the value as filter_header_value()
// gives it (continuation lines joined with LF), in message order.
using HeaderFields = std::vector<std::pair<std::string, std::string>>;

}  // namespace estafette::filters
