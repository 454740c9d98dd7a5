#include "lib/smtp/filter_verdict.h"

namespace estafette::smtp {

const char* to_string(FilterVerdict::Action action) {
  using A = FilterVerdict::Action;
  switch (action) {
    case A::Continue:
      return "continue";
    case A::Accept:
      return "accept";
    case A::Reject:
      return "reject";
    case A::Tempfail:
      return "tempfail";
    case A::Discard:
      return "discard";
    case A::ReplyCode:
      return "replycode";
    case A::Failed:
      return "failed";
  }
  return "?";
}

}  // namespace estafette::smtp
