// estafette-courierd: the queue manager. Reads the config, opens the queue and hands over to
// Courierd on one event loop; runs in the foreground (a supervisor starts it).
// Exit codes: 0 after SIGTERM/SIGINT, 1 on a fatal start-up error, 2 on a bad config.
// With `user` set courierd works as that user (effective uid and gid: the queue files it writes
// belong to the user, like esmtpd's) and keeps root only as its real and saved uid, to start
// its delivery modules as root (ModuleProcess); it never regains root itself.
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "courierd/courierd.h"
#include "lib/base/cli.h"
#include "lib/base/log.h"
#include "lib/base/paths.h"
#include "lib/base/privileges.h"
#include "lib/config/config.h"
#include "lib/queue/file_backend.h"

using namespace estafette;

int main(int argc, char** argv) {
  auto args = base::parse_daemon_args(argc, argv, "[--config PATH]");
  if (!args) return 2;
  config::Config config;
  try {
    config = config::load_config(args->config_path);
    base::setup_logging({"courierd", config.log_file, config.syslog, config.log_level});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estafette-courierd: %s\n", e.what());
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::string config_path = args->config_path.empty() ? "" : base::absolute_path(args->config_path);
  try {
    if (!config.user.empty())
      base::become_effective(base::require_account(config.user, config.source));
    if (!base::make_dirs(config.queue_dir()))
      throw std::runtime_error("cannot create " + config.queue_dir() + ": " +
                               base::errno_text(errno));
    auto backend = queue::open_backend(config.queue_backend, config.queue_dir());
    event::Loop loop;
    courierd::Courierd daemon(loop, config, config_path, *backend);
    daemon.start();
    loop.run();
  } catch (const std::exception& e) {
    base::log("courierd").critical(std::string("fatal: ") + e.what());
    std::fprintf(stderr, "estafette-courierd: %s\n", e.what());
    return 1;
  }
  return 0;
}
