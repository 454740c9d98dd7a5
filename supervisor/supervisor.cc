#include "supervisor/supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/base/log.h"
#include "lib/base/paths.h"

namespace estafette::supervisor {

namespace {
Poco::Logger& logger() {
  return base::log("estafetted");
}
constexpr auto kGrace = std::chrono::seconds(10);
constexpr auto kMaxDelay = std::chrono::milliseconds(30000);
constexpr auto kStableRun = std::chrono::seconds(30);
}  // namespace

Supervisor::Supervisor(event::Loop& loop, std::vector<std::string> programs,
                       std::string config_path)
    : loop_(loop), config_path_(std::move(config_path)) {
  for (auto& p : programs) {
    Child child;
    child.program = std::move(p);
    children_.push_back(std::move(child));
  }
}

void Supervisor::start() {
  loop_.on_signal(SIGCHLD, [this] { reap(); });
  for (auto& child : children_) spawn(child);
}

void Supervisor::spawn(Child& child) {
  std::string path = base::program_path(child.program);
  std::vector<std::string> args = {path};
  if (!config_path_.empty()) args.insert(args.end(), {"-c", config_path_});
  pid_t pid = ::fork();
  if (pid < 0) {
    logger().error("fork for " + child.program + ": " + base::errno_text(errno));
    loop_.add_timer(child.delay, [this, &child] {
      if (!stopping_) spawn(child);
    });
    return;
  }
  if (pid == 0) {
    // The child must not inherit the blocked signal mask of our signalfd.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(path.c_str(), argv.data());
    std::fprintf(stderr, "estafetted: cannot run %s: %s\n", path.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  child.pid = pid;
  child.started = event::Clock::now();
  logger().information("started " + child.program + " pid=" + std::to_string(pid));
}

void Supervisor::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    for (auto& child : children_) {
      if (child.pid != pid) continue;
      child.pid = 0;
      std::string how = WIFEXITED(status)
                            ? "exited with status " + std::to_string(WEXITSTATUS(status))
                            : "killed by signal " + std::to_string(WTERMSIG(status));
      if (stopping_) {
        logger().information(child.program + " " + how);
        break;
      }
      if (event::Clock::now() - child.started > kStableRun)
        child.delay = std::chrono::milliseconds(500);
      logger().error(child.program + " " + how + "; restarting in " +
                     std::to_string(child.delay.count()) + "ms");
      loop_.add_timer(child.delay, [this, &child] {
        if (!stopping_ && child.pid == 0) spawn(child);
      });
      child.delay = std::min(child.delay * 2, kMaxDelay);
    }
  }
  maybe_finish();
}

void Supervisor::stop() {
  if (stopping_) return;
  stopping_ = true;
  logger().information("stopping");
  // esmtpd first (it stops taking mail), courierd last.
  for (auto it = children_.rbegin(); it != children_.rend(); ++it)
    if (it->pid > 0) ::kill(it->pid, SIGTERM);
  loop_.add_timer(kGrace, [this] {
    for (auto& child : children_) {
      if (child.pid > 0) {
        logger().warning(child.program + " did not stop; killing it");
        ::kill(child.pid, SIGKILL);
      }
    }
  });
  maybe_finish();
}

void Supervisor::maybe_finish() {
  if (!stopping_) return;
  for (auto& child : children_)
    if (child.pid > 0) return;
  loop_.stop();
}

}  // namespace estafette::supervisor
