// estafette-metrics: serves Prometheus metrics on `metrics_listen` (metrics_server.h). estafetted
// starts it when that is set; it binds the address as root, then runs as `user` (it reads the
// daemons' files in <state>/run/metrics and asks courierd over its socket, nothing else).
// SIGTERM/SIGINT: stop the server (scrapes in progress finish), exit 0.
#include <Poco/Net/ServerSocket.h>

#include <memory>
#include <stdexcept>

#include "lib/base/log.h"
#include "lib/daemon/daemon.h"
#include "metrics/metrics_server.h"

using namespace estafette;

int main(int argc, char** argv) {
  std::unique_ptr<Poco::Net::ServerSocket> socket;
  daemon::DaemonSpec spec{
      .program = "estafette-metrics",
      .log_name = "metrics",
      .usage = "[-c CONFIG]",
      .privileges = daemon::Privileges::Drop,
      .as_root = [&](daemon::Startup& s) {
        if (!s.config.metrics_listen)
          throw std::runtime_error("metrics_listen is not set: nothing to serve");
        try {
          socket = metrics_program::bind_metrics(s.config);
        } catch (const Poco::Exception& e) {
          throw std::runtime_error("metrics_listen " + s.config.metrics_listen->to_string() + ": " +
                                   e.displayText());
        }
      }};
  return daemon::run(argc, argv, spec, [&](daemon::Context& ctx) {
    // The signals are taken on the loop before this: POCO's threads inherit them blocked.
    metrics_program::MetricsServer server(ctx.config, std::move(socket));
    server.start();
    base::log("metrics").information("serving http://" + ctx.config.metrics_listen->to_string() +
                                     "/metrics");
    ctx.on_stop([&] {
      server.stop();
      ctx.loop.stop();
    });
    return ctx.run();
  });
}
