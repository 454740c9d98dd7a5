// parking.h: MX parking, the way into courierd's scheduler. Before a message enters the
// scheduler, the MX sites of its remote domains are looked up (Sites, mx_sites.h, on this loop;
// usually kept from an earlier answer): the message waits here until every lookup has answered,
// failed or timed out (then its domain is the key), never longer, and then enters the scheduler
// with the destinations its sites give (route()). Parking also routes mail that re-enters
// without a lookup (a released hold: route_known()) and shows the parked messages to mailq.
//
// Loop thread only. Parking borrows the loop, the config, the scheduler and the queue backend
// (all outlive it); it owns Sites and the parked messages. The routing maps come from
// set_router(), called before the first schedule() and after every reload.
// Errors: nothing throws after construction; a message with every recipient done (a crash kept
// it from being removed) is removed from the queue, failures logged (logger "courierd").
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "courierd/mx_sites.h"
#include "courierd/scheduler.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"
#include "lib/queue/backend.h"
#include "lib/routing/router.h"

namespace estafette::courierd {

class Parking final {
 public:
  // A parked message has entered the scheduler (its last lookup answered): time to pump.
  using Added = std::function<void()>;

  Parking(event::Loop& loop, const config::Config& config, Scheduler& scheduler,
          queue::Backend& backend, Added on_added);
  Parking(const Parking&) = delete;
  Parking& operator=(const Parking&) = delete;

  void set_router(std::shared_ptr<const routing::Router> router) { router_ = std::move(router); }
  // Starts resolving the destinations file's domains (Sites::start).
  void start();
  // Shutdown: messages whose lookups answer from now on stay out of the scheduler (they are
  // still on disk: the next start finds them).
  void stop() { stopped_ = true; }

  // Adds the message to the scheduler with its MX sites: at once when every site is kept (the
  // caller pumps), else once the lookups have answered (then on_added runs). A message already
  // queued or parked is ignored. recovered: found by the start-up scan (logged so).
  void schedule(queue::StoredMessage message, bool recovered);
  // The message is in the scheduler or parked here.
  bool known(const queue::QueueId& id) const;

  // The destination of a recipient with the MX sites known now, for mail that re-enters
  // without a lookup (a released hold): a domain whose answer has expired is its own key until
  // its next lookup.
  Destination route_known(const std::string& recipient, bool program);

  // mailq: the parked messages, their pending recipients Ready (or Held) under their domain.
  std::vector<QueuedMessage> snapshot() const;

 private:
  // A message waiting for the MX sites of its domains.
  struct Parked {
    queue::StoredMessage message;
    bool recovered = false;
    std::size_t lookups = 0;                            // still to answer
    std::unordered_map<std::string, std::string> keys;  // domain -> site (or the domain)
  };

  void on_site(const queue::QueueId& id, const std::string& domain, const std::string& key);
  void add(queue::StoredMessage message, bool recovered,
           const std::unordered_map<std::string, std::string>& keys);
  // The destination of a recipient with its domain's MX site from `keys`.
  Destination route(const std::string& recipient, bool program,
                    const std::unordered_map<std::string, std::string>& keys) const;

  const config::Config& config_;
  Scheduler& scheduler_;
  queue::Backend& backend_;
  Added on_added_;
  std::shared_ptr<const routing::Router> router_;
  Sites sites_;
  std::unordered_map<queue::QueueId, Parked> parked_;
  bool stopped_ = false;
};

}  // namespace estafette::courierd
