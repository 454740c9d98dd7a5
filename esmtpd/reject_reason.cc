#include "esmtpd/reject_reason.h"

namespace estafette::esmtpd {

metrics::Reject reject_reason(smtp::Refusal why, std::string_view reply) {
  switch (why) {
    case smtp::Refusal::Dnsbl:
      return metrics::Reject::Dnsbl;
    case smtp::Refusal::Relay:
      return metrics::Reject::Relay;
    case smtp::Refusal::UnknownUser:
      return metrics::Reject::UnknownUser;
    case smtp::Refusal::Filter:
      return metrics::Reject::Filter;
    case smtp::Refusal::None:
      break;
  }
  return !reply.empty() && reply[0] == '4' ? metrics::Reject::Other4xx : metrics::Reject::Other5xx;
}

}  // namespace estafette::esmtpd
