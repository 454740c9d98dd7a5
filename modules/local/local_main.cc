// estafette-local: the local delivery module. courierd starts it with `--fd N` (a socketpair)
// and optionally `--config PATH`; it announces itself (ModuleReady "local"), then delivers each
// Deliver into Maildirs or to programs (maildir.h), one at a time, and answers with a
// DeliverResult (lib/daemon/daemon.h runs it). Exits 0 when the channel closes or on
// SIGTERM/SIGINT (between deliveries); 2 on bad usage or a bad config. It stays root.
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>

#include "lib/base/fd.h"
#include "lib/base/log.h"
#include "lib/daemon/daemon.h"
#include "lib/ipc/channel.h"
#include "lib/ipc/messages.h"
#include "lib/routing/router.h"
#include "modules/local/maildir.h"

using namespace estafette;

int main(int argc, char** argv) {
  daemon::DaemonSpec spec{.program = "estafette-local",
                          .log_name = "local",
                          .usage = "--fd N [--config PATH]",
                          .needs_fd = true,
                          .reload = true};
  return daemon::run(argc, argv, spec, [](daemon::Context& ctx) {
    // The mailbox maps; SIGHUP (from courierd) reloads them, a broken file keeps the old ones.
    std::shared_ptr<const routing::Router> router = routing::Router::load(ctx.config);
    local::MaildirDelivery maildir(router, ctx.config.hostname);
    ipc::Channel* out = nullptr;
    ipc::Channel channel(
        ctx.loop, base::UniqueFd(ctx.args.fd),
        [&](const ipc::Frame& f) {
          auto d = ipc::decode_deliver(f);
          if (!d) {
            base::log("local").warning("unexpected frame type=" + std::to_string(f.type));
            return;
          }
          // The whole delivery is the transfer (d of courierd's delays=): no connection.
          const auto started = std::chrono::steady_clock::now();
          auto result = maildir.deliver(*d);
          result.transfer_ms =
              static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - started)
                                             .count());
          for (std::size_t i = 0; i < result.results.size(); ++i)
            if (result.results[i].status != ipc::RcptStatus::Delivered)
              base::log("local").warning("id=" + d->queue_id + " to=<" + d->recipients[i] + "> " +
                                         result.results[i].reply);
          out->send(ipc::encode(result));
        },
        [&] { ctx.loop.stop(); });
    out = &channel;
    ctx.on_reload([&] {
      try {
        router = routing::Router::load(ctx.config);
      } catch (const std::exception& e) {
        base::log("local").error(std::string("reload failed, keeping the previous maps: ") +
                                 e.what());
      }
    });
    channel.send(ipc::encode(ipc::ModuleReady{"local"}));
    return ctx.run();
  });
}
