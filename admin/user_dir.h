// user_dir.h: for the admin commands that work as the daemons would (mta-sts, tls-report): make
// <state_dir>/SUB exist and belong to `user` (estafetted does so at start; the command may run
// first), then become that user, when run as root with `user` set. Main thread of the tool.
#pragma once

#include <optional>
#include <string>

#include "lib/config/config.h"

namespace estafette::admin {

// Errors: a reason.
std::optional<std::string> enter_user_dir(const config::Config& config, const std::string& sub);

}  // namespace estafette::admin
