#include "supervisor/supervisor.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <optional>
#include <random>
#include <utility>

#include "lib/base/log.h"
#include "lib/base/paths.h"
#include "lib/daemon/status_file.h"

namespace estafette::supervisor {

namespace {
Poco::Logger& logger() {
  return base::log("estafetted");
}
constexpr auto kGrace = std::chrono::seconds(10);

std::string how_it_ended(int status) {
  return WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                           : "killed by signal " + std::to_string(WTERMSIG(status));
}
}  // namespace

Supervisor::Supervisor(event::Loop& loop, std::vector<Program> programs, std::string config_path,
                       std::string status_path)
    : loop_(loop), config_path_(std::move(config_path)), status_path_(std::move(status_path)) {
  for (auto& p : programs) {
    for (std::size_t i = 1; i <= p.copies; ++i) {
      auto child = std::make_unique<Child>();
      Child& c = *child;
      c.program = p.name;
      c.instance = i;
      c.instances = p.copies;
      c.label = p.copies == 1 ? p.name
                              : p.name + " " + std::to_string(i) + "/" + std::to_string(p.copies);
      daemon::ChildProcess::Callbacks cb;
      cb.command = [this, name = p.name, args = p.args, fds = p.pass_fds] {
        daemon::Command command;
        command.path = base::program_path(name);
        if (!config_path_.empty()) command.args = {"-c", config_path_};
        command.args.insert(command.args.end(), args.begin(), args.end());
        command.keep_fds = fds;
        return command;
      };
      cb.started = [this, &c](pid_t pid) {
        c.note.clear();
        logger().information("started " + c.label + " pid=" + std::to_string(pid));
        if (started_) write_status();
      };
      cb.start_failed = [&c](const std::string& reason, std::chrono::milliseconds retry_in) {
        logger().error("cannot start " + c.label + ": " + reason + "; retrying in " +
                       std::to_string(retry_in.count()) + "ms");
      };
      cb.exited = [&c](pid_t pid, int status, std::optional<std::chrono::milliseconds> restart_in) {
        std::string how = how_it_ended(status);
        if (!restart_in) {
          logger().information(c.label + " pid=" + std::to_string(pid) + " " + how);
          c.note = how;
          return;
        }
        c.note = how + "; restarting in " + std::to_string(restart_in->count()) + "ms";
        logger().error(c.label + " pid=" + std::to_string(pid) + " " + c.note);
      };
      cb.killing = [&c](pid_t) { logger().warning(c.label + " did not stop; killing it"); };
      c.process = std::make_unique<daemon::ChildProcess>(loop_, "estafetted",
                                                         daemon::kDaemonRestart, std::move(cb));
      children_.push_back(std::move(child));
    }
  }
}

void Supervisor::start() {
  reaper_ = std::make_unique<daemon::ChildReaper>(
      loop_, [this](pid_t pid, int status) { on_exit(pid, status); },
      [this] {
        write_status();
        maybe_finish();
      });
  for (auto& child : children_) child->process->start();
  for (auto& job : daily_) arm_daily(*job);
  started_ = true;
  write_status();
}

void Supervisor::write_status() {
  if (status_path_.empty()) return;
  std::vector<daemon::ChildStatus> status;
  for (const auto& c : children_)
    status.push_back({c->program, c->instance, c->instances,
                      c->process->running() ? c->process->pid() : 0, c->note});
  if (!daemon::write_status_file(status_path_, status))
    logger().warning("cannot write " + status_path_ + ": " + base::errno_text(errno));
}

std::int64_t next_daily_run(std::int64_t now, std::int64_t spread) {
  return (now / 86400 + 1) * 86400 + spread;
}

void Supervisor::add_daily(std::string program, std::vector<std::string> args) {
  auto job = std::make_unique<Daily>();
  job->program = std::move(program);
  job->args = std::move(args);
  daily_.push_back(std::move(job));
}

void Supervisor::arm_daily(Daily& job) {
  std::random_device random;
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  const std::int64_t at = next_daily_run(now, 60 + static_cast<std::int64_t>(random() % 3540));
  job.timer = loop_.add_timer(std::chrono::seconds(at - now), [this, &job] {
    job.timer = 0;
    run_daily(job);
    arm_daily(job);
  });
}

void Supervisor::run_daily(Daily& job) {
  if (stopping_) return;
  if (job.pid > 0) {
    logger().warning(job.program + " " + job.args.front() + " pid=" + std::to_string(job.pid) +
                     " still runs; not starting another");
    return;
  }
  daemon::Command command;
  command.path = base::program_path(job.program);
  command.args = job.args;
  if (!config_path_.empty()) command.args.insert(command.args.end(), {"-c", config_path_});
  job.pid = daemon::spawn(command, "estafetted");
  if (job.pid < 0) {
    logger().error("cannot start " + command.path + ": " + base::errno_text(errno));
    return;
  }
  logger().information("started " + job.program + " " + job.args.front() +
                       " pid=" + std::to_string(job.pid));
}

void Supervisor::on_exit(pid_t pid, int status) {
  for (auto& job : daily_) {
    if (job->pid != pid) continue;
    job->pid = -1;
    auto log_level = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? Poco::Message::PRIO_INFORMATION
                                                                   : Poco::Message::PRIO_WARNING;
    logger().log(Poco::Message("estafetted",
                               job->program + " " + job->args.front() +
                                   " pid=" + std::to_string(pid) + " " + how_it_ended(status),
                               log_level));
    return;
  }
  for (auto& child : children_)
    if (child->process->child_exited(pid, status)) return;
}

void Supervisor::stop() {
  if (stopping_) return;
  stopping_ = true;
  logger().information("stopping");
  for (auto& job : daily_) {
    loop_.cancel_timer(job->timer);
    if (job->pid > 0) ::kill(job->pid, SIGTERM);
  }
  // esmtpd first (it stops taking mail), courierd last.
  for (auto it = children_.rbegin(); it != children_.rend(); ++it)
    (*it)->process->stop(SIGTERM, kGrace);
  maybe_finish();
}

void Supervisor::maybe_finish() {
  if (!stopping_) return;
  for (auto& child : children_)
    if (child->process->running()) return;
  loop_.stop();
}

void Supervisor::signal_children(int signal) {
  for (const auto& child : children_) child->process->signal(signal);
}

}  // namespace estafette::supervisor
