// reload_rules.h: what `estafette reload` may change. Everything in estafette.conf and the files
// it names is re-read, and the daemons are replaced by ones started with it (supervisor.h),
// except what estafetted itself, the queue and the sockets were set up with: those need
// `estafette restart`, and a reload that changes one fails, naming it, and changes nothing.
// Pure.
#pragma once

#include <string>
#include <vector>

#include "lib/config/config.h"

namespace estafette::supervisor {

// The fixed settings that differ, each as "name (old -> new)"; empty: the reload may go on.
std::vector<std::string> fixed_settings_changed(const config::Config& running,
                                                const config::Config& next);

}  // namespace estafette::supervisor
