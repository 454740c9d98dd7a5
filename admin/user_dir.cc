#include "admin/user_dir.h"

#include <unistd.h>

#include "lib/base/privileges.h"
#include "lib/base/safe_dir.h"

namespace estafette::admin {

std::optional<std::string> enter_user_dir(const config::Config& config, const std::string& sub) {
  std::optional<base::Account> account;
  if (!config.user.empty() && ::geteuid() == 0)
    account = base::require_account(config.user, config.source);
  std::string why;
  base::UniqueFd state =
      base::open_dir(config.state_dir, {.create = true, .mode = 0755, .trusted = false}, &why);
  if (!state) return "cannot open " + config.state_dir + ": " + why;
  const std::string path = config.state_dir + "/" + sub;
  if (!base::open_dir_at(state.get(), config.state_dir, sub,
                         {.create = true, .mode = 0700, .trusted = false}, &why))
    return "cannot create " + path + ": " + why;
  if (account) {
    base::give_to(path, *account, true);
    base::drop_privileges(*account);
  }
  return std::nullopt;
}

}  // namespace estafette::admin
