// estafette-esmtpd: the ESMTP server. Reads the config, then hands over to the Server on one
// event loop (lib/daemon/daemon.h). SIGTERM/SIGINT: stop accepting, let queue commits in flight
// finish, exit 0; SIGHUP: reload the maps and the TLS certificates.
// `--processes N` (given by estafetted for esmtpd_processes = N > 1): this process is one of N
// sharing the listen addresses (SO_REUSEPORT), with max_sessions / N sessions.
// `--listen-fds N,...` (given by estafetted): the listening sockets of the listen addresses,
// bound by estafetted once for every esmtpd generation; esmtpd then binds none itself. SIGUSR2:
// stop accepting, let the open sessions end, exit 0 (estafetted's reload hands the sockets to a
// newer esmtpd).
// `--submit-fd N` (given by estafetted): the listening local submission socket
// (lib/submit/socket.h), shared by every esmtpd process; without it esmtpd binds
// <state>/run/submit.sock itself. With `user` set, esmtpd binds its listen addresses as root, then
// drops to that user (lib/base/privileges.h) before it opens the queue, loads filter modules or
// accepts anything; a failure to drop exits 1 with the reason.
// SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT log one "crash:" line (lib/base/crash_log.h), naming
// the filter module, phase and session when a module's callback was running, then end the process
// by the signal (estafetted restarts it).
#include <signal.h>

#include <utility>
#include <vector>

#include "esmtpd/server.h"
#include "lib/base/crash_log.h"
#include "lib/base/fd.h"
#include "lib/base/log.h"
#include "lib/daemon/daemon.h"

using namespace estafette;

int main(int argc, char** argv) {
  std::vector<base::UniqueFd> listeners;          // bound as root, before the privileges go
  std::shared_ptr<const tls::ServerContext> tls;  // keys read as root too
  daemon::DaemonSpec spec{
      .program = "estafette-esmtpd",
      .log_name = "esmtpd",
      .usage = "[-c CONFIG] [--processes N] [--submit-fd N] [--listen-fds N,...]",
      .options = {.fd = true, .processes = true},
      .privileges = daemon::Privileges::Drop,
      .reload = true,
      .as_root = [&](daemon::Startup& s) {
        // A crash (a module's, most likely) is logged with the module, phase and session it
        // was in (lib/base/crash_log.h); the log file is opened now, while root may.
        base::crash::install("esmtpd", s.config.log_file);
        listeners = s.args.listen_fds.empty()
                        ? esmtpd::bind_listeners(s.config, s.args.processes)
                        : esmtpd::adopt_listeners(s.config, s.args.listen_fds);
        tls = esmtpd::load_tls(s.config);
      }};
  return daemon::run(argc, argv, spec, [&](daemon::Context& ctx) {
    // The skeleton took the signals on the loop before this: the Server's threads inherit them
    // blocked, so SIGHUP or SIGTERM always reaches the loop. SIGUSR2 too, taken here before the
    // Server starts its threads (estafetted, on reload: a newer esmtpd has the sockets): let the
    // sessions end, then stop.
    esmtpd::Server* running = nullptr;
    ctx.loop.on_signal(SIGUSR2, [&] {
      if (!running) return;
      running->drain([&] {
        base::log("esmtpd").information("drained; stopping");
        ctx.loop.stop();
      });
    });
    esmtpd::Server server(ctx.loop, ctx.config, std::move(listeners), ctx.args.processes,
                          ctx.args.submit_fd, esmtpd::RecipientLookups::expand, {}, std::move(tls));
    running = &server;
    ctx.on_reload([&] { server.reload(); });
    ctx.on_stop([&] {
      base::log("esmtpd").information("stopping");
      server.shutdown();
      ctx.loop.stop();
    });
    return ctx.run();
    // ~Server: the committer finishes and reports every commit in flight before it is destroyed.
  });
}
