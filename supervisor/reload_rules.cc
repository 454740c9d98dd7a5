#include "supervisor/reload_rules.h"

namespace estafette::supervisor {

std::vector<std::string> fixed_settings_changed(const config::Config& running,
                                                const config::Config& next) {
  std::vector<std::string> out;
  auto compare = [&out](const char* name, const std::string& a, const std::string& b) {
    if (a != b)
      out.push_back(std::string(name) + " (" + (a.empty() ? "unset" : a) + " -> " +
                    (b.empty() ? "unset" : b) + ")");
  };
  // The queue, run/ and the submission socket live there; estafetted gave them to the user.
  compare("state_dir", running.state_dir, next.state_dir);
  compare("user", running.user, next.user);
  // courierd and esmtpd must agree on the queue format; it is not converted.
  compare("queue_backend", running.queue_backend, next.queue_backend);
  return out;
}

}  // namespace estafette::supervisor
