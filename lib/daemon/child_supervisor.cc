#include "lib/daemon/child_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <utility>

#include "lib/base/fd.h"
#include "lib/base/log.h"
#include "lib/base/privileges.h"

namespace estafette::daemon {

std::chrono::milliseconds Backoff::next(event::Clock::time_point started,
                                        event::Clock::time_point now) {
  if (now - started > policy_.stable_after) delay_ = policy_.first;
  auto delay = delay_;
  delay_ = std::min(delay_ * 2, policy_.max);
  return delay;
}

namespace {

// Async-signal-safe pieces for the forked child.
void write_stderr(const char* text) {
  [[maybe_unused]] auto n = ::write(2, text, ::strlen(text));
}

[[noreturn]] void child_fails(const std::string& parent, const char* what, const char* path,
                              int err) {
  write_stderr(parent.c_str());
  write_stderr(what);
  write_stderr(path);
  if (err != 0) {
    write_stderr(": ");
    const char* reason = ::strerrordesc_np(err);
    write_stderr(reason ? reason : "unknown error");
  }
  write_stderr("\n");
  ::_exit(127);
}

}  // namespace

pid_t spawn(const Command& command, const std::string& parent) {
  // Everything the child needs is built before fork(): it only makes async-signal-safe calls.
  std::vector<std::string> words = {command.path};
  words.insert(words.end(), command.args.begin(), command.args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::vector<int> keep = command.keep_fds;
  std::sort(keep.begin(), keep.end());
  // A program that is not there (a changed prefix, a half-done install) fails here, before the
  // fork, so that the caller's log names the path (errno set) rather than an exit status 127.
  if (::access(argv[0], X_OK) != 0) return -1;
  const pid_t supervisor = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // The child must not inherit the blocked signal mask of the parent's signalfd.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int fd : keep) ::fcntl(fd, F_SETFD, 0);
  // The child gets stdin, stdout, stderr and keep_fds, nothing else this process holds.
  base::close_fds_from(3, keep);
  // courierd runs as the user with root kept as its real and saved uid (`user` set): a module
  // starts as root; estafette-local needs it, esmtpclient drops to the user itself.
  if (command.restore_root && ::getuid() == 0 && ::geteuid() != 0 && !base::restore_root())
    child_fails(parent, ": cannot restore root for ", argv[0], 0);
  // The child stops (SIGTERM, its orderly stop) when its supervisor dies, even by SIGKILL:
  // no daemon is left holding the listening sockets or the queue. After restore_root, which
  // would clear it; a daemon that drops privileges sets it again (lib/base/privileges.cc).
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != supervisor) ::_exit(0);  // it died before the prctl
  ::execv(argv[0], argv.data());
  child_fails(parent, ": cannot run ", argv[0], errno);
}

ChildProcess::ChildProcess(event::Loop& loop, std::string parent, RestartPolicy policy,
                           Callbacks callbacks)
    : loop_(loop), parent_(std::move(parent)), callbacks_(std::move(callbacks)), backoff_(policy) {}

ChildProcess::~ChildProcess() {
  loop_.cancel_timer(restart_timer_);
  loop_.cancel_timer(kill_timer_);
}

void ChildProcess::start() {
  if (stopping_ || running() || restart_timer_) return;
  std::string failure;
  try {
    Command command = callbacks_.command();
    pid_t pid = command.launcher ? command.launcher(command) : spawn(command, parent_);
    if (pid > 0) {
      pid_ = pid;
      started_ = loop_.now();
      if (callbacks_.started) callbacks_.started(pid);
      return;
    }
    failure = "cannot run " + command.path + ": " + base::errno_text(errno);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  // A failed start never counts as a stable run: the delays go on growing.
  auto delay = backoff_.next(loop_.now(), loop_.now());
  if (callbacks_.start_failed) callbacks_.start_failed(failure, delay);
  restart_later(delay);
}

void ChildProcess::restart_later(std::chrono::milliseconds delay) {
  restart_timer_ = loop_.add_timer(delay, [this] {
    restart_timer_ = 0;
    start();
  });
}

bool ChildProcess::child_exited(pid_t pid, int status) {
  if (pid <= 0 || pid != pid_) return false;
  pid_ = -1;
  loop_.cancel_timer(kill_timer_);
  kill_timer_ = 0;
  std::optional<std::chrono::milliseconds> restart_in;
  if (!stopping_) restart_in = backoff_.next(started_, loop_.now());
  if (callbacks_.exited) callbacks_.exited(pid, status, restart_in);
  // The callback may have stopped us meanwhile.
  if (restart_in && !stopping_ && !restart_timer_) restart_later(*restart_in);
  return true;
}

void ChildProcess::stop(int signo, std::chrono::milliseconds grace) {
  stopping_ = true;
  loop_.cancel_timer(restart_timer_);
  restart_timer_ = 0;
  if (!running()) return;
  if (signo != 0) ::kill(pid_, signo);
  if (grace > std::chrono::milliseconds::zero() && !kill_timer_) {
    kill_timer_ = loop_.add_timer(grace, [this] {
      kill_timer_ = 0;
      if (!running()) return;
      if (callbacks_.killing) callbacks_.killing(pid_);
      ::kill(pid_, SIGKILL);
    });
  }
}

void ChildProcess::signal(int signo) const {
  if (running()) ::kill(pid_, signo);
}

ChildReaper::ChildReaper(event::Loop& loop, std::function<void(pid_t, int)> on_exit,
                         std::function<void()> after_round)
    : on_exit_(std::move(on_exit)), after_round_(std::move(after_round)) {
  loop.on_signal(SIGCHLD, guard_.wrap([this] { reap(); }));
}

void ChildReaper::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    on_exit_(pid, status);
  }
  if (after_round_) after_round_();
}

}  // namespace estafette::daemon
