// module_process.h: one delivery module (estafette-local, estafette-esmtpclient) run by
// courierd as a child process, talking over a socketpair with framed ipc messages. The child
// gets `--fd N` (and `--config PATH` when courierd has one). A module that exits or closes its
// channel is restarted after a short, growing delay; the jobs it had are handed back.
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
#include <set>
#include <string>
#include <vector>

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

  ModuleProcess(event::Loop& loop, std::string name, std::string program, std::string config_path,
                Callbacks callbacks);
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
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::size_t jobs() const { return jobs_.size(); }

 private:
  void on_frame(const ipc::Frame& frame);
  void channel_down();
  void schedule_restart();

  event::Loop& loop_;
  std::string name_;
  std::string program_;
  std::string config_path_;
  Callbacks callbacks_;
  std::unique_ptr<ipc::Channel> channel_;
  std::vector<std::unique_ptr<ipc::Channel>> closed_;  // destroyed outside their callbacks
  pid_t pid_ = -1;
  bool ready_ = false;
  bool stopping_ = false;
  std::set<std::uint64_t> jobs_;
  unsigned failures_ = 0;
  event::Clock::time_point started_;
  event::TimerId restart_timer_ = 0;
  event::TimerId reap_timer_ = 0;
};

}  // namespace estafette::courierd
