#include "metrics/metrics_server.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cstdint>
#include <exception>

#include "lib/admin/courierd_client.h"
#include "lib/base/log.h"
#include "lib/ipc/messages.h"

namespace estafette::metrics_program {
namespace {

Poco::Logger& logger() {
  return base::log("metrics");
}

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(const config::Config& config) : config_(config) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    using Poco::Net::HTTPResponse;
    response.setKeepAlive(false);
    std::string path;
    try {
      path = Poco::URI(request.getURI()).getPath();
    } catch (const Poco::Exception&) {
      path.clear();
    }
    if (path != "/metrics") {
      reply(response, HTTPResponse::HTTP_NOT_FOUND, "not found: try /metrics\n");
      return;
    }
    const bool head = request.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD;
    if (!head && request.getMethod() != Poco::Net::HTTPRequest::HTTP_GET) {
      response.set("Allow", "GET, HEAD");
      reply(response, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "GET or HEAD only\n");
      return;
    }
    Scrape scrape = collect(config_);
    metrics::ScrapeInput input{scrape.processes, std::nullopt};
    if (scrape.queue) input.queue = std::span<const metrics::QueueShapeRow>(*scrape.queue);
    auto text = metrics::render(input, kMaxResponse);
    if (!text) {
      logger().error("scrape answer larger than " + std::to_string(kMaxResponse) + " bytes");
      reply(response, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, "answer too large\n");
      return;
    }
    response.setContentType("text/plain; version=0.0.4; charset=utf-8");
    response.setContentLength(static_cast<std::streamsize>(text->size()));
    auto& out = response.send();
    if (!head) out.write(text->data(), static_cast<std::streamsize>(text->size()));
  }

 private:
  static void reply(Poco::Net::HTTPServerResponse& response,
                    Poco::Net::HTTPResponse::HTTPStatus status, const std::string& body) {
    response.setStatus(status);
    response.setContentType("text/plain; charset=utf-8");
    response.setContentLength(static_cast<std::streamsize>(body.size()));
    response.send() << body;
  }
  const config::Config& config_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(const config::Config& config) : config_(config) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(config_);
  }

 private:
  const config::Config& config_;
};

// courierd's queue shape (QueueShapeRequest on its admin socket), ages as of its own clock.
std::optional<std::vector<metrics::QueueShapeRow>> queue_shape(const config::Config& config) {
  try {
    admin::CourierdClient client(config.courierd_socket(), kCourierdTimeout);
    client.send(ipc::encode(ipc::QueueShapeRequest{}));
    auto reply = ipc::decode_queue_shape_reply(client.receive());
    if (!reply) {
      logger().warning("courierd: malformed queue shape reply");
      return std::nullopt;
    }
    const std::int64_t now = reply->now_ms / 1000;
    auto age = [now](std::int64_t oldest) {
      return static_cast<double>(std::max<std::int64_t>(0, now - oldest));
    };
    std::vector<metrics::QueueShapeRow> rows;
    for (const auto& r : reply->rows)
      rows.push_back({r.destination, r.recipients, age(r.oldest_arrival)});
    if (reply->other_recipients > 0)
      rows.push_back({"other", reply->other_recipients, age(reply->other_oldest)});
    return rows;
  } catch (const std::exception& e) {
    logger().warning(std::string("courierd: no queue shape: ") + e.what());
    return std::nullopt;
  }
}

}  // namespace

Scrape collect(const config::Config& config) {
  Scrape scrape;
  metrics::DirRead read = metrics::read_dir(config.metrics_dir(), kMaxFiles, true);
  scrape.processes = std::move(read.live);
  if (!read.refused.empty())
    logger().warning("metrics files refused: " + std::to_string(read.refused.size()) +
                     ", first: " + read.refused.front());
  scrape.queue = queue_shape(config);
  return scrape;
}

std::unique_ptr<Poco::Net::ServerSocket> bind_metrics(const config::Config& config) {
  const config::HostPort& hp = *config.metrics_listen;
  std::string host = hp.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return std::make_unique<Poco::Net::ServerSocket>(Poco::Net::SocketAddress(host, hp.port));
}

MetricsServer::MetricsServer(const config::Config& config,
                             std::unique_ptr<Poco::Net::ServerSocket> socket)
    : pool_(std::make_unique<Poco::ThreadPool>(1, kMaxThreads)) {
  auto* params = new Poco::Net::HTTPServerParams;  // owned by the server (reference counted)
  params->setMaxThreads(kMaxThreads);
  params->setMaxQueued(kMaxQueued);
  params->setKeepAlive(false);
  params->setTimeout(Poco::Timespan(kRequestTimeout.count(), 0));
  server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(config), *pool_, *socket, params);
}

MetricsServer::~MetricsServer() {
  if (server_) server_->stopAll(true);
  server_.reset();
  if (pool_) pool_->joinAll();
}

void MetricsServer::start() {
  server_->start();
}

void MetricsServer::stop() {
  server_->stopAll(true);
}

}  // namespace estafette::metrics_program
