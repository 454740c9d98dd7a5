#include "courierd/intake.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "courierd/log_fields.h"
#include "lib/base/log.h"
#include "lib/base/net.h"
#include "lib/base/paths.h"
#include "lib/ipc/messages.h"
#include "lib/queue/queue_id.h"

namespace estafette::courierd {

namespace {

Poco::Logger& logger() {
  return base::log("courierd");
}

}  // namespace

Intake::Intake(event::Loop& loop, const config::Config& config, queue::Backend& backend,
               Parking& parking, AdminService& admin, Queued on_queued, RescanRequested on_rescan)
    : loop_(loop),
      config_(config),
      backend_(backend),
      parking_(parking),
      admin_(admin),
      on_queued_(std::move(on_queued)),
      on_rescan_(std::move(on_rescan)) {}

Intake::~Intake() {
  acceptor_.reset();
}

void Intake::listen() {
  const std::string path = config_.courierd_socket();
  if (!base::make_dirs(config_.run_dir()))
    throw std::runtime_error("cannot create " + config_.run_dir() + ": " + base::errno_text(errno));
  // Replaces a stale socket from an earlier run; throws std::system_error naming the path.
  listener_ = base::listen_unix(path, 64);
  // Until EAGAIN on each wake-up (batch 0), as before.
  acceptor_ = std::make_unique<event::Acceptor>(
      loop_, listener_.get(), event::Acceptor::Options{.batch = 0, .logger = "courierd"},
      [this](base::UniqueFd fd, const sockaddr_storage&, socklen_t) { on_accept(std::move(fd)); });
  logger().information("listening socket=" + path);
}

void Intake::stop() {
  stopped_ = true;
  acceptor_.reset();
  if (listener_) {
    listener_.reset();
    ::unlink(config_.courierd_socket().c_str());
  }
  for (auto& [id, c] : clients_) closed_.push_back(std::move(c));
  clients_.clear();
}

void Intake::on_accept(base::UniqueFd fd) {
  std::uint64_t id = next_client_++;
  clients_[id] = std::make_unique<ipc::Channel>(
      loop_, std::move(fd), [this, id](const ipc::Frame& f) { on_frame(id, f); },
      [this, id] { drop_client(id); });
}

void Intake::drop_client(std::uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  // Called from inside the channel: destroy it later, outside its callback.
  closed_.push_back(std::move(it->second));
  clients_.erase(it);
  if (reap_posted_) return;
  reap_posted_ = true;
  loop_.post(guard_.wrap([this] {
    reap_posted_ = false;
    closed_.clear();
  }));
}

void Intake::on_frame(std::uint64_t client, const ipc::Frame& frame) {
  if (auto m = ipc::decode_new_message(frame)) {
    on_new_message(m->queue_id);
    return;
  }
  if (auto r = ipc::decode_rescan(frame)) {
    if (stopped_) return;  // the next start scans anyway
    logger().warning("an esmtpd lost " + std::to_string(r->lost) +
                     " notice(s) of new mail: rescanning the queue");
    if (on_rescan_) on_rescan_();
    return;
  }
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  if (admin_.handle(*it->second, frame)) return;
  logger().warning("unexpected frame from a client type=" + std::to_string(frame.type));
}

void Intake::on_new_message(const queue::QueueId& id) {
  if (stopped_) return;  // still on disk: the next start finds it
  if (!queue::valid_queue_id(id)) {
    logger().warning("bad queue id in NewMessage: " + log_quoted(id));
    return;
  }
  if (parking_.known(id)) return;
  auto m = backend_.load(id);
  if (!m) {
    logger().warning("new message not found id=" + id);
    return;
  }
  parking_.schedule(std::move(*m), false);
  on_queued_();
}

}  // namespace estafette::courierd
