// intake.h: courierd's socket (<state>/run/courierd.sock). It accepts any number of clients:
// esmtpd processes (one channel each, NewMessage{id} after every commit) and the `estafette`
// admin tool, whose requests go to AdminService. A NewMessage makes the new message's queue
// record load (Backend::load) and go to Parking, which adds it to the scheduler once the MX
// sites of its domains are known; then on_queued runs. A Rescan (an esmtpd lost NewMessages)
// runs on_rescan, which looks for the messages courierd does not know (Courierd::rescan).
//
// Loop thread only. Intake borrows the loop, the config, the queue backend, Parking and
// AdminService (all outlive it); it owns the listening socket and the client channels (a
// closed channel is destroyed in a posted callback, outside its own callbacks). The socket is
// watched by an event::Acceptor: out of fds or memory, it pauses instead of spinning.
// Errors: listen() throws std::runtime_error (or std::system_error naming the path) when the
// socket cannot be set up; later errors (accept, a bad queue id, a message not found) are
// logged (logger "courierd") and skipped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "courierd/admin_service.h"
#include "courierd/parking.h"
#include "lib/base/fd.h"
#include "lib/config/config.h"
#include "lib/event/acceptor.h"
#include "lib/event/loop.h"
#include "lib/ipc/channel.h"
#include "lib/queue/backend.h"

namespace estafette::courierd {

class Intake final {
 public:
  // A NewMessage went to Parking: the scheduler may have work.
  using Queued = std::function<void()>;
  // An esmtpd lost notices of new mail: rescan the queue.
  using RescanRequested = std::function<void()>;

  Intake(event::Loop& loop, const config::Config& config, queue::Backend& backend, Parking& parking,
         AdminService& admin, Queued on_queued, RescanRequested on_rescan);
  ~Intake();
  Intake(const Intake&) = delete;
  Intake& operator=(const Intake&) = delete;

  // Binds the socket (replacing a stale one from an earlier run) and accepts on the loop.
  void listen();
  // Shutdown: closes and unlinks the socket and drops the clients; a NewMessage still arriving
  // is ignored (the message is on disk: the next start finds it).
  void stop();

 private:
  void on_accept(base::UniqueFd fd);
  void on_frame(std::uint64_t client, const ipc::Frame& frame);
  void on_new_message(const queue::QueueId& id);
  void drop_client(std::uint64_t id);

  event::Loop& loop_;
  const config::Config& config_;
  queue::Backend& backend_;
  Parking& parking_;
  AdminService& admin_;
  Queued on_queued_;
  RescanRequested on_rescan_;
  base::UniqueFd listener_;
  std::unique_ptr<event::Acceptor> acceptor_;  // watches listener_; destroyed before it closes
  std::unordered_map<std::uint64_t, std::unique_ptr<ipc::Channel>> clients_;
  std::vector<std::unique_ptr<ipc::Channel>> closed_;  // destroyed outside their callbacks
  std::uint64_t next_client_ = 1;
  bool reap_posted_ = false;  // a posted callback will destroy closed_
  bool stopped_ = false;
  event::CallbackGuard guard_;  // the posted destruction of closed_ dies with Intake
};

}  // namespace estafette::courierd
