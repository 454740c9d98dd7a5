// notices.h: what courierd persists and reports after recipients finish: the DSNs (bounces per
// NOTIFY, success notices for delivered recipients that asked, delay warnings, bounces of
// expired mail behind held destinations) and then mark_done or remove in the queue. A notice is
// written to the queue as a new message with the null sender (none for a null-sender original)
// and handed to Parking like any new mail.
//
// A notice that cannot be queued (a full or failing disk) is never lost: the recipients it
// reports are not marked done and the message stays in the queue until the notice is queued,
// retried on a timer (1 s doubling up to retry_base); a restart meanwhile finds them not done
// and tries them again, which reports them again.
//
// Loop thread only. Notices borrows the loop, the config, the queue backend, the scheduler and
// Parking (all outlive it); it owns the notices waiting for a retry and their timer. The
// routing maps (a bounce to a local sender goes where its aliases lead) come from set_router(),
// called before the first notice and after every reload. Queue calls block on fsync on this
// thread (notices are rare).
// Errors: nothing throws; a notice that cannot be queued, or a queue update that fails, is
// logged (logger "courierd") and the work goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "courierd/dsn.h"
#include "courierd/parking.h"
#include "courierd/scheduler.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"
#include "lib/queue/backend.h"
#include "lib/routing/router.h"

namespace estafette::courierd {

class Notices final {
 public:
  // A retry queued notices: the scheduler may have work.
  using Retried = std::function<void()>;

  Notices(event::Loop& loop, const config::Config& config, queue::Backend& backend,
          Scheduler& scheduler, Parking& parking, Retried on_retried);
  ~Notices();
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
  // (Backend::set_warned) so that a restarted courierd does not warn again. One that cannot be
  // queued is due again after retry_base (Scheduler::retry_delay_warning).
  void send_delay_warnings(Time now);
  // The message is still queued only because a notice about it waits for a retry (the
  // scheduler may have forgotten it): it must not be scheduled again.
  bool holds(const queue::QueueId& id) const { return held_.count(id) > 0; }

 private:
  // A notice to queue, and the recipients it reports (marked done once it is queued).
  struct Notice {
    std::vector<DsnRecipient> recipients;
    std::vector<std::size_t> indexes;
    std::int64_t retry_until = 0;
  };
  // A message kept in the queue for notices that could not be queued yet.
  struct Held {
    queue::StoredMessage original;
    std::vector<Notice> notices;
    bool finished = false;  // no recipient left: remove it once its notices are queued
    bool durable = false;   // mark done with an fsync even when it is removed next
  };
  // Queues each notice (a failed one waits in held_ for a retry), marks done `done` and the
  // recipients of the notices queued (durably when the message stays), and removes the
  // message when `finished` and no notice about it waits. durable: mark done with an fsync
  // even when the message is removed next.
  void settle(const queue::StoredMessage& original, std::vector<Notice> notices,
              std::vector<std::size_t> done, bool finished, bool durable, Time now);
  void arm_retry();
  void retry();
  // Queues one notice (all recipients share its action) to the original's sender, with the
  // null sender; none when the original had the null sender. False if it could not be queued.
  bool send_notice(const queue::StoredMessage& original,
                   const std::vector<DsnRecipient>& recipients, Time now,
                   std::int64_t retry_until = 0);
  // The bounced recipients whose NOTIFY asks for a failure notice (logs the others).
  // (The indexes of the recipients it reports go to the notice's indexes.)
  Notice bounce_notice(const queue::Envelope& env, const std::vector<Bounce>& bounced,
                       const std::string& remote_mta);

  event::Loop& loop_;
  const config::Config& config_;
  queue::Backend& backend_;
  Scheduler& scheduler_;
  Parking& parking_;
  Retried on_retried_;
  std::shared_ptr<const routing::Router> router_;
  std::unordered_map<queue::QueueId, Held> held_;
  event::TimerId retry_timer_ = 0;
  Millis retry_delay_{0};  // the next retry's wait; 0 = the first
};

}  // namespace estafette::courierd
