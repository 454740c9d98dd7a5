// filter_verdict.h: what the filters (filters/: milters and in-process modules) decided about
// the connection, one SMTP command or a whole message, in milter semantics. One type on both
// sides of the pipeline: filters::Filter and filters::Chain answer it (filters/types.h names it
// filters::Verdict) and ServerSession::on_filter_verdict / on_filter_connect take it as it is,
// so nothing translates between them. It lives here, below both, because lib/ includes nothing
// above it and the session must stay a pure state machine of lib/smtp.
// A value type: no I/O, any thread. to_string() never fails (an unknown value gives "?").
#pragma once

#include <string>

namespace estafette::smtp {

struct FilterVerdict {
  enum class Action {
    Continue,   // go on (the reply the session would give anyway)
    Accept,     // go on; this filter wants nothing more of this message (or session)
    Reject,     // 5xx with the session's default text for the phase
    Tempfail,   // 4xx with the session's default text for the phase
    Discard,    // accept the message (250) and drop it; `text`: empty, or why, for the
                // client's reply (esmtpd's own words: filters::Chain clears a filter's)
    ReplyCode,  // reply with `text` (a 4xx or 5xx reply; empty: as Reject)
    Failed,     // the filter failed (`text` is the reason, for logs); filters::Chain applies the
                // filter's default action, and a Failed that reaches the session is answered
                // as Tempfail (the reason never goes to the client)
  };
  Action action = Action::Continue;
  std::string text;         // ReplyCode: the whole reply ("550 5.7.1 Rejected"); Failed: the reason
  std::string filter;       // the filter that decided, for logs (empty for Continue)
  std::string reason = {};  // set by filters::Chain when a Failed filter's default action answered
                            // (Reject, Tempfail): why it failed, for logs
};

// "continue", "accept", "reject", "tempfail", "discard", "replycode", "failed".
const char* to_string(FilterVerdict::Action action);

}  // namespace estafette::smtp
