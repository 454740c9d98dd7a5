// estafette-esmtpd: the ESMTP server. Reads the config, then hands over to the Server on one
// event loop. SIGTERM/SIGINT: stop accepting, let queue commits in flight finish, exit 0.
// `--processes N` (given by estafetted for esmtpd_processes = N > 1): this process is one of N
// sharing the listen addresses (SO_REUSEPORT), with max_sessions / N sessions.
// `--submit-fd N` (given by estafetted): the listening local submission socket (submit_socket.h),
// shared by every esmtpd process; without it esmtpd binds <state>/run/submit.sock itself.
// With `user` set, esmtpd binds its listen addresses as root, then drops to that user
// (lib/base/privileges.h) before it opens the queue, loads filter modules or accepts anything;
// a failure to drop exits 1 with the reason.
#include <signal.h>

#include <cstdio>

#include "esmtpd/server.h"
#include "lib/base/cli.h"
#include "lib/base/log.h"
#include "lib/base/privileges.h"
#include "lib/config/config.h"

using namespace estafette;

int main(int argc, char** argv) {
  auto args =
      base::parse_daemon_args(argc, argv, "[-c CONFIG] [--processes N] [--submit-fd N]", true);
  if (!args) return 2;
  config::Config config;
  try {
    config = config::load_config(args->config_path);
    base::setup_logging({"esmtpd", config.log_file, config.syslog, config.log_level});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estafette-esmtpd: %s\n", e.what());
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    auto listeners = esmtpd::bind_listeners(config, args->processes);
    if (!config.user.empty())
      base::drop_privileges(base::require_account(config.user, config.source));
    event::Loop loop;
    // The signals are blocked (taken by the loop's signalfd) before the Server starts its
    // threads, which inherit the mask: otherwise SIGHUP or SIGTERM could kill the process
    // through one of them.
    esmtpd::Server* running = nullptr;
    loop.on_signal(SIGHUP, [&] {
      if (running) running->reload();
    });
    auto stop = [&] {
      base::log("esmtpd").information("stopping");
      if (running) running->shutdown();
      loop.stop();
    };
    loop.on_signal(SIGTERM, stop);
    loop.on_signal(SIGINT, stop);
    esmtpd::Server server(loop, config, std::move(listeners), args->processes, args->submit_fd);
    running = &server;
    loop.run();
    // ~Server: the committer finishes and reports every commit in flight before it is destroyed.
  } catch (const std::exception& e) {
    base::log("esmtpd").critical(std::string("fatal: ") + e.what());
    std::fprintf(stderr, "estafette-esmtpd: %s\n", e.what());
    return 1;
  }
  return 0;
}
