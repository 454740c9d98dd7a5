// estafette-esmtpclient: the ESMTP delivery module. courierd starts it with `--fd N` (a
// socketpair carrying ipc frames) and optionally `--config PATH`; it announces itself
// (ModuleReady "esmtp") and delivers every Deliver by SMTP (esmtp_client.h), many at once on one
// event loop (lib/daemon/daemon.h). Exits 0 when the channel closes or on SIGTERM/SIGINT
// (in-flight deliveries are simply dropped: courierd retries them); 2 on bad usage or a bad
// config; 1 on a start-up error (such as failing to become `user`: with it set, everything runs
// as that user). SIGPIPE is ignored: sendfile() to a reset peer must not kill the process.
// SIGHUP writes the TLS report journals (tls_reports.h) at once.
// client_credentials is read while still root (it is a root-only file) and kept in memory.
#include "esmtpclient/esmtp_client.h"
#include "lib/base/fd.h"
#include "lib/config/client_credentials.h"
#include "lib/daemon/daemon.h"

using namespace estafette;

int main(int argc, char** argv) {
  config::CredentialTable credentials;
  daemon::DaemonSpec spec{.program = "estafette-esmtpclient",
                          .log_name = "esmtpclient",
                          .usage = "--fd N [--config PATH]",
                          .needs_fd = true,
                          .privileges = daemon::Privileges::Drop,
                          .reload = true};
  spec.as_root = [&credentials](daemon::Startup& startup) {
    if (!startup.config.client_credentials.empty())
      credentials = config::load_client_credentials(startup.config.client_credentials);
  };
  return daemon::run(argc, argv, spec, [&credentials](daemon::Context& ctx) {
    esmtpclient::EsmtpClient client(
        ctx.loop, ctx.config, base::UniqueFd(ctx.args.fd), [&] { ctx.loop.stop(); },
        std::move(credentials));
    // SIGHUP (`estafette reload`, passed on by courierd): the TLS report counts to disk now.
    ctx.on_reload([&client] { client.flush_reports(); });
    return ctx.run();
  });
}
