// estafette-local: the local delivery module. courierd starts it with `--fd N` (a socketpair)
// and optionally `--config PATH`; it announces itself (ModuleReady "local"), then delivers each
// Deliver into Maildirs or to programs (maildir.h), one at a time, and answers with a
// DeliverResult. Exits 0 when the channel closes or on SIGTERM/SIGINT (between deliveries); 2 on
// bad usage or a bad config.
#include <signal.h>

#include <cstdio>
#include <exception>
#include <memory>

#include "lib/base/cli.h"
#include "lib/base/log.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"
#include "lib/ipc/channel.h"
#include "lib/ipc/messages.h"
#include "lib/routing/router.h"
#include "modules/local/maildir.h"

using namespace estafette;

int main(int argc, char** argv) {
  auto args = base::parse_daemon_args(argc, argv, "--fd N [--config PATH]");
  if (!args) return 2;
  if (args->fd < 0) {
    std::fprintf(stderr, "estafette-local: --fd is required (courierd starts this program)\n");
    return 2;
  }
  config::Config config;
  try {
    config = config::load_config(args->config_path);
    base::setup_logging({"local", config.log_file, config.syslog, config.log_level});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estafette-local: %s\n", e.what());
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    event::Loop loop;
    // The mailbox maps; SIGHUP (from courierd) reloads them, a broken file keeps the old ones.
    std::shared_ptr<const routing::Router> router = routing::Router::load(config);
    local::MaildirDelivery maildir(router, config.hostname);
    ipc::Channel* out = nullptr;
    ipc::Channel channel(
        loop, base::UniqueFd(args->fd),
        [&](const ipc::Frame& f) {
          auto d = ipc::decode_deliver(f);
          if (!d) {
            base::log("local").warning("unexpected frame type=" + std::to_string(f.type));
            return;
          }
          auto result = maildir.deliver(*d);
          for (std::size_t i = 0; i < result.results.size(); ++i)
            if (result.results[i].status != ipc::RcptStatus::Delivered)
              base::log("local").warning("id=" + d->queue_id + " to=<" + d->recipients[i] + "> " +
                                         result.results[i].reply);
          out->send(ipc::encode(result));
        },
        [&] { loop.stop(); });
    out = &channel;
    loop.on_signal(SIGTERM, [&] { loop.stop(); });
    loop.on_signal(SIGINT, [&] { loop.stop(); });
    loop.on_signal(SIGHUP, [&] {
      try {
        router = routing::Router::load(config);
      } catch (const std::exception& e) {
        base::log("local").error(std::string("reload failed, keeping the previous maps: ") +
                                 e.what());
      }
    });
    channel.send(ipc::encode(ipc::ModuleReady{"local"}));
    loop.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estafette-local: %s\n", e.what());
    return 1;
  }
  return 0;
}
