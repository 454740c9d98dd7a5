// supervisor.h: estafetted's job: start the daemons (courierd, then esmtpd, as many esmtpd
// processes as esmtpd_processes asks for), know when each is up, restart one that dies (with a
// growing delay per process, so a daemon that cannot start does not spin), replace them all on
// reload without dropping a session or a message, and stop them all cleanly on SIGTERM/SIGINT.
//
// - Readiness: every child gets a pipe (`--ready-fd N`, lib/daemon/readiness.h) and says "ready"
//   once it serves, or "error REASON" before it exits. start() and replace() report once every
//   child they started is ready, or the first failure with the daemon's own reason, so that
//   `estafette start` and `estafette reload` can tell the admin what went wrong.
// - Replacement (reload): the programs of the new config replace the running ones. An
//   `overlap` program (esmtpd) starts its new processes first; only when all are ready do the old
//   ones get their drain signal (esmtpd: stop accepting, finish the open sessions) and end by
//   themselves, so nothing listening ever goes away. Any new one failing stops the new ones and
//   keeps the old ones: nothing changed. Then each sequential program (courierd: one per queue)
//   gets its drain signal (courierd: let the deliveries in flight report), and its successor
//   starts once it has exited.
// - Status: after every change the status file (lib/daemon/status_file.h) says per child
//   whether it is starting, running, draining or down, and why it is down (its own error).
// Each process is a daemon::ChildProcess (lib/daemon/child_supervisor.h) with estafetted's
// restart policy (0.5 s doubling to 30 s, from 0.5 s again after 30 s of running), reaped by a
// ChildReaper. Loop thread; the Supervisor owns its children's pids.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/fd.h"
#include "lib/daemon/child_supervisor.h"
#include "lib/event/loop.h"

namespace estafette::supervisor {

// A program to keep running, in `copies` processes.
struct Program {
  std::string name;               // sibling program, e.g. "estafette-esmtpd"
  std::vector<std::string> args;  // after "-c CONFIG"
  std::size_t copies = 1;
  std::vector<int> pass_fds;  // fds (owned by the caller) the program inherits across exec
  // Per copy (1..copies), at each start: more arguments and fds (esmtpd's listening sockets).
  // May throw std::exception: that start fails with the reason and is retried later.
  std::function<void(std::size_t copy, std::vector<std::string>& args, std::vector<int>& fds)>
      per_copy = {};
  // A copy of this generation ended by itself (not drained or stopped): esmtpd's sockets of
  // that copy are closed, so that connections do not wait for a process that may not come back.
  std::function<void(std::size_t copy)> exited = {};
  // Reload: the new processes start before the old ones are drained (true), or after the old
  // one has exited (false: courierd, the only reader of the queue).
  bool overlap = false;
  int drain_signal = SIGTERM;
  std::chrono::seconds drain_grace{10};  // then SIGKILL
};

// When a daily job runs next, in Unix seconds: the next 00:00:00 UTC after now plus `spread`
// seconds (a random delay, as RFC 8460 asks of reporters, so that not every server sends at once).
std::int64_t next_daily_run(std::int64_t now, std::int64_t spread);

// How long a start or a replacement may take before it counts as failed: courierd reads the
// whole queue before it is ready.
inline constexpr std::chrono::seconds kStartTimeout{300};

class Supervisor final {
 public:
  // ok, or the first failure: "estafette-esmtpd 1/2: <its reason>".
  using Outcome = std::function<void(bool ok, const std::string& error)>;

  // Each program is run with `-c config_path` when it is not empty. status_path: where the
  // status file goes (empty: none).
  Supervisor(event::Loop& loop, std::string config_path, std::string status_path = "");
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;
  ~Supervisor();

  // Takes SIGCHLD on the loop and starts every program in order; `done` once all are ready
  // or one failed (then the others keep running: the caller decides).
  void start(std::vector<Program> programs, Outcome done);
  // Reload: replaces the running programs by these (same names, same order), as the header
  // says; `done` when the new ones are all ready, or with the first failure. One at a time:
  // false (and nothing done) while a start or replacement is still in progress.
  bool replace(std::vector<Program> programs, Outcome done);
  bool busy() const { return operation_ != nullptr; }
  // Sends SIGTERM to every child (esmtpd first, courierd last), SIGKILL to one still running
  // after the grace period; stops the loop when all exited.
  void stop();
  // Runs `program args` (with -c CONFIG after args) once a day, at next_daily_run(), when
  // `enabled` (none: always) says so then: a one-shot child, not restarted; its exit status is
  // logged. Before start().
  void add_daily(std::string program, std::vector<std::string> args,
                 std::function<bool()> enabled = {});

 private:
  struct Child {
    std::string label;        // "estafette-esmtpd 2/4", or the program name alone
    std::size_t program = 0;  // index into programs_ of its generation
    std::size_t generation = 0;
    std::size_t instance = 1;  // 1..instances
    std::size_t instances = 1;
    bool ready = false;          // said "ready" since its last start
    bool retiring = false;       // drained or stopped for good: removed when it exits
    std::string note;            // while down: how it exited and why, for the status file
    std::string reported;        // the reason it gave on its readiness pipe ("error ...")
    base::UniqueFd ready_read;   // the readiness pipe while it is starting
    base::UniqueFd ready_write;  // its write end, from the command until the child has it
    std::string ready_bytes;
    std::unique_ptr<daemon::ChildProcess> process;
  };
  struct Daily {
    std::string program;
    std::vector<std::string> args;
    std::function<bool()> enabled;
    pid_t pid = -1;
    event::TimerId timer = 0;
  };
  // A start or replacement in progress: the children it waits for, and what then.
  struct Operation {
    std::vector<Child*> waiting;
    std::vector<Child*> next_to_drain;  // replace: retire these once `waiting` are ready
    std::vector<Program> sequential;    // replace: started after their predecessor exited
    std::vector<Child*> predecessors;   // replace: the old sequential children still running
    bool overlapping = false;  // replace: the new overlap processes start; nothing drained yet
    Outcome done;
    event::TimerId timeout = 0;
  };

  Child& add_child(std::size_t generation, std::size_t program, std::size_t instance);
  void on_started(Child& c, pid_t pid);
  void on_ready_bytes(Child& c);
  void became_ready(Child& c);
  void failed_to_start(Child& c, const std::string& why);
  void finish(bool ok, const std::string& error);
  void continue_replacement();
  void retire(Child& c);
  void withdraw(Child& c);
  void remove_exited_retirees();
  void arm_daily(Daily& job);
  void run_daily(Daily& job);
  void on_exit(pid_t pid, int status);
  void maybe_finish();
  void write_status();

  event::Loop& loop_;
  std::string config_path_;
  std::string status_path_;
  // programs_[g]: the programs of generation g (a Child's callbacks refer to them).
  std::vector<std::vector<Program>> programs_;
  std::vector<std::unique_ptr<Child>> children_;
  std::vector<std::unique_ptr<Daily>> daily_;
  std::unique_ptr<daemon::ChildReaper> reaper_;
  std::unique_ptr<Operation> operation_;
  bool started_ = false;  // after start(): each (re)start rewrites the status file
  bool stopping_ = false;
};

}  // namespace estafette::supervisor
