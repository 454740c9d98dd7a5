#include "courierd/module_process.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

#include "lib/base/log.h"

namespace estafette::courierd {

namespace {
Poco::Logger& logger() {
  return base::log("courierd");
}
}  // namespace

ModuleProcess::ModuleProcess(event::Loop& loop, std::string name, std::string program,
                             std::string config_path, Callbacks callbacks,
                             daemon::RootSpawner* spawner, std::size_t spawner_index)
    : loop_(loop),
      name_(std::move(name)),
      program_(std::move(program)),
      config_path_(std::move(config_path)),
      callbacks_(std::move(callbacks)),
      spawner_(spawner),
      spawner_index_(spawner_index),
      child_(
          loop, "estafette-courierd", daemon::kModuleRestart,
          {.command = [this] { return command(); },
           .started = [this](pid_t pid) { started(pid); },
           .start_failed =
               [this](const std::string& reason, std::chrono::milliseconds retry_in) {
                 ours_.reset();
                 theirs_.reset();
                 logger().error("module=" + name_ + " " + reason);
                 logger().information("module restart name=" + name_ +
                                      " in=" + std::to_string(retry_in.count()) + "ms");
               },
           .exited =
               [this](pid_t pid, int status, std::optional<std::chrono::milliseconds> restart_in) {
                 exited(pid, status, restart_in);
               }}) {}

ModuleProcess::~ModuleProcess() = default;

void ModuleProcess::start() {
  child_.start();
}

daemon::Command ModuleProcess::command() {
  if (spawner_) {
    // The spawner runs the program it was made for, with its own socketpair: ours comes back.
    daemon::Command command;
    command.path = program_;
    command.launcher = [this](const daemon::Command&) {
      return spawner_->spawn(spawner_index_, &ours_);
    };
    return command;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error(std::string("socketpair failed: ") + base::errno_text(errno));
  ours_.reset(sv[0]);
  theirs_.reset(sv[1]);
  daemon::Command command;
  command.path = program_;
  command.args = {"--fd", std::to_string(theirs_.get())};
  if (!config_path_.empty()) command.args.insert(command.args.end(), {"--config", config_path_});
  command.keep_fds = {theirs_.get()};
  command.restore_root = true;  // estafette-local needs root; esmtpclient drops it itself
  return command;
}

void ModuleProcess::started(pid_t pid) {
  theirs_.reset();
  ready_ = false;
  channel_ = std::make_unique<ipc::Channel>(
      loop_, std::move(ours_), [this](const ipc::Frame& f) { on_frame(f); },
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
                         " pid=" + std::to_string(pid()));
    if (callbacks_.on_ready) callbacks_.on_ready();
    return;
  }
  if (auto result = ipc::decode_deliver_result(frame)) {
    if (jobs_.erase(result->job_id) == 0) {
      logger().warning("module=" + name_ +
                       " result for unknown job=" + std::to_string(result->job_id));
      return;
    }
    child_.reset_backoff();  // it delivers: a later crash restarts it soon
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
  if (!closed_posted_) {
    closed_posted_ = true;
    loop_.post(guard_.wrap([this] {
      closed_posted_ = false;
      closed_.clear();
    }));
  }
  std::vector<std::uint64_t> lost(jobs_.begin(), jobs_.end());
  jobs_.clear();
  if (!child_.stopping() && running()) {
    logger().warning("module channel closed name=" + name_ + " pid=" + std::to_string(pid()) +
                     " jobs_lost=" + std::to_string(lost.size()));
    // It should exit by itself; make sure it does, the restart follows its exit.
    child_.signal(SIGTERM);
  }
  if (callbacks_.on_down) callbacks_.on_down(std::move(lost));
}

bool ModuleProcess::child_exited(pid_t pid, int status) {
  return child_.child_exited(pid, status);
}

void ModuleProcess::exited(pid_t pid, int status,
                           std::optional<std::chrono::milliseconds> restart_in) {
  std::string how = WIFEXITED(status)     ? "status=" + std::to_string(WEXITSTATUS(status))
                    : WIFSIGNALED(status) ? "signal=" + std::to_string(WTERMSIG(status))
                                          : "status=?";
  std::string line = " name=" + name_ + " pid=" + std::to_string(pid) + " " + how;
  if (child_.stopping())
    logger().information("module exited" + line);
  else
    logger().error("module died" + line);
  channel_down();
  if (restart_in)
    logger().information("module restart name=" + name_ +
                         " in=" + std::to_string(restart_in->count()) + "ms");
}

void ModuleProcess::stop() {
  // No signal and no grace period here: the module exits on EOF, and courierd kills one that
  // does not (Courierd::stop_modules).
  child_.stop(0, std::chrono::milliseconds::zero());
  if (channel_) channel_down();
}

}  // namespace estafette::courierd
