#include "courierd/module_pool.h"

#include <signal.h>
#include <sys/wait.h>

#include <optional>

#include "courierd/dsn.h"
#include "courierd/log_fields.h"
#include "courierd/wall_clock.h"
#include "lib/base/cpus.h"
#include "lib/base/log.h"
#include "lib/base/paths.h"

namespace estafette::courierd {

namespace {

Poco::Logger& logger() {
  return base::log("courierd");
}

std::string program_for(const std::string& module) {
  return module == kLocalModule ? "estafette-local" : "estafette-esmtpclient";
}

}  // namespace

ModulePool::ModulePool(event::Loop& loop, const config::Config& config, std::string config_path,
                       Scheduler& scheduler, Notices& notices, Changed on_change,
                       daemon::RootSpawner* spawner)
    : scheduler_(scheduler),
      notices_(notices),
      on_change_(std::move(on_change)),
      metrics_(metrics::Writer::open(config.metrics_listen.has_value(), config.metrics_dir(),
                                     "estafette-courierd")) {
  const std::size_t esmtp_processes =
      config::resolve_processes(config.esmtpclient_processes, base::usable_cpus());
  // Maildir delivery waits on fsync; several processes per CPU keep the disk busy and let the
  // file system share journal commits between them.
  const std::size_t local_processes =
      config::resolve_local_processes(config.local_processes, base::usable_cpus());
  for (auto name : {kLocalModule, kEsmtpModule}) {
    std::string n(name);
    scheduler_.set_module_paused(n, true, wall_now());
    std::size_t copies = n == kEsmtpModule ? esmtp_processes : local_processes;
    for (std::size_t i = 0; i < copies; ++i) {
      ModuleProcess::Callbacks cb;
      cb.on_ready = [this, n] {
        scheduler_.set_module_paused(n, false, wall_now());
        on_change_();
      };
      cb.on_result = [this, n](const ipc::DeliverResult& r) { on_result(n, r); };
      cb.on_down = [this, n](std::vector<std::uint64_t> lost) { on_module_down(n, lost); };
      modules_[n].push_back(std::make_unique<ModuleProcess>(
          loop, n, base::program_path(program_for(n)), config_path, std::move(cb), spawner,
          n == kLocalModule ? kSpawnerLocal : kSpawnerEsmtp));
    }
  }
}

void ModulePool::start() {
  for (auto& [name, pool] : modules_)
    for (auto& m : pool) m->start();
}

ModuleProcess* ModulePool::pick(const std::string& name) {
  auto it = modules_.find(name);
  if (it == modules_.end() || it->second.empty()) return nullptr;
  const auto& pool = it->second;
  // Per pool: with one shared counter, jobs alternating between two modules would always start
  // the search at the same process of each pool.
  std::size_t first = next_pick_[name]++ % pool.size();
  ModuleProcess* best = nullptr;
  for (std::size_t k = 0; k < pool.size(); ++k) {
    ModuleProcess* m = pool[(first + k) % pool.size()].get();
    if (m->ready() && (!best || m->jobs() < best->jobs())) best = m;
  }
  return best;
}

bool ModulePool::any_ready(const std::string& name) const {
  auto it = modules_.find(name);
  if (it == modules_.end()) return false;
  for (const auto& m : it->second)
    if (m->ready()) return true;
  return false;
}

void ModulePool::dispatch(const Job& job, Time now) {
  const auto* m = scheduler_.message(job.queue_id);
  ModuleProcess* mod = pick(job.module);
  if (!m || !mod) {
    scheduler_.requeue(job.id, now);
    return;
  }
  ipc::Deliver d;
  d.job_id = job.id;
  d.queue_id = job.queue_id;
  d.path = m->stored.path;
  d.body_offset = m->stored.body_offset;
  d.body_size = m->stored.body_size;
  d.sender = m->stored.envelope.sender;
  d.destination = job.destination;
  d.recipients = job.recipients;
  const auto& env = m->stored.envelope;
  for (std::size_t k = 0; k < job.rcpt_indexes.size(); ++k) {
    if (auto p = env.programs.find(job.rcpt_indexes[k]); p != env.programs.end()) {
      d.programs.resize(job.recipients.size());
      d.programs[k] = p->second;
    }
  }
  d.ret = env.ret;
  d.envid = env.envid;
  d.require_tls = env.require_tls;
  if (!env.dsn.empty()) {
    for (auto i : job.rcpt_indexes) {
      d.notify.push_back(env.dsn_of(i).notify);
      d.orcpt.push_back(env.dsn_of(i).orcpt);
    }
  }
  running_[job.id] = Running{job, now};
  if (!mod->send(d)) {
    running_.erase(job.id);
    scheduler_.requeue(job.id, now);
  }
}

namespace {
// A job's recipients by result, under its destination (lib/metrics).
void count_results(metrics::Writer& m, const std::string& destination, const JobReport& r) {
  using metrics::Metric, metrics::Result;
  auto add = [&](Result result, std::size_t n) {
    if (n > 0)
      m.add_named(Metric::DeliveryResults, static_cast<std::size_t>(result), destination, n);
  };
  add(Result::Delivered, r.delivered.size());
  add(Result::Deferred, r.deferred.size());
  add(Result::Bounced, r.bounced.size());
}
}  // namespace

void ModulePool::on_result(const std::string& module_name, const ipc::DeliverResult& result) {
  auto rit = running_.find(result.job_id);
  if (rit == running_.end()) return;
  const Job job = std::move(rit->second.job);
  const Time dispatched = rit->second.dispatched;
  running_.erase(rit);
  Time now = wall_now();

  const auto* m = scheduler_.message(job.queue_id);
  if (!m) {  // never: a message with a job in flight has pending recipients
    scheduler_.complete(job.id, {}, false, now);
    return;
  }
  queue::StoredMessage original = m->stored;  // the scheduler may forget it in complete()
  const auto& env = original.envelope;

  std::vector<RcptOutcome> outcomes;
  for (const auto& r : result.results) outcomes.push_back({r.status, r.reply});
  if (result.results.size() != job.recipients.size())
    logger().warning("module=" + module_name + " job=" + std::to_string(job.id) + " returned " +
                     std::to_string(result.results.size()) + " results for " +
                     std::to_string(job.recipients.size()) + " recipients");
  JobReport report = scheduler_.complete(job.id, outcomes, result.host_failed, now);
  count_results(*metrics_, job.destination, report);

  // As Postfix: relay=none when the module names no host (none was tried).
  const std::string relay = result.remote.empty() ? "none" : result.remote;
  const Delays delays =
      split_delays(env.arrival, dispatched, now, result.setup_ms, result.transfer_ms);
  std::vector<std::string> replies(env.recipients.size());
  for (std::size_t n = 0; n < job.rcpt_indexes.size() && n < result.results.size(); ++n)
    replies[job.rcpt_indexes[n]] = result.results[n].reply;
  auto log_attempt = [&](std::size_t i, const std::string& reply, base::DeliveryStatus status,
                         std::string_view word, std::string extra) {
    const std::string& rcpt = env.recipients[i];
    logger().information(
        attempt_line({env.id, rcpt, orig_to_of(rcpt, env.dsn_of(i).orcpt), relay, delays,
                      dsn_code(reply, status), word, std::move(extra), reply}));
  };
  for (auto i : report.delivered)
    log_attempt(i, replies[i], base::DeliveryStatus::Delivered, "sent", "");
  for (const auto& d : report.deferred)
    log_attempt(
        d.rcpt_index, d.reply, base::DeliveryStatus::TempFail, "deferred",
        (d.held ? std::string(" held=yes")
                : " retry_in=" +
                      seconds_text(static_cast<double>((d.retry_at - now).count()) / 1000.0)) +
            (result.host_failed ? " host_failed=yes" : ""));
  for (auto i : report.dropped)
    log_attempt(i, "deleted by the administrator", base::DeliveryStatus::PermFail, "deleted", "");
  for (const auto& b : report.bounced)
    log_attempt(b.rcpt_index, b.reply,
                b.expired ? base::DeliveryStatus::TempFail : base::DeliveryStatus::PermFail,
                b.expired ? "expired" : "bounced", "");

  std::string remote_mta;
  if (module_name == kEsmtpModule && !result.remote.empty())
    remote_mta = remote_host_name(result.remote);
  // NOTIFY=SUCCESS: we report a local delivery; a next hop that took the DSN parameters
  // reports its own, and one that did not gets "relayed" from us (RFC 3461 5.2.2). An LMTP
  // server without DSN (Dovecot's) saved it in the mailbox: that is the final delivery.
  std::optional<DsnAction> on_delivery;
  if (module_name == kLocalModule)
    on_delivery = DsnAction::Delivered;
  else if (!result.next_hop_dsn)
    on_delivery = job.destination.starts_with("lmtp:") ? DsnAction::Delivered : DsnAction::Relayed;
  notices_.apply(original, report, remote_mta, now, on_delivery, replies);
  on_change_();
}

void ModulePool::on_module_down(const std::string& module_name,
                                const std::vector<std::uint64_t>& lost) {
  Time now = wall_now();
  // Another process of the pool may still take the module's work.
  if (!any_ready(module_name)) scheduler_.set_module_paused(module_name, true, now);
  for (auto job_id : lost) {
    auto it = running_.find(job_id);
    if (it == running_.end()) continue;
    logger().warning("requeued id=" + it->second.job.queue_id + " job=" + std::to_string(job_id) +
                     " module=" + module_name + " (module went away)");
    running_.erase(it);
    RemovalReport removal = scheduler_.requeue(job_id, now);
    if (removal.found) notices_.finish_removal(removal, now);  // cancelled or deleted meanwhile
  }
  on_change_();
}

void ModulePool::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    bool ours = false;
    for (auto& [name, pool] : modules_)
      for (auto& m : pool) ours = ours || m->child_exited(pid, status);
    if (!ours) logger().information("reaped pid=" + std::to_string(pid));
  }
}

void ModulePool::reload() {
  // estafette-local reloads its maps; estafette-esmtpclient writes its TLS report journal.
  for (auto& [name, pool] : modules_)
    for (auto& m : pool)
      if (m->running()) ::kill(m->pid(), SIGHUP);
}

void ModulePool::stop() {
  for (auto& [name, pool] : modules_)
    for (auto& m : pool) m->stop();
}

void ModulePool::kill_remaining() {
  for (auto& [name, pool] : modules_) {
    for (auto& m : pool) {
      if (!m->running()) continue;
      pid_t pid = m->pid();
      logger().warning("killing module name=" + name + " pid=" + std::to_string(pid));
      ::kill(pid, SIGKILL);
      int status = 0;
      if (::waitpid(pid, &status, 0) == pid) m->child_exited(pid, status);
    }
  }
}

bool ModulePool::any_running() const {
  for (const auto& [name, pool] : modules_)
    for (const auto& m : pool)
      if (m->running()) return true;
  return false;
}

}  // namespace estafette::courierd
