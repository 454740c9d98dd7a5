// estafette-courierd: the queue manager. Reads the config, opens the queue and hands over to
// Courierd on one event loop (lib/daemon/daemon.h); runs in the foreground (a supervisor starts
// it). Courierd takes SIGTERM/SIGINT (shut down), SIGHUP (reload) and SIGCHLD itself.
// Exit codes: 0 after SIGTERM/SIGINT, 1 on a fatal start-up error, 2 on a bad config.
// With `user` set courierd works as that user (effective uid and gid: the queue files it writes
// belong to the user, like esmtpd's) and keeps root only as its real and saved uid, to start
// its delivery modules as root (ModuleProcess); it never regains root itself.
#include <cerrno>
#include <stdexcept>

#include "courierd/courierd.h"
#include "lib/base/paths.h"
#include "lib/daemon/daemon.h"
#include "lib/queue/file_backend.h"

using namespace estafette;

int main(int argc, char** argv) {
  daemon::DaemonSpec spec{.program = "estafette-courierd",
                          .log_name = "courierd",
                          .usage = "[--config PATH]",
                          .privileges = daemon::Privileges::Effective};
  return daemon::run(argc, argv, spec, [](daemon::Context& ctx) {
    const config::Config& config = ctx.config;
    if (!base::make_dirs(config.queue_dir()))
      throw std::runtime_error("cannot create " + config.queue_dir() + ": " +
                               base::errno_text(errno));
    auto backend = queue::open_backend(config.queue_backend, config.queue_dir());
    courierd::Courierd daemon(ctx.loop, config, ctx.config_path, *backend);
    daemon.start();
    return ctx.run();
  });
}
