// notices.h: what courierd persists and reports after recipients finish: the DSNs (bounces per
// NOTIFY, success notices for delivered recipients that asked, delay warnings, bounces of
// expired mail behind held destinations) and then mark_done or remove in the queue. A notice is
// written to the queue as a new message with the null sender (none for a null-sender original)
// and handed to Parking like any new mail.
//
// Loop thread only. Notices borrows the config, the queue backend, the scheduler and Parking
// (all outlive it); it owns nothing else. The routing maps (a bounce to a local sender goes
// where its aliases lead) come from set_router(), called before the first notice and after
// every reload. Queue calls block on fsync on this thread (notices are rare).
// Errors: nothing throws; a notice that cannot be queued, or a queue update that fails, is
// logged (logger "courierd") and the work goes on.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "courierd/dsn.h"
#include "courierd/parking.h"
#include "courierd/scheduler.h"
#include "lib/config/config.h"
#include "lib/queue/backend.h"
#include "lib/routing/router.h"

namespace estafette::courierd {

class Notices final {
 public:
  Notices(const config::Config& config, queue::Backend& backend, Scheduler& scheduler,
          Parking& parking);
  Notices(const Notices&) = delete;
  Notices& operator=(const Notices&) = delete;

  void set_router(std::shared_ptr<const routing::Router> router) { router_ = std::move(router); }

  // After a job: the notices (bounces per NOTIFY; success notices, with on_delivery as the
  // action, for delivered recipients that asked; nullopt: none, the next hop reports), then
  // mark done or remove. replies: the module's reply per recipient index.
  void apply(const queue::StoredMessage& original, const JobReport& report,
             const std::string& remote_mta, Time now, std::optional<DsnAction> on_delivery,
             const std::vector<std::string>& replies);
  // After cancel/delete (or a requeue of a message being removed): logs, bounces, and records
  // the finished recipients durably (fsync) before removing the message, so a crash cannot
  // bring back mail the administrator removed.
  void finish_removal(const RemovalReport& removal, Time now);
  // Mail waiting behind a held destination that has expired (Scheduler::expire_held): logged,
  // bounced and applied.
  void expire_held(Time now);
  // The delay warnings the scheduler has due, each recorded in the queue once sent
  // (Backend::set_warned) so that a restarted courierd does not warn again.
  void send_delay_warnings(Time now);

 private:
  // Queues one notice (all recipients share its action) to the original's sender, with the
  // null sender; none when the original had the null sender. False if it could not be queued.
  bool send_notice(const queue::StoredMessage& original,
                   const std::vector<DsnRecipient>& recipients, Time now,
                   std::int64_t retry_until = 0);
  // The bounced recipients whose NOTIFY asks for a failure notice (logs the others).
  std::vector<DsnRecipient> bounce_recipients(const queue::Envelope& env,
                                              const std::vector<Bounce>& bounced,
                                              const std::string& remote_mta);

  const config::Config& config_;
  queue::Backend& backend_;
  Scheduler& scheduler_;
  Parking& parking_;
  std::shared_ptr<const routing::Router> router_;
};

}  // namespace estafette::courierd
