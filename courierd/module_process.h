// module_process.h: one delivery module (estafette-local, estafette-esmtpclient) run by
// courierd as a child process, talking over a socketpair with framed ipc messages. The child
// gets `--fd N` (and `--config PATH` when courierd has one). A module that exits or closes its
// channel is restarted after a short, growing delay (daemon::kModuleRestart: 250 ms doubling to
// 32 s, from 250 ms again after 30 s of running or a delivery result); the jobs it had are handed
// back. The process itself is a daemon::ChildProcess (lib/daemon/child_supervisor.h).
//
// Loop thread only. courierd owns the ModuleProcess; it owns the channel and the child's pid
// (courierd reaps children on SIGCHLD and reports them through child_exited()).
// Errors: spawn failures are logged and retried like a crash; nothing throws after construction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/base/fd.h"
#include "lib/daemon/child_supervisor.h"
#include "lib/daemon/root_spawner.h"
#include "lib/event/loop.h"
#include "lib/ipc/channel.h"
#include "lib/ipc/messages.h"

namespace estafette::courierd {

class ModuleProcess final {
 public:
  struct Callbacks {
    std::function<void()> on_ready;                                // ModuleReady arrived
    std::function<void(const ipc::DeliverResult&)> on_result;      // for a job it was sent
    std::function<void(std::vector<std::uint64_t> lost)> on_down;  // channel gone; jobs lost
  };

  // spawner: when set (courierd has dropped root), the module is started by it, as its program
  // number spawner_index (the module starts as root), instead of by a fork of courierd.
  ModuleProcess(event::Loop& loop, std::string name, std::string program, std::string config_path,
                Callbacks callbacks, daemon::RootSpawner* spawner = nullptr,
                std::size_t spawner_index = 0);
  ~ModuleProcess();
  ModuleProcess(const ModuleProcess&) = delete;
  ModuleProcess& operator=(const ModuleProcess&) = delete;

  void start();
  // Sends a job; false when the module is not ready (the caller requeues the job).
  bool send(const ipc::Deliver& deliver);
  // Called for every reaped child; true when it was this module's (then it restarts it).
  bool child_exited(pid_t pid, int status);
  // Shutdown: closes the channel (the module exits on EOF) and stops restarting.
  void stop();

  const std::string& name() const { return name_; }
  bool ready() const { return ready_; }
  bool running() const { return child_.running(); }
  pid_t pid() const { return child_.pid(); }
  std::size_t jobs() const { return jobs_.size(); }

 private:
  daemon::Command command();
  void started(pid_t pid);
  void exited(pid_t pid, int status, std::optional<std::chrono::milliseconds> restart_in);
  void on_frame(const ipc::Frame& frame);
  void channel_down();

  event::Loop& loop_;
  std::string name_;
  std::string program_;
  std::string config_path_;
  Callbacks callbacks_;
  daemon::RootSpawner* spawner_;
  std::size_t spawner_index_;
  std::unique_ptr<ipc::Channel> channel_;
  std::vector<std::unique_ptr<ipc::Channel>> closed_;  // destroyed outside their callbacks
  bool closed_posted_ = false;                         // their destruction is posted
  base::UniqueFd ours_, theirs_;                       // the socketpair, between command() and fork
  bool ready_ = false;
  std::set<std::uint64_t> jobs_;
  daemon::ChildProcess child_;
  event::CallbackGuard guard_;  // posted callbacks die with the module
};

}  // namespace estafette::courierd
