// root_spawner.h: a helper process that stays root so that courierd need not (issue 13, item
// 11). courierd creates it at start, while still root, and then drops every uid (real,
// effective, saved) to `user` for good; the delivery modules, which start as root (estafette-local
// stays root to write mailboxes as their users; esmtpclient opens the log file, then drops), are
// started by the helper instead of by a fork of courierd.
//
// The helper reads nothing but fixed 4-byte requests ("start program i") on its socketpair; it
// takes no path, argument or fd from courierd: what it may run (the programs, their arguments)
// is fixed when it is created. For each request it makes a socketpair, starts the program with one
// end as
// `--fd N` (clone(CLONE_PARENT): the program is courierd's child, so courierd reaps it and gets
// its SIGCHLD as for any module), with `real_uid` as its real uid (the user's: courierd, which is
// that user, may then signal it) and root as its effective and saved uid, an empty signal mask
// and only fds 0-2 and its end; and it sends the pid and the other end back (SCM_RIGHTS). The
// helper exits when courierd closes the link (or dies), and on any malformed request.
//
// Loop thread of courierd (spawn() blocks for the helper's answer: a fork and a sendmsg).
// Errors: the constructor throws std::system_error; spawn() returns -1 with errno set (ENOENT,
// EACCES: the helper found the program missing or not executable before forking).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "lib/base/fd.h"
#include "lib/daemon/child_supervisor.h"

namespace estafette::daemon {

class RootSpawner final {
 public:
  // Forks the helper now (the caller is root). commands: path and args of each program it may
  // start (no --fd: the helper adds it); parent: the name in the child's error messages.
  RootSpawner(std::vector<Command> commands, uid_t real_uid, std::string parent);
  ~RootSpawner();  // closes the link: the helper exits
  RootSpawner(const RootSpawner&) = delete;
  RootSpawner& operator=(const RootSpawner&) = delete;

  // Starts commands[index]: its pid, and our end of its channel in *channel; -1 (errno set) when
  // the helper is gone or could not start it.
  pid_t spawn(std::size_t index, base::UniqueFd* channel);

  pid_t helper_pid() const { return helper_; }

 private:
  base::UniqueFd link_;
  pid_t helper_ = -1;
};

}  // namespace estafette::daemon
