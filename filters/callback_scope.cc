// callback_scope.cc: timing and crash context of one call into a module.
#include "filters/callback_scope.h"

#include <cstdio>
#include <exception>

#include "lib/base/log.h"

namespace estafette::filters {

namespace {
// 100ms -> "100ms", 2000ms -> "2s".
std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() != 0 && d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}
}  // namespace

std::string hold_warning(std::string_view session, std::string_view module, std::string_view phase,
                         std::chrono::nanoseconds held, std::chrono::milliseconds warn_after) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(held).count();
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%lld.%03llds", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  std::string line = "filter session=";
  line.append(session).append(" module=").append(module).append(" phase=").append(phase);
  line += " held the event loop ";
  line += seconds;
  line += " (filter_callback_warn_time " + duration_text(warn_after) + ")";
  return line;
}

CallbackScope::CallbackScope(std::string_view session, std::string_view module,
                             std::string_view phase, std::chrono::milliseconds warn_after)
    : crash_({"filter session=", session, " module=", module, " phase=", phase}),
      session_(session),
      module_(module),
      phase_(phase),
      warn_after_(warn_after),
      start_(std::chrono::steady_clock::now()) {}

CallbackScope::~CallbackScope() {
  if (warn_after_.count() <= 0) return;
  const auto held = std::chrono::steady_clock::now() - start_;
  if (held <= warn_after_) return;
  try {
    base::log("filters").warning(hold_warning(session_, module_, phase_, held, warn_after_));
  } catch (const std::exception&) {
    // A log that cannot be written is no reason to fail the session.
  }
}

}  // namespace estafette::filters
