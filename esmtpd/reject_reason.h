// reject_reason.h: which metrics::Reject a refusing reply of esmtpd counts as: the reason the
// session gave it (smtp::Refusal), else other_4xx or other_5xx by its code. Pure; any thread.
#pragma once

#include <string_view>

#include "lib/metrics/catalog.h"
#include "lib/smtp/server_session.h"

namespace estafette::esmtpd {

metrics::Reject reject_reason(smtp::Refusal why, std::string_view reply);

// The EsmtpdRejects label index of a refusing reply (for metrics::Writer::add).
inline std::size_t reject_label(smtp::Refusal why, std::string_view reply) {
  return static_cast<std::size_t>(reject_reason(why, reply));
}

}  // namespace estafette::esmtpd
