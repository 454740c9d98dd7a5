// courierd.h: the queue manager daemon's I/O side. It rebuilds the scheduler's index from the
// queue at start-up, takes NewMessage notices from esmtpd on a unix socket, runs the delivery
// modules as children (ModuleProcess), hands them jobs from the Scheduler and persists what
// their results mean (mark_done, remove, bounces injected as new messages). Any number of esmtpd
// processes may be connected at once (one channel each). The esmtp module runs as a pool of
// esmtpclient_processes processes (one event loop each, so delivery uses every CPU): the
// scheduler sees one module "esmtp" and its limits count the whole pool; each job goes to the
// ready process with the fewest jobs in flight (ties in turn). The local module is one process.
// The same socket takes the admin requests of `estafette mailq`, `flush`, `hold`, `release`,
// `cancel` and `delete` (QueueListRequest, FlushRequest, QueueOpRequest), answered at once from
// the scheduler's in-memory index (hold/release are recorded in the queue first).
// Before a message enters the scheduler, the MX sites of its remote domains are looked up
// (Sites, on this loop; usually kept from an earlier answer): the message waits in parked_ until
// every lookup has answered, failed or timed out (then its domain is the key), never longer.
//
// Loop thread only; courierd has one thread. Courierd borrows the loop, the config and the
// queue backend (all outlive it); it owns the listener, client channels and module processes.
// Queue calls block on fsync on this thread: courierd serves no sessions, so that is acceptable.
// Errors: start() throws std::runtime_error when the socket cannot be set up; everything later
// is logged (logger "courierd") and handled by retrying.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "courierd/dsn.h"
#include "courierd/module_process.h"
#include "courierd/mx_sites.h"
#include "courierd/scheduler.h"
#include "lib/base/fd.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"
#include "lib/ipc/channel.h"
#include "lib/queue/backend.h"
#include "lib/routing/router.h"

namespace estafette::courierd {

class Courierd final {
 public:
  Courierd(event::Loop& loop, const config::Config& config, std::string config_path,
           queue::Backend& backend);
  ~Courierd();
  Courierd(const Courierd&) = delete;
  Courierd& operator=(const Courierd&) = delete;

  // Recovers the queue, listens, starts the modules and installs the signal handlers.
  void start();

 private:
  struct Running {
    Job job;
    std::int64_t started_ms = 0;
  };
  // A message waiting for the MX sites of its domains.
  struct Parked {
    queue::StoredMessage message;
    bool recovered = false;
    std::size_t lookups = 0;                            // still to answer
    std::unordered_map<std::string, std::string> keys;  // domain -> site (or the domain)
  };

  // SIGHUP: reload the routing maps (a broken file keeps the old ones) and pass it on to the
  // modules.
  void reload();
  void recover();
  void listen();
  void on_accept();
  void on_client_frame(std::uint64_t client, const ipc::Frame& frame);
  // mailq: one QueueEntry frame per queued message, then QueueListEnd, to that client.
  void send_queue_list(ipc::Channel& client);
  // flush: the scope becomes ready now; replies with how many recipients did.
  void flush(ipc::Channel& client, const ipc::FlushRequest& request);
  // hold/release/cancel/delete: applies it, replies with QueueOpReply.
  void queue_op(ipc::Channel& client, const ipc::QueueOpRequest& request);
  ipc::QueueOpReply set_held(const ipc::QueueOpRequest& request, Time now);
  // After cancel/delete (or a requeue of a message being removed): logs, bounces, and records
  // the finished recipients durably before removing the message.
  void finish_removal(const RemovalReport& removal, Time now);
  void drop_client(std::uint64_t id);
  void on_new_message(const queue::QueueId& id);
  // Looks up the MX sites the message needs (parking it meanwhile), then add()s it.
  void schedule(queue::StoredMessage message, bool recovered);
  void on_site(const queue::QueueId& id, const std::string& domain, const std::string& key);
  void add(queue::StoredMessage message, bool recovered,
           const std::unordered_map<std::string, std::string>& keys);
  // The destination of a recipient with its domain's MX site from `keys`.
  Destination route(const std::string& recipient, bool program,
                    const std::unordered_map<std::string, std::string>& keys) const;
  // route() with the MX sites known now, for mail that re-enters without a lookup (a released
  // hold): a domain whose answer has expired is its own key until its next lookup.
  Destination route_known(const std::string& recipient, bool program);
  void pump();
  void dispatch(const Job& job, Time now);
  void on_result(const std::string& module, const ipc::DeliverResult& result);
  void on_module_down(const std::string& module, const std::vector<std::uint64_t>& lost);
  // After a job or an expiry: the notices (bounces per NOTIFY; success notices, with
  // on_delivery as the action, for delivered recipients that asked; nullopt: none, the next hop
  // reports), then mark done or remove. replies: the module's reply per recipient index.
  void apply(const queue::StoredMessage& original, const JobReport& report,
             const std::string& remote_mta, Time now, std::optional<DsnAction> on_delivery,
             const std::vector<std::string>& replies);
  void schedule_expiry();
  void expire_held(Time now);
  // Queues one notice (all recipients share its action) to the original's sender, with the
  // null sender; none when the original had the null sender. False if it could not be queued.
  bool send_notice(const queue::StoredMessage& original,
                   const std::vector<DsnRecipient>& recipients, Time now,
                   std::int64_t retry_until = 0);
  void send_delay_warnings(Time now);  // those the scheduler has due
  // The bounced recipients whose NOTIFY asks for a failure notice (logs the others).
  std::vector<DsnRecipient> bounce_recipients(const queue::Envelope& env,
                                              const std::vector<Bounce>& bounced,
                                              const std::string& remote_mta);
  void reap_children();
  void begin_shutdown();
  void stop_modules();
  void maybe_exit();
  // The ready process of a module's pool to give the next job, or nullptr when none is ready.
  ModuleProcess* pick(const std::string& name);
  bool any_ready(const std::string& name) const;

  event::Loop& loop_;
  const config::Config& config_;
  std::string config_path_;
  queue::Backend& backend_;
  std::mt19937_64 random_;
  std::shared_ptr<const routing::Router> router_;
  Scheduler scheduler_;
  Sites sites_;
  std::unordered_map<queue::QueueId, Parked> parked_;
  base::UniqueFd listener_;
  std::map<std::string, std::vector<std::unique_ptr<ModuleProcess>>> modules_;  // pools by name
  std::map<std::string, std::size_t> next_pick_;  // per pool: where pick() starts looking, so
                                                  // that ties take turns
  std::unordered_map<std::uint64_t, std::unique_ptr<ipc::Channel>> clients_;
  std::vector<std::unique_ptr<ipc::Channel>> closed_clients_;
  std::uint64_t next_client_ = 1;
  std::unordered_map<JobId, Running> running_;
  event::TimerId wakeup_timer_ = 0;
  event::TimerId expiry_timer_ = 0;
  event::TimerId reap_timer_ = 0;
  event::TimerId grace_timer_ = 0;
  bool stopping_ = false;
  bool modules_stopped_ = false;
  bool stopped_ = false;
};

}  // namespace estafette::courierd
