#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

#include "lib/base/log.h"
#include "lib/base/paths.h"
#include "lib/daemon/readiness.h"
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

template <typename T>
void erase_value(std::vector<T>& v, const T& value) {
  v.erase(std::remove(v.begin(), v.end(), value), v.end());
}
}  // namespace

Supervisor::Supervisor(event::Loop& loop, std::string config_path, std::string status_path)
    : loop_(loop), config_path_(std::move(config_path)), status_path_(std::move(status_path)) {}

Supervisor::~Supervisor() {
  if (operation_) loop_.cancel_timer(operation_->timeout);
  for (auto& c : children_)
    if (c->ready_read) loop_.remove_fd(c->ready_read.get());
}

Supervisor::Child& Supervisor::add_child(std::size_t generation, std::size_t program,
                                         std::size_t instance) {
  const Program& p = programs_[generation][program];
  auto child = std::make_unique<Child>();
  Child& c = *child;
  c.program = program;
  c.generation = generation;
  c.instance = instance;
  c.instances = p.copies;
  c.label = p.copies == 1
                ? p.name
                : p.name + " " + std::to_string(instance) + "/" + std::to_string(p.copies);
  daemon::ChildProcess::Callbacks cb;
  cb.command = [this, &c] {
    const Program& p = programs_[c.generation][c.program];
    daemon::Command command;
    command.path = base::program_path(p.name);
    if (!config_path_.empty()) command.args = {"-c", config_path_};
    command.args.insert(command.args.end(), p.args.begin(), p.args.end());
    command.keep_fds = p.pass_fds;
    if (p.per_copy) p.per_copy(c.instance, command.args, command.keep_fds);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::runtime_error(std::string("pipe: ") + base::errno_text(errno));
    c.ready_read.reset(fds[0]);
    c.ready_write.reset(fds[1]);
    c.ready_bytes.clear();
    c.reported.clear();
    command.args.insert(command.args.end(), {"--ready-fd", std::to_string(fds[1])});
    command.keep_fds.push_back(fds[1]);
    return command;
  };
  cb.started = [this, &c](pid_t pid) { on_started(c, pid); };
  cb.start_failed = [this, &c](const std::string& reason, std::chrono::milliseconds retry_in) {
    c.ready_read.reset();
    c.ready_write.reset();
    c.note = "cannot start: " + reason + "; retrying in " + std::to_string(retry_in.count()) + "ms";
    logger().error(c.label + ": " + c.note);
    failed_to_start(c, "cannot start: " + reason);
    if (started_) write_status();
  };
  cb.exited = [this, &c](pid_t pid, int status,
                         std::optional<std::chrono::milliseconds> restart_in) {
    if (c.ready_read) {
      on_ready_bytes(c);  // what it said just before it went
      loop_.remove_fd(c.ready_read.get());
      c.ready_read.reset();
    }
    std::string how = how_it_ended(status);
    std::string why = c.reported.empty() ? how : c.reported + " (" + how + ")";
    const bool was_ready = std::exchange(c.ready, false);
    if (!restart_in) {
      logger().information(c.label + " pid=" + std::to_string(pid) + " " + how);
      c.note = why;
    } else {
      c.note = why + "; restarting in " + std::to_string(restart_in->count()) + "ms";
      logger().error(c.label + " pid=" + std::to_string(pid) + " " + c.note);
      const Program& p = programs_[c.generation][c.program];
      if (p.exited) p.exited(c.instance);
    }
    if (!was_ready) failed_to_start(c, why);
    if (operation_) {
      auto& pre = operation_->predecessors;
      if (std::find(pre.begin(), pre.end(), &c) != pre.end()) {
        erase_value(pre, &c);
        if (pre.empty()) continue_replacement();
      }
    }
  };
  cb.killing = [&c](pid_t) { logger().warning(c.label + " did not stop; killing it"); };
  c.process = std::make_unique<daemon::ChildProcess>(loop_, "estafetted", daemon::kDaemonRestart,
                                                     std::move(cb));
  children_.push_back(std::move(child));
  return c;
}

void Supervisor::on_started(Child& c, pid_t pid) {
  c.ready = false;
  c.note.clear();
  c.ready_write.reset();  // the child has it now
  if (c.ready_read) {
    base::set_nonblocking(c.ready_read.get());
    loop_.add_fd(c.ready_read.get(), EPOLLIN, [this, &c](std::uint32_t) { on_ready_bytes(c); });
  }
  logger().information("started " + c.label + " pid=" + std::to_string(pid));
  if (started_) write_status();
}

