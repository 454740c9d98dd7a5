// child_supervisor.h: child processes kept running: estafetted's daemons (supervisor/) and
// courierd's delivery modules (courierd/module_process.h) are both a ChildProcess.
// - spawn(): fork + exec with an empty signal mask (the parent's loop blocks its signals for its
//   signalfd), chosen fds kept across exec (every other fd above 2 closed), and optionally root
//   restored first.
// - Backoff: the growing delay before a restart, so that a child that cannot start does not
//   spin; it starts over once a child has run for a while, or when its owner says it works.
// - ChildProcess: one child: start, restart after its exit with the Backoff, stop (a signal now,
//   SIGKILL after a grace period); it tells its owner through callbacks, and logs nothing itself.
// - ChildReaper: SIGCHLD on the loop, waitpid() of every child that ended.
//
// Loop thread only (spawn() may be called from any single-threaded context). The owner of a
// ChildProcess owns the child's pid: it reports the child's end through child_exited() (with a
// ChildReaper, or with its own SIGCHLD handler) and stops it before it lets the loop end.
// Callbacks run on the loop and may call back into the ChildProcess. Errors: nothing throws
// after construction; failed starts are reported through the callbacks and retried.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/event/loop.h"

namespace estafette::daemon {

struct RestartPolicy {
  std::chrono::milliseconds first{500};           // the delay after the first failure
  std::chrono::milliseconds max{30000};           // doubling per failure up to this
  std::chrono::milliseconds stable_after{30000};  // a child that ran longer starts over at `first`
};

// estafetted's daemons: 0.5 s doubling to 30 s.
inline constexpr RestartPolicy kDaemonRestart{std::chrono::milliseconds(500),
                                              std::chrono::milliseconds(30000),
                                              std::chrono::milliseconds(30000)};
// courierd's delivery modules: 250 ms doubling to 32 s; a delivery result also starts over.
inline constexpr RestartPolicy kModuleRestart{std::chrono::milliseconds(250),
                                              std::chrono::milliseconds(32000),
                                              std::chrono::milliseconds(30000)};

// The delays before restarts. Pure: times are passed in.
class Backoff final {
 public:
  explicit Backoff(RestartPolicy policy) : policy_(policy), delay_(policy.first) {}
  // The delay before restarting a child started at `started` that ended (or failed to start)
  // at `now`; the next one is twice as long, up to the policy's max.
  std::chrono::milliseconds next(event::Clock::time_point started, event::Clock::time_point now);
  // The child works: the next delay is the first one again.
  void reset() { delay_ = policy_.first; }

 private:
  RestartPolicy policy_;
  std::chrono::milliseconds delay_;
};

struct Command {
  std::string path;               // the program to exec
  std::vector<std::string> args;  // argv[1...]
  std::vector<int> keep_fds;      // inherited across exec (FD_CLOEXEC cleared in the child)
  bool restore_root = false;      // courierd's modules: root again, when it is the real uid
  // Who starts it: empty, spawn() (fork + exec); else this (courierd's RootSpawner for
  // estafette-local), which returns the pid or -1 with errno set.
  std::function<pid_t(const Command&)> launcher = {};
};

// Forks and execs command. In the child: an empty signal mask, keep_fds kept and every other fd
// above 2 closed (base::close_fds_from), root restored
// when asked (real uid root, effective not; base::restore_root()); a failure there writes
// "PARENT: cannot run PATH: reason" (or "PARENT: cannot restore root for PATH") to stderr and
// exits 127. Returns the child's pid, or -1 with errno set when the program cannot be executed
// (access(X_OK), checked before the fork so that the caller can log the path) or fork() failed.
pid_t spawn(const Command& command, const std::string& parent);

class ChildProcess final {
 public:
  struct Callbacks {
    // Before every start: what to run. May throw std::exception (for example a socketpair that
    // failed): that start fails with e.what() as the reason.
    std::function<Command()> command = {};
    // The child runs (as pid).
    std::function<void(pid_t pid)> started = {};
    // A start failed ("cannot run PATH: reason"); it is tried again after retry_in.
    std::function<void(const std::string& reason, std::chrono::milliseconds retry_in)>
        start_failed = {};
    // The child ended with wait status `status`; restart_in: when it starts again, or nullopt
    // after stop().
    std::function<void(pid_t pid, int status, std::optional<std::chrono::milliseconds> restart_in)>
        exited = {};
    // stop()'s grace period is over and the child still runs: it is sent SIGKILL now.
    std::function<void(pid_t pid)> killing = {};
  };

  // parent: the name in the child's error messages ("estafetted").
  ChildProcess(event::Loop& loop, std::string parent, RestartPolicy policy, Callbacks callbacks);
  ~ChildProcess();  // cancels the restart and the kill timers; the child itself is left alone
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts the child now, unless it runs, a restart is pending or stop() was called.
  void start();
  // For every reaped child: true when it was this one (then it is restarted after the backoff
  // delay, unless stopping).
  bool child_exited(pid_t pid, int status);
  // No more restarts; signo (0: none) to the child now, and SIGKILL when it still runs after
  // grace (zero: never).
  void stop(int signo, std::chrono::milliseconds grace);
  // Sends signo to the child when it runs.
  void signal(int signo) const;
  // The child works (courierd: it delivered): the next restart waits the first delay again.
  void reset_backoff() { backoff_.reset(); }

  pid_t pid() const { return pid_; }  // -1 when not running
  bool running() const { return pid_ > 0; }
  bool stopping() const { return stopping_; }

 private:
  void restart_later(std::chrono::milliseconds delay);

  event::Loop& loop_;
  std::string parent_;
  Callbacks callbacks_;
  Backoff backoff_;
  pid_t pid_ = -1;
  bool stopping_ = false;
  event::Clock::time_point started_{};
  event::TimerId restart_timer_ = 0;
  event::TimerId kill_timer_ = 0;
};

// Takes SIGCHLD on the loop; at each one waitpid()s every child that ended and calls
// on_exit(pid, status) for each, then after_round() once. The process's only SIGCHLD handler:
// its owner hands the exits to its ChildProcesses.
class ChildReaper final {
 public:
  ChildReaper(event::Loop& loop, std::function<void(pid_t pid, int status)> on_exit,
              std::function<void()> after_round = {});
  ChildReaper(const ChildReaper&) = delete;
  ChildReaper& operator=(const ChildReaper&) = delete;

  // What SIGCHLD does; callable directly (a blocking wait elsewhere may have raced it).
  void reap();

 private:
  std::function<void(pid_t, int)> on_exit_;
  std::function<void()> after_round_;
  event::CallbackGuard guard_;  // the loop's SIGCHLD handler outlives us
};

}  // namespace estafette::daemon
