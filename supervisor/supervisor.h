// supervisor.h: estafetted's job: start the daemons (courierd, then esmtpd), restart one that
// dies (with a growing delay, so a daemon that cannot start does not spin), and stop them all
// cleanly on SIGTERM/SIGINT. Loop thread; the Supervisor owns its children's pids.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "lib/event/loop.h"

namespace estafette::supervisor {

class Supervisor final {
 public:
  // programs: sibling program names, started in this order; config_path is passed on as -c.
  Supervisor(event::Loop& loop, std::vector<std::string> programs, std::string config_path);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  void start();
  // Sends SIGTERM to every child, SIGKILL after the grace period; stops the loop when all exited.
  void stop();

 private:
  struct Child {
    std::string program;
    pid_t pid = 0;
    event::Clock::time_point started;
    std::chrono::milliseconds delay{500};  // before the next restart
  };
  void spawn(Child& child);
  void reap();
  void maybe_finish();

  event::Loop& loop_;
  std::string config_path_;
  std::vector<Child> children_;
  bool stopping_ = false;
};

}  // namespace estafette::supervisor
