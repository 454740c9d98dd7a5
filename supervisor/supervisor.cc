#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/base/log.h"
#include "lib/base/paths.h"
#include "supervisor/status_file.h"

namespace estafette::supervisor {

namespace {
Poco::Logger& logger() {
  return base::log("estafetted");
}
constexpr auto kGrace = std::chrono::seconds(10);
constexpr auto kMaxDelay = std::chrono::milliseconds(30000);
constexpr auto kStableRun = std::chrono::seconds(30);
}  // namespace

Supervisor::Supervisor(event::Loop& loop, std::vector<Program> programs, std::string config_path,
                       std::string status_path)
    : loop_(loop), config_path_(std::move(config_path)), status_path_(std::move(status_path)) {
  for (auto& p : programs) {
    for (std::size_t i = 1; i <= p.copies; ++i) {
      Child child;
      child.program = p.name;
      child.args = p.args;
      child.pass_fds = p.pass_fds;
      child.instance = i;
      child.instances = p.copies;
      children_.push_back(std::move(child));
    }
  }
}

std::string Supervisor::label(const Child& child) {
  if (child.instances == 1) return child.program;
  return child.program + " " + std::to_string(child.instance) + "/" +
         std::to_string(child.instances);
}

void Supervisor::start() {
  loop_.on_signal(SIGCHLD, [this] { reap(); });
  for (auto& child : children_) spawn(child);
  write_status();
}

void Supervisor::write_status() {
  if (status_path_.empty()) return;
  std::vector<ChildStatus> status;
  for (const auto& c : children_)
    status.push_back({c.program, c.instance, c.instances, c.pid, c.note});
  if (!write_status_file(status_path_, status))
    logger().warning("cannot write " + status_path_ + ": " + base::errno_text(errno));
}

void Supervisor::spawn(Child& child) {
  std::string path = base::program_path(child.program);
  std::vector<std::string> args = {path};
  if (!config_path_.empty()) args.insert(args.end(), {"-c", config_path_});
  args.insert(args.end(), child.args.begin(), child.args.end());
  pid_t pid = ::fork();
  if (pid < 0) {
    logger().error("fork for " + label(child) + ": " + base::errno_text(errno));
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
    for (int fd : child.pass_fds) ::fcntl(fd, F_SETFD, 0);  // keep it across exec
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(path.c_str(), argv.data());
    std::fprintf(stderr, "estafetted: cannot run %s: %s\n", path.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  child.pid = pid;
  child.started = event::Clock::now();
  child.note.clear();
  logger().information("started " + label(child) + " pid=" + std::to_string(pid));
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
        logger().information(label(child) + " pid=" + std::to_string(pid) + " " + how);
        child.note = how;
        break;
      }
      if (event::Clock::now() - child.started > kStableRun)
        child.delay = std::chrono::milliseconds(500);
      child.note = how + "; restarting in " + std::to_string(child.delay.count()) + "ms";
      logger().error(label(child) + " pid=" + std::to_string(pid) + " " + child.note);
      loop_.add_timer(child.delay, [this, &child] {
        if (stopping_ || child.pid != 0) return;
        spawn(child);
        write_status();
      });
      child.delay = std::min(child.delay * 2, kMaxDelay);
      break;
    }
  }
  write_status();
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
        logger().warning(label(child) + " did not stop; killing it");
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

void Supervisor::signal_children(int signal) {
  for (const auto& child : children_)
    if (child.pid > 0) ::kill(child.pid, signal);
}

}  // namespace estafette::supervisor
