// supervisor.h: estafetted's job: start the daemons (courierd, then esmtpd, as many esmtpd
// processes as esmtpd_processes asks for), restart one that dies (with a growing delay per
// process, so a daemon that cannot start does not spin), and stop them all cleanly on
// SIGTERM/SIGINT. After every start and exit it rewrites the status file that `estafette status`
// reads (status_file.h). Loop thread; the Supervisor owns its children's pids.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "lib/event/loop.h"

namespace estafette::supervisor {

// A program to keep running, in `copies` processes.
struct Program {
  std::string name;               // sibling program, e.g. "estafette-esmtpd"
  std::vector<std::string> args;  // after "-c CONFIG"
  std::size_t copies = 1;
  std::vector<int> pass_fds;  // fds (owned by the caller) the program inherits across exec
};

class Supervisor final {
 public:
  // Programs are started in this order, each with `-c config_path` when it is not empty.
  // status_path: where the status file goes (empty: none).
  Supervisor(event::Loop& loop, std::vector<Program> programs, std::string config_path,
             std::string status_path = "");
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  void start();
  // Sends SIGTERM to every child, SIGKILL after the grace period; stops the loop when all exited.
  void stop();
  // Sends `signal` to every running child (SIGHUP: reload; courierd passes it to its modules).
  void signal_children(int signal);

 private:
  struct Child {
    std::string program;
    std::vector<std::string> args;
    std::vector<int> pass_fds;
    std::size_t instance = 1;  // 1..instances
    std::size_t instances = 1;
    pid_t pid = 0;
    event::Clock::time_point started;
    std::chrono::milliseconds delay{500};  // before the next restart
    std::string note;                      // while down: how it exited, for the status file
  };
  void spawn(Child& child);
  void reap();
  void maybe_finish();
  void write_status();
  static std::string label(const Child& child);

  event::Loop& loop_;
  std::string config_path_;
  std::string status_path_;
  std::vector<Child> children_;  // fixed after construction: timers hold references
  bool stopping_ = false;
};

}  // namespace estafette::supervisor
