// estafette-courierd: the queue manager. Reads the config, opens the queue and hands over to
// Courierd on one event loop (lib/daemon/daemon.h); runs in the foreground (a supervisor starts
// it). Courierd takes SIGTERM/SIGINT (shut down), SIGHUP (reload) and SIGCHLD itself.
// Exit codes: 0 after SIGTERM/SIGINT, 1 on a fatal start-up error, 2 on a bad config.
// With `user` set (and started as root) courierd first forks a root helper that can only start
// the delivery modules (lib/daemon/root_spawner.h), then becomes the user for good (real, effective
// and saved ids): nothing that parses the queue or IPC frames can get back to root. The queue
// files it writes belong to the user, like esmtpd's.
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <vector>

#include "courierd/courierd.h"
#include "lib/base/paths.h"
#include "lib/base/privileges.h"
#include "lib/daemon/daemon.h"
#include "lib/daemon/root_spawner.h"
#include "lib/queue/file_backend.h"

using namespace estafette;

int main(int argc, char** argv) {
  std::unique_ptr<daemon::RootSpawner> spawner;
  daemon::DaemonSpec spec{
      .program = "estafette-courierd",
      .log_name = "courierd",
      .usage = "[--config PATH]",
      .privileges = daemon::Privileges::Drop,
      .as_root = [&](daemon::Startup& s) {
        if (s.config.user.empty() || ::geteuid() != 0) return;
        // The one thing courierd needs root for, kept in a helper that parses nothing of ours:
        // starting the delivery modules as root. courierd itself then drops every uid.
        base::Account account = base::require_account(s.config.user, s.config.source);
        std::vector<daemon::Command> modules(2);
        modules[courierd::kSpawnerLocal].path = base::program_path("estafette-local");
        modules[courierd::kSpawnerEsmtp].path = base::program_path("estafette-esmtpclient");
        if (!s.config_path.empty())
          for (auto& m : modules) m.args = {"--config", s.config_path};
        spawner = std::make_unique<daemon::RootSpawner>(std::move(modules), account.uid,
                                                        "estafette-courierd");
      }};
  return daemon::run(argc, argv, spec, [&](daemon::Context& ctx) {
    const config::Config& config = ctx.config;
    if (!base::make_dirs(config.queue_dir()))
      throw std::runtime_error("cannot create " + config.queue_dir() + ": " +
                               base::errno_text(errno));
    auto backend = queue::open_queue(config.queue_backend, config.queue_dir(),
                                     {.verify_bodies = config.queue_verify_bodies});
    courierd::Courierd daemon(ctx.loop, config, ctx.config_path, *backend, spawner.get());
    daemon.start();
    return ctx.run();
  });
}