void Supervisor::on_ready_bytes(Child& c) {
  if (!c.ready_read) return;
  bool eof = false;
  char buf[256];
  while (c.ready_bytes.size() <= daemon::kMaxReadyReport) {
    ssize_t n = ::read(c.ready_read.get(), buf, sizeof buf);
    if (n > 0) {
      c.ready_bytes.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    break;
  }
  auto report = daemon::parse_ready_report(c.ready_bytes, eof);
  if (report.state == daemon::ReadyReport::State::Waiting) return;
  loop_.remove_fd(c.ready_read.get());
  c.ready_read.reset();
  if (report.state == daemon::ReadyReport::State::Ready) {
    became_ready(c);
    return;
  }
  // It failed (or closed the pipe without a word): its exit says the rest.
  c.reported = report.error;
}

void Supervisor::became_ready(Child& c) {
  c.ready = true;
  logger().information(c.label + " ready");
  if (started_) write_status();
  if (!operation_) return;
  auto& waiting = operation_->waiting;
  if (std::find(waiting.begin(), waiting.end(), &c) == waiting.end()) return;
  erase_value(waiting, &c);
  if (waiting.empty()) continue_replacement();
}

void Supervisor::failed_to_start(Child& c, const std::string& why) {
  if (!operation_) return;
  auto& waiting = operation_->waiting;
  if (std::find(waiting.begin(), waiting.end(), &c) == waiting.end()) return;
  // A new overlapping generation that fails is withdrawn: the old one keeps serving. (Once the
  // old ones drain, a sequential successor that fails is left to its restarts: its predecessor
  // is gone.)
  if (operation_->overlapping)
    for (Child* n : operation_->waiting) withdraw(*n);
  finish(false, c.label + ": " + why);
}

void Supervisor::finish(bool ok, const std::string& error) {
  auto op = std::move(operation_);
  if (!op) return;
  loop_.cancel_timer(op->timeout);
  if (op->done) op->done(ok, error);
}

void Supervisor::retire(Child& c) {
  if (c.retiring) return;
  c.retiring = true;
  const Program& p = programs_[c.generation][c.program];
  c.process->stop(p.drain_signal, p.drain_grace);
  if (started_) write_status();
}

// A new process of a replacement that failed: SIGTERM (it may not take its drain signal yet).
void Supervisor::withdraw(Child& c) {
  if (c.retiring) return;
  c.retiring = true;
  c.process->stop(SIGTERM, kGrace);
}

void Supervisor::continue_replacement() {
  if (!operation_) return;
  Operation& op = *operation_;
  if (!op.waiting.empty() || !op.predecessors.empty()) return;
  // The new overlapping processes are all ready: the old ones may go.
  op.overlapping = false;
  for (Child* old : std::exchange(op.next_to_drain, {})) retire(*old);
  if (op.sequential.empty()) {
    finish(true, "");
    return;
  }
  // The sequential ones, one program at a time: its predecessor drains, then it starts.
  const std::size_t generation = programs_.size() - 1;
  const Program next = op.sequential.front();
  for (auto& c : children_) {
    const Program& p = programs_[c->generation][c->program];
    if (c->retiring || c->generation == generation || p.name != next.name) continue;
    retire(*c);
    if (c->process->running()) op.predecessors.push_back(c.get());
  }
  if (!op.predecessors.empty()) return;  // their exits bring us back here
  op.sequential.erase(op.sequential.begin());
  auto& programs = programs_[generation];
  std::size_t index = 0;
  while (index < programs.size() && programs[index].name != next.name) ++index;
  for (std::size_t i = 1; i <= next.copies; ++i) {
    Child& c = add_child(generation, index, i);
    op.waiting.push_back(&c);
    c.process->start();
  }
  write_status();
}

void Supervisor::start(std::vector<Program> programs, Outcome done) {
  reaper_ = std::make_unique<daemon::ChildReaper>(
      loop_, [this](pid_t pid, int status) { on_exit(pid, status); },
      [this] {
        remove_exited_retirees();
        write_status();
        maybe_finish();
      });
  programs_.push_back(std::move(programs));
  operation_ = std::make_unique<Operation>();
  operation_->done = std::move(done);
  operation_->timeout = loop_.add_timer(kStartTimeout, [this] {
    operation_->timeout = 0;
    finish(false, operation_->waiting.front()->label + " did not say it was ready within " +
                      std::to_string(kStartTimeout.count()) + " s");
  });
  std::vector<Child*> started;
  for (std::size_t p = 0; p < programs_[0].size(); ++p)
    for (std::size_t i = 1; i <= programs_[0][p].copies; ++i)
      started.push_back(&add_child(0, p, i));
  operation_->waiting = started;
  for (auto& job : daily_) arm_daily(*job);
  started_ = true;
  write_status();
  for (Child* c : started) {
    c->process->start();
    if (!operation_) break;  // the first one already failed
  }
}

bool Supervisor::replace(std::vector<Program> programs, Outcome done) {
  if (operation_ || stopping_) return false;
  const std::size_t generation = programs_.size();
  programs_.push_back(std::move(programs));
  operation_ = std::make_unique<Operation>();
  Operation& op = *operation_;
  op.done = std::move(done);
  op.overlapping = true;
  op.timeout = loop_.add_timer(kStartTimeout, [this] {
    operation_->timeout = 0;
    std::string who = operation_->waiting.empty() ? operation_->predecessors.front()->label
                                                  : operation_->waiting.front()->label;
    if (operation_->overlapping)
      for (Child* n : operation_->waiting) withdraw(*n);
    finish(false, who + " did not finish within " + std::to_string(kStartTimeout.count()) + " s");
  });
  std::vector<Child*> started;
  for (std::size_t p = 0; p < programs_[generation].size(); ++p) {
    const Program& program = programs_[generation][p];
    if (!program.overlap) {
      op.sequential.push_back(program);
      continue;
    }
    for (auto& c : children_) {
      const Program& old = programs_[c->generation][c->program];
      if (!c->retiring && old.name == program.name) op.next_to_drain.push_back(c.get());
    }
    for (std::size_t i = 1; i <= program.copies; ++i)
      started.push_back(&add_child(generation, p, i));
  }
  // A program the new config no longer runs (metrics_listen unset) goes with the old esmtpd.
  for (auto& c : children_) {
    if (c->retiring || c->generation == generation) continue;
    const std::string& name = programs_[c->generation][c->program].name;
    bool kept = false;
    for (const Program& p : programs_[generation]) kept = kept || p.name == name;
    if (!kept) op.next_to_drain.push_back(c.get());
  }
  op.waiting = started;
  write_status();
  for (Child* c : started) {
    c->process->start();
    if (!operation_) return true;  // failed already: withdrawn, reported
  }
  if (operation_ && operation_->waiting.empty()) continue_replacement();
  return true;
}

void Supervisor::remove_exited_retirees() {
  auto gone = [this](const std::unique_ptr<Child>& c) {
    if (!c->retiring || c->process->running()) return false;
    if (c->ready_read) loop_.remove_fd(c->ready_read.get());
    if (operation_) {
      erase_value(operation_->waiting, c.get());
      erase_value(operation_->next_to_drain, c.get());
      erase_value(operation_->predecessors, c.get());
    }
    return true;
  };
  children_.erase(std::remove_if(children_.begin(), children_.end(), gone), children_.end());
}

void Supervisor::write_status() {
  if (status_path_.empty()) return;
  std::vector<daemon::ChildStatus> status;
  // In program order (courierd, then esmtpd), whatever order reloads added them in.
  std::vector<const Child*> order;
  for (const auto& c : children_) order.push_back(c.get());
  std::stable_sort(order.begin(), order.end(),
                   [](const Child* a, const Child* b) { return a->program < b->program; });
  for (const Child* c : order) {
    const Program& p = programs_[c->generation][c->program];
    daemon::ChildStatus s{p.name, c->instance, c->instances,
                          c->process->running() ? c->process->pid() : 0, c->note};
    s.state = !c->process->running() ? daemon::ChildState::Down
              : c->retiring          ? daemon::ChildState::Draining
              : c->ready             ? daemon::ChildState::Running
                                     : daemon::ChildState::Starting;
    if (s.state == daemon::ChildState::Down && c->retiring) continue;  // gone for good
    status.push_back(std::move(s));
  }
  if (!daemon::write_status_file(status_path_, status))
    logger().warning("cannot write " + status_path_ + ": " + base::errno_text(errno));
}

std::int64_t next_daily_run(std::int64_t now, std::int64_t spread) {
  return (now / 86400 + 1) * 86400 + spread;
}

void Supervisor::add_daily(std::string program, std::vector<std::string> args,
                           std::function<bool()> enabled) {
  auto job = std::make_unique<Daily>();
  job->program = std::move(program);
  job->args = std::move(args);
  job->enabled = std::move(enabled);
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
  if (stopping_ || (job.enabled && !job.enabled())) return;
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
  // By pointer: an exit may start the successor (add_child) while we look.
  std::vector<daemon::ChildProcess*> processes;
  for (auto& child : children_) processes.push_back(child->process.get());
  for (auto* process : processes)
    if (process->child_exited(pid, status)) return;
}

void Supervisor::stop() {
  if (stopping_) return;
  stopping_ = true;
  logger().information("stopping");
  if (operation_) finish(false, "estafetted is stopping");
  for (auto& job : daily_) {
    loop_.cancel_timer(job->timer);
    if (job->pid > 0) ::kill(job->pid, SIGTERM);
  }
  // esmtpd first (it stops taking mail), courierd last.
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    (*it)->retiring = true;
    (*it)->process->stop(SIGTERM, kGrace);
  }
  maybe_finish();
}

void Supervisor::maybe_finish() {
  if (!stopping_) return;
  for (auto& child : children_)
    if (child->process->running()) return;
  loop_.stop();
}

}  // namespace estafette::supervisor
