// estafette-esmtpclient: the ESMTP delivery module. courierd starts it with `--fd N` (a
// socketpair carrying ipc frames) and optionally `--config PATH`; it announces itself
// (ModuleReady "esmtp") and delivers every Deliver by SMTP (esmtp_client.h), many at once on one
// event loop. Exits 0 when the channel closes or on SIGTERM/SIGINT (in-flight deliveries are
// simply dropped: courierd retries them); 2 on bad usage or a bad config; 1 on a start-up error
// (such as failing to become `user`: with it set, everything runs as that user).
#include <signal.h>

#include <cstdio>
#include <exception>

#include "esmtpclient/esmtp_client.h"
#include "lib/base/cli.h"
#include "lib/base/log.h"
#include "lib/base/privileges.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"

using namespace estafette;

int main(int argc, char** argv) {
  auto args = base::parse_daemon_args(argc, argv, "--fd N [--config PATH]");
  if (!args) return 2;
  if (args->fd < 0) {
    std::fprintf(stderr,
                 "estafette-esmtpclient: --fd is required (courierd starts this program)\n");
    return 2;
  }
  config::Config config;
  try {
    config = config::load_config(args->config_path);
    base::setup_logging({"esmtpclient", config.log_file, config.syslog, config.log_level});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estafette-esmtpclient: %s\n", e.what());
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);  // sendfile() to a reset peer must not kill the process
  try {
    if (!config.user.empty())
      base::drop_privileges(base::require_account(config.user, config.source));
    event::Loop loop;
    esmtpclient::EsmtpClient client(loop, config, base::UniqueFd(args->fd), [&] { loop.stop(); });
    loop.on_signal(SIGTERM, [&] { loop.stop(); });
    loop.on_signal(SIGINT, [&] { loop.stop(); });
    loop.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estafette-esmtpclient: %s\n", e.what());
    return 1;
  }
  return 0;
}
