// supervisor.h: estafetted's job: start the daemons (courierd, then esmtpd, as many esmtpd
// processes as esmtpd_processes asks for), restart one that dies (with a growing delay per
// process, so a daemon that cannot start does not spin), and stop them all cleanly on
// SIGTERM/SIGINT. After every start and exit it rewrites the status file that `estafette status`
// reads (status_file.h). Each process is a daemon::ChildProcess (lib/daemon/child_supervisor.h)
// with estafetted's restart policy (0.5 s doubling to 30 s, from 0.5 s again after 30 s of
// running), reaped by a ChildReaper. Loop thread; the Supervisor owns its children's pids.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/daemon/child_supervisor.h"
#include "lib/event/loop.h"

namespace estafette::supervisor {

// A program to keep running, in `copies` processes.
struct Program {
  std::string name;               // sibling program, e.g. "estafette-esmtpd"
  std::vector<std::string> args;  // after "-c CONFIG"
  std::size_t copies = 1;
  std::vector<int> pass_fds;  // fds (owned by the caller) the program inherits across exec
};

// When a daily job runs next, in Unix seconds: the next 00:00:00 UTC after now plus `spread`
// seconds (a random delay, as RFC 8460 asks of reporters, so that not every server sends at once).
std::int64_t next_daily_run(std::int64_t now, std::int64_t spread);

class Supervisor final {
 public:
  // Programs are started in this order, each with `-c config_path` when it is not empty.
  // status_path: where the status file goes (empty: none).
  Supervisor(event::Loop& loop, std::vector<Program> programs, std::string config_path,
             std::string status_path = "");
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Takes SIGCHLD on the loop and starts every program.
  void start();
  // Sends SIGTERM to every child (esmtpd first, courierd last), SIGKILL to one still running
  // after the grace period; stops the loop when all exited.
  void stop();
  // Sends `signal` to every running child (SIGHUP: reload; courierd passes it to its modules).
  void signal_children(int signal);
  // Runs `program args` (with -c CONFIG after args) once a day, at next_daily_run(): a one-shot
  // child, not restarted; its exit status is logged. Before start().
  void add_daily(std::string program, std::vector<std::string> args);

 private:
  struct Child {
    std::string label;  // "estafette-esmtpd 2/4", or the program name alone
    std::string program;
    std::size_t instance = 1;  // 1..instances
    std::size_t instances = 1;
    std::string note;  // while down: how it exited, for the status file
    std::unique_ptr<daemon::ChildProcess> process;
  };
  struct Daily {
    std::string program;
    std::vector<std::string> args;
    pid_t pid = -1;
    event::TimerId timer = 0;
  };
  void arm_daily(Daily& job);
  void run_daily(Daily& job);
  void on_exit(pid_t pid, int status);
  void maybe_finish();
  void write_status();

  event::Loop& loop_;
  std::string config_path_;
  std::string status_path_;
  std::vector<std::unique_ptr<Child>> children_;  // fixed after construction
  std::vector<std::unique_ptr<Daily>> daily_;
  std::unique_ptr<daemon::ChildReaper> reaper_;
  bool started_ = false;  // after start(): each (re)start rewrites the status file
  bool stopping_ = false;
};

}  // namespace estafette::supervisor
