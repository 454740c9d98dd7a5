// metrics_server.h: estafette-metrics' HTTP side: POCO's HTTPServer on `metrics_listen` answers
// GET /metrics with lib/metrics' exposition of every live daemon's file in <state>/run/metrics
// (shm_file.h: each file is checked, being the unprivileged user's) and courierd's queue shape.
// Bounds: kMaxThreads scrapes at once, kMaxQueued waiting connections (more are refused by
// POCO), kMaxFiles files per scrape, kMaxResponse bytes of answer, kRequestTimeout per
// connection. Threads: the server's own (POCO's thread pool); a scrape never touches a daemon's
// loop: it reads files and asks courierd over its admin socket, which answers from memory.
// Errors: the constructor throws Poco::Exception when the address cannot be bound.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/config/config.h"
#include "lib/metrics/exposition.h"

namespace Poco {
class ThreadPool;
namespace Net {
class HTTPServer;
class ServerSocket;
}  // namespace Net
}  // namespace Poco

namespace estafette::metrics_program {

inline constexpr int kMaxThreads = 2;
inline constexpr int kMaxQueued = 8;
inline constexpr std::size_t kMaxFiles = 256;
inline constexpr std::size_t kMaxResponse = 4 << 20;
inline constexpr std::chrono::seconds kRequestTimeout{10};
inline constexpr std::chrono::seconds kCourierdTimeout{5};

// One scrape's input: the live processes' files and courierd's queue shape (nullopt: no
// answer). Refused files are logged. Blocking; any thread.
struct Scrape {
  std::vector<metrics::Snapshot> processes;
  std::optional<std::vector<metrics::QueueShapeRow>> queue;
};
Scrape collect(const config::Config& config);

// The listening socket of `metrics_listen` (bound before privileges go).
std::unique_ptr<Poco::Net::ServerSocket> bind_metrics(const config::Config& config);

class MetricsServer final {
 public:
  MetricsServer(const config::Config& config, std::unique_ptr<Poco::Net::ServerSocket> socket);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  void start();
  void stop();  // stops accepting and waits for the scrapes in progress

 private:
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace estafette::metrics_program
