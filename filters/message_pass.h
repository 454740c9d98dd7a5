// message_pass.h: one whole message through a filters::Chain, as the end of DATA gives it: each
// header field in order, end of headers, the body, end of message. Nothing SMTP-specific: the
// caller (esmtpd) parses the message (filters/message_edit.h) and applies the modifications.
// Loop thread (the chain's). The pass keeps itself alive through the chain's callbacks; the
// message must stay alive until `done` runs or the chain is destroyed (then `done` never runs).
// DIAGNOSTICS: none of its own; `done` gets the chain's verdict (a Chain never answers Failed).
#pragma once

#include <memory>
#include <string>

#include "filters/chain.h"
#include "filters/message_edit.h"
#include "filters/types.h"

namespace estafette::filters {

// Header values as milters expect them (sendmail): continuation lines joined with LF, no CR.
std::string filter_header_value(const std::string& value);

// Sends the headers one at a time (values through filter_header_value), then end of headers,
// the body (when there is one) and end of message; a phase no filter receives
// (Chain::receives) is skipped (end of headers: its macros go to Chain::skipped). `done` gets the
// first verdict that is not Continue/Accept (without modifications), or the end-of-message verdict
// with every modification. `macros` go with end of headers and end of message.
void filter_message(Chain& chain, std::shared_ptr<const ParsedMessage> message, Macros macros,
                    Chain::EomCallback done);

}  // namespace estafette::filters
