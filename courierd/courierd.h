// courierd.h: the queue manager daemon, wired from its components. Courierd owns the
// scheduler (scheduler.h, pure) and the routing maps, builds the components around them and
// runs the pump that turns the scheduler's jobs into deliveries:
//   Intake (intake.h)              the socket: NewMessage from esmtpd, admin requests passed on
//   AdminService (admin_service.h) mailq/flush/hold/release/cancel/delete; scheduler <-> IPC
//   Parking (parking.h)            MX parking: messages wait for their domains' MX sites
//   ModulePool (module_pool.h)     the module processes: dispatch, results, module death
//   Notices (notices.h)            DSNs, expiry, delay warnings; mark_done/remove in the queue
// After an esmtpd lost notices of new mail (Intake: Rescan), courierd rescans the queue on the
// loop, kRescanBatch messages per turn, for the messages it does not know (not in Parking or the
// scheduler, not kept by Notices), so mail answered 250 never waits for a restart.
// At start it recovers the queue (every message goes through Parking), listens, starts the
// modules and installs the signal handlers: SIGHUP reloads the routing maps (a broken file keeps
// the old ones) and passes it on to the local module; SIGTERM/SIGINT stop: the socket goes, jobs
// in flight get a grace period (3 s) to report, then the modules are told to go (and killed after
// another grace period), then the loop stops. SIGUSR2 (estafetted's reload, before it starts a
// courierd with the new config) is the same with 60 s for the jobs in flight.
//
// Loop thread only; courierd has one thread. Courierd borrows the loop, the config and the
// queue backend (all outlive it); it owns the scheduler, the router and the components. Queue
// calls block on fsync on this thread: courierd serves no sessions, so that is acceptable.
// Errors: start() throws std::runtime_error when the socket cannot be set up (and
// config::ConfigError when the routing maps cannot be read); everything later is logged
// (logger "courierd") and handled by retrying.
#pragma once

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "courierd/admin_service.h"
#include "courierd/intake.h"
#include "courierd/module_pool.h"
#include "courierd/notices.h"
#include "courierd/parking.h"
#include "courierd/scheduler.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"
#include "lib/queue/backend.h"
#include "lib/routing/router.h"

namespace estafette::courierd {

class Courierd final {
 public:
  // spawner: see ModulePool (null: courierd forks its modules itself).
  Courierd(event::Loop& loop, const config::Config& config, std::string config_path,
           queue::Backend& backend, daemon::RootSpawner* spawner = nullptr);
  ~Courierd();
  Courierd(const Courierd&) = delete;
  Courierd& operator=(const Courierd&) = delete;

  // Recovers the queue, listens, starts the modules and installs the signal handlers.
  void start();

 private:
  void set_router(std::shared_ptr<const routing::Router> router);
  void reload();
  void recover();
  // Starts a rescan, or asks for another one after the one running (its list may be older than
  // the loss). rescan_step() loads one batch, then posts the next.
  void rescan();
  void rescan_step();
  // Hands out every job the scheduler allows now (after the delay warnings due) and arms the
  // wakeup timer for the next retry or hold that falls due.
  void pump();
  // After a job's result or a module's death: pump, or while stopping see whether it may exit.
  void settle();
  void schedule_expiry();
  void begin_shutdown(std::chrono::seconds grace);
  void stop_modules();
  void maybe_exit();

  event::Loop& loop_;
  const config::Config& config_;
  queue::Backend& backend_;
  std::mt19937_64 random_;
  std::shared_ptr<const routing::Router> router_;
  Scheduler scheduler_;
  Parking parking_;
  Notices notices_;
  ModulePool modules_;
  AdminService admin_;
  Intake intake_;
  std::vector<queue::QueueId> rescan_ids_;  // what the running rescan still has to look at
  bool rescanning_ = false;
  bool rescan_again_ = false;
  std::size_t rescan_found_ = 0;
  event::CallbackGuard guard_;  // posted rescan steps die with Courierd
  event::TimerId wakeup_timer_ = 0;
  event::TimerId expiry_timer_ = 0;
  event::TimerId grace_timer_ = 0;
  bool stopping_ = false;
  bool modules_stopped_ = false;
  bool stopped_ = false;
};

}  // namespace estafette::courierd
