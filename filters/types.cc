// types.cc: parse_default_action (see types.h).
#include "filters/types.h"

namespace estafette::filters {

bool parse_default_action(std::string_view text, DefaultAction& out) {
  if (text == "tempfail")
    out = DefaultAction::Tempfail;
  else if (text == "accept")
    out = DefaultAction::Accept;
  else if (text == "reject")
    out = DefaultAction::Reject;
  else
    return false;
  return true;
}

}  // namespace estafette::filters
