#include "admin/check_config.h"

#include "filters/start_checks.h"
#include "lib/base/privileges.h"
#include "lib/config/config.h"
#include "lib/routing/router.h"

namespace estafette::admin {

CheckResult check_config(const std::string& path) {
  CheckResult r;
  r.source = path.empty() ? config::Config{}.source : path;
  config::Config c;
  try {
    c = config::load_config(path);
  } catch (const std::exception& e) {  // ConfigError, or a file that cannot be read
    r.errors.push_back(e.what());
    return r;
  }
  r.source = c.source;
  r.errors = filters::start_errors(c);
  try {  // the routing files, as esmtpd, courierd and estafette-local load them
    routing::Router::load(c);
  } catch (const std::exception& e) {
    r.errors.push_back(e.what());
  }
  // The daemons look the user up when they start; a missing one stops them.
  if (!c.user.empty() && !base::find_account(c.user))
    r.errors.push_back(c.source + ": user: no such user '" + c.user + "'");
  return r;
}

}  // namespace estafette::admin
