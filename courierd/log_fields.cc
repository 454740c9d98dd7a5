#include "courierd/log_fields.h"

#include <cstdio>

namespace estafette::courierd {

std::string log_quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n') c = ' ';
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  while (out.size() > 1 && out.back() == ' ') out.pop_back();
  return out + "\"";
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", s < 0 ? 0.0 : s);
  return buf;
}

std::string delay_text(std::int64_t arrival, Time now) {
  return seconds_text(static_cast<double>(now.time_since_epoch().count()) / 1000.0 -
                      static_cast<double>(arrival));
}

}  // namespace estafette::courierd
