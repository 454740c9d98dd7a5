#include "courierd/module_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "lib/base/log.h"
#include "lib/base/privileges.h"

namespace estafette::courierd {

namespace {
Poco::Logger& logger() {
  return base::log("courierd");
}

constexpr auto kRestartBase = std::chrono::milliseconds(250);
constexpr auto kStableAfter = std::chrono::seconds(30);
constexpr unsigned kMaxRestartShift = 7;  // 250ms << 7 = 32s
}  // namespace

ModuleProcess::ModuleProcess(event::Loop& loop, std::string name, std::string program,
                             std::string config_path, Callbacks callbacks)
    : loop_(loop),
      name_(std::move(name)),
      program_(std::move(program)),
      config_path_(std::move(config_path)),
      callbacks_(std::move(callbacks)) {}

ModuleProcess::~ModuleProcess() {
  loop_.cancel_timer(restart_timer_);
  loop_.cancel_timer(reap_timer_);
}

void ModuleProcess::start() {
  restart_timer_ = 0;
  if (stopping_ || pid_ > 0) return;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    logger().error("module=" + name_ + " socketpair failed: " + base::errno_text(errno));
    schedule_restart();
    return;
  }
  base::UniqueFd ours(sv[0]);
  base::UniqueFd theirs(sv[1]);
  std::string fd_arg = std::to_string(theirs.get());
  std::vector<std::string> args = {program_, "--fd", fd_arg};
  if (!config_path_.empty()) {
    args.push_back("--config");
    args.push_back(config_path_);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    logger().error("module=" + name_ + " fork failed: " + base::errno_text(errno));
    schedule_restart();
    return;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::fcntl(theirs.get(), F_SETFD, 0);
    // courierd runs as the user with root kept as its real and saved uid (`user` set): a
    // module starts as root; estafette-local needs it, esmtpclient drops to the user itself.
    if (::getuid() == 0 && ::geteuid() != 0 && !base::restore_root()) {
      const char msg[] = "estafette-courierd: cannot restore root for a delivery module\n";
      [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
      ::_exit(127);
    }
    ::execv(argv[0], argv.data());
    const char msg[] = "estafette-courierd: exec of a delivery module failed\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  theirs.reset();
  pid_ = pid;
  started_ = loop_.now();
  ready_ = false;
  channel_ = std::make_unique<ipc::Channel>(
      loop_, std::move(ours), [this](const ipc::Frame& f) { on_frame(f); },
      [this] { channel_down(); });
  logger().information("module started name=" + name_ + " pid=" + std::to_string(pid) +
                       " program=" + program_);
}

bool ModuleProcess::send(const ipc::Deliver& deliver) {
  if (!ready_ || !channel_ || !channel_->open()) return false;
  jobs_.insert(deliver.job_id);
  // A write error closes the channel: channel_down() then reports the job as lost.
  channel_->send(ipc::encode(deliver));
  return true;
}

void ModuleProcess::on_frame(const ipc::Frame& frame) {
  if (auto ready = ipc::decode_module_ready(frame)) {
    ready_ = true;
    logger().information("module ready name=" + name_ + " announced=" + ready->name +
                         " pid=" + std::to_string(pid_));
    if (callbacks_.on_ready) callbacks_.on_ready();
    return;
  }
  if (auto result = ipc::decode_deliver_result(frame)) {
    if (jobs_.erase(result->job_id) == 0) {
      logger().warning("module=" + name_ +
                       " result for unknown job=" + std::to_string(result->job_id));
      return;
    }
    failures_ = 0;
    if (callbacks_.on_result) callbacks_.on_result(*result);
    return;
  }
  logger().warning("module=" + name_ +
                   " sent an unexpected frame type=" + std::to_string(frame.type));
}

void ModuleProcess::channel_down() {
  if (!channel_) return;
  ready_ = false;
  closed_.push_back(std::move(channel_));
  loop_.cancel_timer(reap_timer_);
  reap_timer_ = loop_.add_timer(std::chrono::milliseconds(0), [this] {
    reap_timer_ = 0;
    closed_.clear();
  });
  std::vector<std::uint64_t> lost(jobs_.begin(), jobs_.end());
  jobs_.clear();
  if (!stopping_ && pid_ > 0) {
    logger().warning("module channel closed name=" + name_ + " pid=" + std::to_string(pid_) +
                     " jobs_lost=" + std::to_string(lost.size()));
    // It should exit by itself; make sure it does, the restart follows its exit.
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  if (callbacks_.on_down) callbacks_.on_down(std::move(lost));
}

bool ModuleProcess::child_exited(pid_t pid, int status) {
  if (pid != pid_ || pid <= 0) return false;
  pid_ = -1;
  std::string how = WIFEXITED(status)     ? "status=" + std::to_string(WEXITSTATUS(status))
                    : WIFSIGNALED(status) ? "signal=" + std::to_string(WTERMSIG(status))
                                          : "status=?";
  std::string line = " name=" + name_ + " pid=" + std::to_string(pid) + " " + how;
  if (stopping_)
    logger().information("module exited" + line);
  else
    logger().error("module died" + line);
  channel_down();
  if (!stopping_) schedule_restart();
  return true;
}

void ModuleProcess::schedule_restart() {
  if (stopping_ || restart_timer_) return;
  if (loop_.now() - started_ > kStableAfter) failures_ = 0;
  auto delay = kRestartBase * (1u << std::min(failures_, kMaxRestartShift));
  ++failures_;
  logger().information("module restart name=" + name_ + " in=" + std::to_string(delay.count()) +
                       "ms");
  restart_timer_ = loop_.add_timer(delay, [this] { start(); });
}

void ModuleProcess::stop() {
  stopping_ = true;
  loop_.cancel_timer(restart_timer_);
  restart_timer_ = 0;
  if (channel_) channel_down();
}

}  // namespace estafette::courierd
