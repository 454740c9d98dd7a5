// module_pool.h: courierd's delivery modules and the jobs in flight on them. Each module runs as
// a pool of processes (ModuleProcess): "esmtp" as esmtpclient_processes estafette-esmtpclient
// processes (one event loop each, so delivery uses every CPU), "local" as local_processes
// estafette-local processes. The scheduler sees one module per pool and its limits count the
// whole pool; each job goes to the ready process with the fewest jobs in flight, ties taking
// turns. A pool is paused in the scheduler while none of its processes is ready. The pool turns
// a module's DeliverResult into the scheduler's outcomes, logs one line per recipient
// (log_fields.h attempt_line: status sent, deferred, bounced, expired or deleted, with delays=
// from its own clock and the module's timing) and hands the report to Notices; a module's death
// requeues its jobs (finishing those of a message being removed).
//
// Loop thread only. ModulePool borrows the loop, the config, the scheduler and Notices (all
// outlive it); it owns the module processes and the record of the jobs in flight. courierd
// reaps its children on SIGCHLD through reap_children().
// Errors: nothing throws; a job that cannot be sent goes back to the scheduler, a module that
// dies is restarted by its ModuleProcess (logged, logger "courierd").
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "courierd/module_process.h"
#include "courierd/notices.h"
#include "courierd/scheduler.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"
#include "lib/ipc/messages.h"
#include "lib/metrics/shm_file.h"

namespace estafette::courierd {

// The programs of courierd's RootSpawner, by index.
inline constexpr std::size_t kSpawnerLocal = 0;
inline constexpr std::size_t kSpawnerEsmtp = 1;

class ModulePool final {
 public:
  // A process became ready, a job ended or a process went away: the scheduler may have work.
  using Changed = std::function<void()>;

  // Creates the pools' processes (not started yet) and pauses each module in the scheduler
  // until one of its processes is ready. config_path is passed on to the modules.
  // spawner: when courierd has dropped root, starts the modules (kSpawnerLocal, kSpawnerEsmtp).
  ModulePool(event::Loop& loop, const config::Config& config, std::string config_path,
             Scheduler& scheduler, Notices& notices, Changed on_change,
             daemon::RootSpawner* spawner = nullptr);
  ModulePool(const ModulePool&) = delete;
  ModulePool& operator=(const ModulePool&) = delete;

  // Starts every module's processes.
  void start();
  // Sends the job to a ready process of its module; without one, or when the send fails, the
  // job goes back to the scheduler (requeue).
  void dispatch(const Job& job, Time now);
  // SIGCHLD: reaps every exited child and tells its ModuleProcess (which restarts it).
  void reap_children();
  // SIGHUP: passed on to every module process (estafette-local reloads the mailbox maps,
  // estafette-esmtpclient writes its TLS report journal).
  void reload();

  // Shutdown: closes every module's channel (modules exit on EOF) and stops restarting them.
  void stop();
  // Shutdown, when the modules did not exit in time: SIGKILL and reap those still running.
  void kill_remaining();
  bool any_running() const;
  std::size_t in_flight() const { return running_.size(); }

 private:
  void on_result(const std::string& module, const ipc::DeliverResult& result);
  void on_module_down(const std::string& module, const std::vector<std::uint64_t>& lost);
  // The ready process of a module's pool to give the next job, or nullptr when none is ready.
  ModuleProcess* pick(const std::string& name);
  bool any_ready(const std::string& name) const;

  Scheduler& scheduler_;
  Notices& notices_;
  Changed on_change_;
  std::map<std::string, std::vector<std::unique_ptr<ModuleProcess>>> modules_;  // pools by name
  std::map<std::string, std::size_t> next_pick_;  // per pool: where pick() starts looking, so
                                                  // that ties take turns
  struct Running {
    Job job;
    Time dispatched;  // the hand-off to the module: where a and b of delays= meet
  };
  std::unordered_map<JobId, Running> running_;
  std::unique_ptr<metrics::Writer> metrics_;  // courierd's counters: results per destination
};

}  // namespace estafette::courierd
