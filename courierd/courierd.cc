#include "courierd/courierd.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "courierd/dsn.h"
#include "lib/base/cpus.h"
#include "lib/base/log.h"
#include "lib/base/net.h"
#include "lib/base/paths.h"
#include "lib/config/resolver_options.h"
#include "lib/ipc/messages.h"
#include "lib/smtp/address.h"
#include "lib/smtp/esmtp_params.h"

namespace estafette::courierd {

namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(3);  // jobs in flight, then children
// How often mail waiting behind a held destination is checked for expiry (queue_lifetime).
constexpr auto kExpiryCheck = std::chrono::seconds(60);

Poco::Logger& logger() {
  return base::log("courierd");
}

Time wall_now() {
  return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
}

std::int64_t ms_of(Time t) {
  return t.time_since_epoch().count();
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", s < 0 ? 0.0 : s);
  return buf;
}

// Since arrival (unix seconds) until now, for delay= in logs.
std::string delay_text(std::int64_t arrival, Time now) {
  return seconds_text(static_cast<double>(ms_of(now)) / 1000.0 - static_cast<double>(arrival));
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n') c = ' ';
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  while (out.size() > 1 && out.back() == ' ') out.pop_back();
  return out + "\"";
}

Outcome outcome_of(ipc::RcptStatus status) {
  switch (status) {
    case ipc::RcptStatus::Delivered:
      return Outcome::Delivered;
    case ipc::RcptStatus::PermFail:
      return Outcome::PermFail;
    case ipc::RcptStatus::TempFail:
      break;
  }
  return Outcome::TempFail;
}

std::string program_for(const std::string& module) {
  return module == kLocalModule ? "estafette-local" : "estafette-esmtpclient";
}

}  // namespace

Courierd::Courierd(event::Loop& loop, const config::Config& config, std::string config_path,
                   queue::Backend& backend)
    : loop_(loop),
      config_(config),
      config_path_(std::move(config_path)),
      backend_(backend),
      random_(std::random_device{}()),
      scheduler_(config, Limits::from(config),
                 [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }),
      sites_(loop, config::resolver_options(config), config.destinations) {}

Courierd::~Courierd() {
  loop_.cancel_timer(wakeup_timer_);
  loop_.cancel_timer(expiry_timer_);
  loop_.cancel_timer(reap_timer_);
  loop_.cancel_timer(grace_timer_);
  if (listener_) loop_.remove_fd(listener_.get());
}

ModuleProcess* Courierd::pick(const std::string& name) {
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

bool Courierd::any_ready(const std::string& name) const {
  auto it = modules_.find(name);
  if (it == modules_.end()) return false;
  for (const auto& m : it->second)
    if (m->ready()) return true;
  return false;
}

void Courierd::start() {
  router_ = routing::Router::load(config_);  // throws config::ConfigError (file:line)
  scheduler_.set_router(router_);
  loop_.on_signal(SIGHUP, [this] { reload(); });
  loop_.on_signal(SIGTERM, [this] { begin_shutdown(); });
  loop_.on_signal(SIGINT, [this] { begin_shutdown(); });
  loop_.on_signal(SIGCHLD, [this] { reap_children(); });

  Time now = wall_now();
  const std::size_t esmtp_processes =
      config::resolve_processes(config_.esmtpclient_processes, base::usable_cpus());
  // Maildir delivery waits on fsync; several processes let the file system share journal
  // commits between them.
  const std::size_t local_processes =
      config::resolve_processes(config_.local_processes, base::usable_cpus());
  for (auto name : {kLocalModule, kEsmtpModule}) {
    std::string n(name);
    scheduler_.set_module_paused(n, true, now);
    std::size_t copies = n == kEsmtpModule ? esmtp_processes : local_processes;
    for (std::size_t i = 0; i < copies; ++i) {
      ModuleProcess::Callbacks cb;
      cb.on_ready = [this, n] {
        scheduler_.set_module_paused(n, false, wall_now());
        pump();
      };
      cb.on_result = [this, n](const ipc::DeliverResult& r) { on_result(n, r); };
      cb.on_down = [this, n](std::vector<std::uint64_t> lost) { on_module_down(n, lost); };
      modules_[n].push_back(std::make_unique<ModuleProcess>(
          loop_, n, base::program_path(program_for(n)), config_path_, std::move(cb)));
    }
  }

  sites_.start();
  recover();
  listen();
  for (auto& [name, pool] : modules_)
    for (auto& m : pool) m->start();
  schedule_expiry();
  pump();
}

void Courierd::reload() {
  try {
    router_ = routing::Router::load(config_);
    scheduler_.set_router(router_);
    logger().information("reloaded routing: aliases=" + std::to_string(router_->alias_count()));
  } catch (const std::exception& e) {
    logger().error(std::string("reload failed, keeping the previous maps: ") + e.what());
  }
  // The local module reads the mailbox maps too (esmtpclient has none).
  for (auto& m : modules_[std::string(kLocalModule)])
    if (m->running()) ::kill(m->pid(), SIGHUP);
}

void Courierd::recover() {
  std::size_t found = 0;
  backend_.scan([&](queue::StoredMessage&& m) {
    ++found;
    schedule(std::move(m), true);
  });
  logger().information("recovered messages=" + std::to_string(found) +
                       " scheduled=" + std::to_string(scheduler_.message_count()));
}

void Courierd::listen() {
  const std::string path = config_.courierd_socket();
  if (!base::make_dirs(config_.run_dir()))
    throw std::runtime_error("cannot create " + config_.run_dir() + ": " + base::errno_text(errno));
  // Replaces a stale socket from an earlier run; throws std::system_error naming the path.
  listener_ = base::listen_unix(path, 64);
  loop_.add_fd(listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
  logger().information("listening socket=" + path);
}

void Courierd::on_accept() {
  for (;;) {
    int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        logger().warning(std::string("accept: ") + base::errno_text(errno));
      return;
    }
    std::uint64_t id = next_client_++;
    clients_[id] = std::make_unique<ipc::Channel>(
        loop_, base::UniqueFd(c), [this, id](const ipc::Frame& f) { on_client_frame(id, f); },
        [this, id] { drop_client(id); });
  }
}

void Courierd::drop_client(std::uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  // Called from inside the channel: destroy it later, outside its callback.
  closed_clients_.push_back(std::move(it->second));
  clients_.erase(it);
  if (!reap_timer_)
    reap_timer_ = loop_.add_timer(std::chrono::milliseconds(0), [this] {
      reap_timer_ = 0;
      closed_clients_.clear();
    });
}

void Courierd::on_client_frame(std::uint64_t client, const ipc::Frame& frame) {
  if (auto m = ipc::decode_new_message(frame)) {
    on_new_message(m->queue_id);
    return;
  }
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  if (ipc::decode_queue_list_request(frame)) {
    send_queue_list(*it->second);
    return;
  }
  if (auto f = ipc::decode_flush_request(frame)) {
    flush(*it->second, *f);
    return;
  }
  if (auto op = ipc::decode_queue_op_request(frame)) {
    queue_op(*it->second, *op);
    return;
  }
  logger().warning("unexpected frame from a client type=" + std::to_string(frame.type));
}

void Courierd::send_queue_list(ipc::Channel& client) {
  Time now = wall_now();
  auto entries = scheduler_.snapshot(now);
  // Messages waiting for their MX sites: ready, under their domain, until the answer comes.
  for (const auto& [id, p] : parked_) {
    const auto& env = p.message.envelope;
    ipc::QueueEntry e{id, env.arrival, p.message.body_size, env.sender, p.message.held, {}};
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
      if (i < p.message.done.size() && p.message.done[i]) continue;
      ipc::QueuedRcpt q;
      q.address = env.recipients[i];
      q.destination = destination_for(config_, *router_, q.address, env.programs.count(i) > 0).key;
      q.state = p.message.held ? ipc::RcptState::Held : ipc::RcptState::Ready;
      e.recipients.push_back(std::move(q));
    }
    entries.push_back(std::move(e));
  }
  for (const auto& e : entries) client.send(ipc::encode(e));
  client.send(
      ipc::encode(ipc::QueueListEnd{static_cast<std::uint32_t>(entries.size()), ms_of(now)}));
  logger().debug("mailq messages=" + std::to_string(entries.size()));
}

void Courierd::flush(ipc::Channel& client, const ipc::FlushRequest& request) {
  std::size_t ready = scheduler_.flush(request.scope, request.target, wall_now());
  const char* scope = request.scope == ipc::FlushScope::All       ? "all"
                      : request.scope == ipc::FlushScope::Message ? "message"
                                                                  : "domain";
  logger().information(std::string("flush scope=") + scope +
                       (request.target.empty() ? "" : " target=" + quoted(request.target)) +
                       " ready=" + std::to_string(ready));
  client.send(ipc::encode(ipc::FlushReply{ready}));
  pump();
}

void Courierd::queue_op(ipc::Channel& client, const ipc::QueueOpRequest& request) {
  Time now = wall_now();
  ipc::QueueOpReply reply;
  const bool by_id = !request.all;
  if (request.op == ipc::QueueOp::Hold || request.op == ipc::QueueOp::Release) {
    reply = set_held(request, now);
  } else if (!by_id) {
    reply.status = ipc::QueueOpStatus::Failed;
    reply.error = "cancel and delete take one queue id";
  } else {
    const bool cancel = request.op == ipc::QueueOp::Cancel;
    RemovalReport removal = scheduler_.cancel(request.queue_id, cancel);
    if (!removal.found) {
      reply.status = ipc::QueueOpStatus::NotFound;
    } else {
      reply.messages = 1;
      reply.recipients = removal.report.bounced.size() + removal.report.dropped.size();
      reply.in_flight = removal.in_flight;
      logger().information(std::string(cancel ? "cancel" : "delete") + " id=" + request.queue_id +
                           " nrcpt=" + std::to_string(reply.recipients) +
                           " in_flight=" + std::to_string(reply.in_flight));
      finish_removal(removal, now);
    }
  }
  if (reply.status == ipc::QueueOpStatus::NotFound)
    logger().information("admin request for a message not in the queue id=" +
                         quoted(request.queue_id));
  client.send(ipc::encode(reply));
  pump();
}

ipc::QueueOpReply Courierd::set_held(const ipc::QueueOpRequest& request, Time now) {
  const bool hold = request.op == ipc::QueueOp::Hold;
  ipc::QueueOpReply reply;
  std::vector<queue::QueueId> ids;
  if (request.all) {
    ids = scheduler_.message_ids(!hold);  // hold: those not held yet; release: the held ones
  } else if (scheduler_.contains(request.queue_id)) {
    ids.push_back(request.queue_id);
  } else {
    reply.status = ipc::QueueOpStatus::NotFound;
    return reply;
  }
  // Durable first (one fsync for all): a hold must survive a restart.
  if (!backend_.set_held(ids, hold)) {
    reply.status = ipc::QueueOpStatus::Failed;
    reply.error = "the queue could not record it (see courierd's log)";
    return reply;
  }
  for (const auto& id : ids) {
    HoldResult r = hold
                       ? scheduler_.hold(id)
                       : scheduler_.release(id, now, [this](const std::string& rcpt, bool program) {
                           return route_known(rcpt, program);
                         });
    if (!r.found) continue;
    ++reply.messages;
    reply.recipients += r.recipients;
    reply.in_flight += r.in_flight;
    logger().information(std::string(hold ? "hold" : "release") + " id=" + id +
                         " nrcpt=" + std::to_string(r.recipients) +
                         " in_flight=" + std::to_string(r.in_flight));
  }
  return reply;
}

void Courierd::finish_removal(const RemovalReport& removal, Time now) {
  const auto& env = removal.message.envelope;
  const auto& report = removal.report;
  const std::string delay = delay_text(env.arrival, now);
  for (const auto& b : report.bounced)
    logger().information("bounced id=" + env.id + " to=<" + b.recipient +
                         "> relay=none delay=" + delay + " reply=" + quoted(b.reply));
  for (auto i : report.dropped)
    logger().information("dropped id=" + env.id + " to=<" + env.recipients[i] + "> delay=" + delay +
                         " (deleted by the administrator)");
  if (auto failed = bounce_recipients(env, report.bounced, ""); !failed.empty())
    send_notice(removal.message, failed, now);
  std::vector<std::size_t> done = report.dropped;
  for (const auto& b : report.bounced) done.push_back(b.rcpt_index);
  // Durable even when the message goes next (unlike after deliveries): a crash must not bring
  // back mail the administrator removed.
  if (!done.empty() && !backend_.mark_done(env.id, done))
    logger().error("mark_done failed id=" + env.id);
  if (report.message_finished) {
    if (backend_.remove(env.id))
      logger().information("removed id=" + env.id);
    else
      logger().error("remove failed id=" + env.id);
  }
}

void Courierd::on_new_message(const queue::QueueId& id) {
  if (stopping_) return;  // still on disk: the next start finds it
  if (!queue::valid_queue_id(id)) {
    logger().warning("bad queue id in NewMessage: " + quoted(id));
    return;
  }
  if (scheduler_.contains(id) || parked_.count(id)) return;
  auto m = backend_.load(id);
  if (!m) {
    logger().warning("new message not found id=" + id);
    return;
  }
  schedule(std::move(*m), false);
  pump();
}

void Courierd::schedule(queue::StoredMessage m, bool recovered) {
  const queue::QueueId id = m.envelope.id;
  if (scheduler_.contains(id) || parked_.count(id)) return;
  // The MX sites of its remote domains: kept ones now, the others looked up while it waits.
  std::unordered_map<std::string, std::string> keys;
  std::vector<std::string> lookups;
  auto now = Sites::Clock::now();
  for (std::size_t i = 0; i < m.envelope.recipients.size(); ++i) {
    if (i < m.done.size() && m.done[i]) continue;
    auto d = destination_for(config_, *router_, m.envelope.recipients[i],
                             m.envelope.programs.count(i) > 0);
    if (!d.mx_lookup || keys.count(d.key)) continue;
    if (auto key = sites_.cached(d.key, now)) {
      keys[d.key] = *key;
    } else {
      keys[d.key] = d.key;  // until the answer comes
      lookups.push_back(d.key);
    }
  }
  if (lookups.empty()) {
    add(std::move(m), recovered, keys);
    return;
  }
  parked_[id] = Parked{std::move(m), recovered, lookups.size(), std::move(keys)};
  for (const auto& domain : lookups)
    sites_.resolve(domain,
                   [this, id, domain](const std::string& key) { on_site(id, domain, key); });
}

void Courierd::on_site(const queue::QueueId& id, const std::string& domain,
                       const std::string& key) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  Parked& p = it->second;
  p.keys[domain] = key;
  if (--p.lookups > 0) return;
  Parked ready = std::move(p);
  parked_.erase(it);
  if (stopping_) return;  // still on disk: the next start finds it
  add(std::move(ready.message), ready.recovered, ready.keys);
  pump();
}

Destination Courierd::route(const std::string& recipient, bool program,
                            const std::unordered_map<std::string, std::string>& keys) const {
  Destination d = destination_for(config_, *router_, recipient, program);
  if (!d.mx_lookup) return d;
  auto it = keys.find(d.key);
  if (it == keys.end() || it->second == d.key) return d;
  d.key = it->second;
  if (const auto* site = sites_.site_limits(d.key)) d.limits = config::strictest(d.limits, *site);
  return d;
}

Destination Courierd::route_known(const std::string& recipient, bool program) {
  std::unordered_map<std::string, std::string> keys;
  Destination d = destination_for(config_, *router_, recipient, program);
  if (d.mx_lookup)
    if (auto key = sites_.cached(d.key, Sites::Clock::now())) keys.emplace(d.key, *key);
  return route(recipient, program, keys);
}

void Courierd::add(queue::StoredMessage m, bool recovered,
                   const std::unordered_map<std::string, std::string>& keys) {
  const queue::QueueId id = m.envelope.id;
  std::string line = "queued id=" + id + " from=<" + m.envelope.sender +
                     "> nrcpt=" + std::to_string(m.envelope.recipients.size()) +
                     " size=" + std::to_string(m.body_size);
  auto by_site = [this, &keys](const std::string& rcpt, bool program) {
    return route(rcpt, program, keys);
  };
  switch (scheduler_.add(std::move(m), wall_now(), by_site)) {
    case Scheduler::AddResult::Added:
      logger().information(line + (recovered ? " recovered=yes" : ""));
      break;
    case Scheduler::AddResult::Duplicate:
      break;
    case Scheduler::AddResult::NothingPending:
      // Every recipient finished before a crash kept us from removing it.
      if (backend_.remove(id)) logger().information("removed id=" + id);
      break;
  }
}

void Courierd::pump() {
  if (stopping_) return;
  Time now = wall_now();
  send_delay_warnings(now);
  while (auto job = scheduler_.next_job(now)) dispatch(*job, now);
  loop_.cancel_timer(wakeup_timer_);
  wakeup_timer_ = 0;
  if (auto at = scheduler_.next_wakeup()) {
    auto delay = std::max(Millis(0), *at - wall_now());
    wakeup_timer_ = loop_.add_timer(delay, [this] {
      wakeup_timer_ = 0;
      pump();
    });
  }
}

void Courierd::dispatch(const Job& job, Time now) {
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
  if (!env.dsn.empty()) {
    for (auto i : job.rcpt_indexes) {
      d.notify.push_back(env.dsn_of(i).notify);
      d.orcpt.push_back(env.dsn_of(i).orcpt);
    }
  }
  running_[job.id] = Running{job, ms_of(now)};
  if (!mod->send(d)) {
    running_.erase(job.id);
    scheduler_.requeue(job.id, now);
  }
}

void Courierd::on_result(const std::string& module_name, const ipc::DeliverResult& result) {
  auto rit = running_.find(result.job_id);
  if (rit == running_.end()) return;
  Running running = std::move(rit->second);
  running_.erase(rit);
  const Job& job = running.job;
  Time now = wall_now();

  const auto* m = scheduler_.message(job.queue_id);
  if (!m) {  // never: a message with a job in flight has pending recipients
    scheduler_.complete(job.id, {}, false, now);
    return;
  }
  queue::StoredMessage original = m->stored;  // the scheduler may forget it in complete()
  const auto& env = original.envelope;

  std::vector<RcptOutcome> outcomes;
  for (const auto& r : result.results) outcomes.push_back({outcome_of(r.status), r.reply});
  if (result.results.size() != job.recipients.size())
    logger().warning("module=" + module_name + " job=" + std::to_string(job.id) + " returned " +
                     std::to_string(result.results.size()) + " results for " +
                     std::to_string(job.recipients.size()) + " recipients");
  JobReport report = scheduler_.complete(job.id, outcomes, result.host_failed, now);

  const std::string relay = result.remote.empty() ? module_name : result.remote;
  const std::string delay = delay_text(env.arrival, now);
  std::vector<std::string> replies(env.recipients.size());
  for (std::size_t n = 0; n < job.rcpt_indexes.size() && n < result.results.size(); ++n)
    replies[job.rcpt_indexes[n]] = result.results[n].reply;
  for (auto i : report.delivered)
    logger().information("delivered id=" + env.id + " to=<" + env.recipients[i] +
                         "> relay=" + relay + " delay=" + delay + " reply=" + quoted(replies[i]));
  for (const auto& d : report.deferred)
    logger().information(
        "deferred id=" + env.id + " to=<" + d.recipient + "> relay=" + relay + " delay=" + delay +
        (d.held ? std::string(" held=yes")
                : " retry_in=" +
                      seconds_text(static_cast<double>((d.retry_at - now).count()) / 1000.0)) +
        (result.host_failed ? " host_failed=yes" : "") + " reply=" + quoted(d.reply));
  for (auto i : report.dropped)
    logger().information("dropped id=" + env.id + " to=<" + env.recipients[i] + "> relay=" + relay +
                         " delay=" + delay + " (deleted by the administrator)");
  for (const auto& b : report.bounced)
    logger().information("bounced id=" + env.id + " to=<" + b.recipient + "> relay=" + relay +
                         " delay=" + delay + (b.expired ? " expired=yes" : "") +
                         " reply=" + quoted(b.reply));

  std::string remote_mta;
  if (module_name == kEsmtpModule && !result.remote.empty())
    remote_mta = remote_host_name(result.remote);
  // NOTIFY=SUCCESS: we report a local delivery; a next hop that took the DSN parameters
  // reports its own, and one that did not gets "relayed" from us (RFC 3461 5.2.2).
  std::optional<DsnAction> on_delivery;
  if (module_name == kLocalModule)
    on_delivery = DsnAction::Delivered;
  else if (!result.next_hop_dsn)
    on_delivery = DsnAction::Relayed;
  apply(original, report, remote_mta, now, on_delivery, replies);
  if (stopping_)
    maybe_exit();
  else
    pump();
}

// Every kExpiryCheck: mail waiting behind a held destination bounces once it has expired.
void Courierd::schedule_expiry() {
  expiry_timer_ = loop_.add_timer(kExpiryCheck, [this] {
    expiry_timer_ = 0;
    if (stopping_) return;
    expire_held(wall_now());
    pump();
    schedule_expiry();
  });
}

void Courierd::expire_held(Time now) {
  for (auto& expired : scheduler_.expire_held(now)) {
    const auto& env = expired.message.envelope;
    const std::string delay = delay_text(env.arrival, now);
    for (const auto& b : expired.report.bounced)
      logger().information("bounced id=" + env.id + " to=<" + b.recipient +
                           "> relay=none delay=" + delay + " expired=yes reply=" + quoted(b.reply));
    apply(expired.message, expired.report, "", now, std::nullopt, {});
  }
}

void Courierd::apply(const queue::StoredMessage& original, const JobReport& report,
                     const std::string& remote_mta, Time now, std::optional<DsnAction> on_delivery,
                     const std::vector<std::string>& replies) {
  const auto& env = original.envelope;
  // One notice per action: the bounced recipients that want failure notices, and the delivered
  // ones that asked for success notices.
  std::vector<DsnRecipient> failed = bounce_recipients(env, report.bounced, remote_mta);
  std::vector<DsnRecipient> succeeded;
  if (on_delivery) {
    for (auto i : report.delivered) {
      const auto& dsn = env.dsn_of(i);
      if (!(smtp::notify_flags(dsn.notify) & smtp::kNotifySuccess)) continue;
      succeeded.push_back({env.recipients[i], i < replies.size() ? replies[i] : "", remote_mta,
                           false, *on_delivery, dsn.orcpt});
    }
  }
  if (!failed.empty()) send_notice(original, failed, now);
  if (!succeeded.empty()) send_notice(original, succeeded, now);
  std::vector<std::size_t> done = report.delivered;
  done.insert(done.end(), report.dropped.begin(), report.dropped.end());
  for (const auto& b : report.bounced) done.push_back(b.rcpt_index);
  // A finished message is simply removed: recording its last recipients first would cost an
  // fdatasync per message for nothing (a crash before the unlink only risks a duplicate).
  if (!report.message_finished && !done.empty() && !backend_.mark_done(env.id, done))
    logger().error("mark_done failed id=" + env.id + " (recipients may be delivered twice)");
  if (report.message_finished) {
    if (backend_.remove(env.id))
      logger().information("removed id=" + env.id);
    else
      logger().error("remove failed id=" + env.id);
  }
}

std::vector<DsnRecipient> Courierd::bounce_recipients(const queue::Envelope& env,
                                                      const std::vector<Bounce>& bounced,
                                                      const std::string& remote_mta) {
  std::vector<DsnRecipient> failed;
  for (const auto& b : bounced) {
    const auto& dsn = env.dsn_of(b.rcpt_index);
    if (smtp::notify_flags(dsn.notify) & smtp::kNotifyFailure)
      failed.push_back({b.recipient, b.reply, remote_mta, b.expired, DsnAction::Failed, dsn.orcpt});
    else
      logger().information("no bounce id=" + env.id + " to=<" + b.recipient +
                           "> (NOTIFY=" + dsn.notify + ")");
  }
  return failed;
}

void Courierd::send_delay_warnings(Time now) {
  std::vector<queue::QueueId> warned;
  for (auto& w : scheduler_.take_delay_warnings(now)) {
    std::vector<DsnRecipient> delayed;
    for (const auto& r : w.recipients)
      delayed.push_back({r.recipient, r.last_error, "", false, DsnAction::Delayed,
                         w.message.envelope.dsn_of(r.rcpt_index).orcpt});
    if (send_notice(w.message, delayed, now, ms_of(w.expires) / 1000))
      warned.push_back(w.message.envelope.id);
  }
  // So that a restarted courierd does not warn again. Not fsynced: a crash before the state
  // reaches the disk repeats one warning per message at worst.
  if (!warned.empty() && !backend_.set_warned(warned))
    logger().error("cannot record the delay warnings sent for " + std::to_string(warned.size()) +
                   " message(s): a restart may send them again");
}

bool Courierd::send_notice(const queue::StoredMessage& original,
                           const std::vector<DsnRecipient>& recipients, Time now,
                           std::int64_t retry_until) {
  const auto& env = original.envelope;
  const DsnAction action = recipients.front().action;
  const std::string kind(action_text(action));
  if (env.sender.empty()) {
    // Notices go to the sender; one with the null sender gets none (it is a notice itself).
    if (action == DsnAction::Failed)
      logger().warning("double-bounce id=" + env.id +
                       " nrcpt=" + std::to_string(recipients.size()) + " dropped (null sender)");
    return true;
  }
  DsnRequest req;
  req.hostname = config_.hostname;
  req.message_id = queue::make_queue_id();
  req.queue_id = env.id;
  req.sender = env.sender;
  req.arrival = env.arrival;
  req.now = ms_of(now) / 1000;
  req.envid = env.envid;
  req.retry_until = retry_until;
  req.recipients = recipients;
  // RET=HDRS, or any notice but a bounce: the headers; a bounce otherwise: the whole message,
  // unless it is larger than what we accept (then the headers, as for RET=HDRS).
  if (action == DsnAction::Failed && smtp::parse_ret_text(env.ret) != smtp::DsnRet::Hdrs)
    req.original_message = read_original_message(original.path, original.body_offset,
                                                 original.body_size, config_.max_message_size);
  if (req.original_message.empty())
    req.original_headers =
        read_original_headers(original.path, original.body_offset, original.body_size);

  queue::Envelope dsn_env;
  dsn_env.id = req.message_id;
  dsn_env.arrival = req.now;
  dsn_env.sender = "";
  // A bounce to a local sender goes where its aliases lead (as mail to it would).
  auto expanded = routing::expand_recipients(*router_, {env.sender});
  dsn_env.recipients = std::move(expanded.recipients);
  dsn_env.programs = std::move(expanded.programs);
  queue::QueueId dsn_id;
  bool written = false;
  try {
    written = queue::write_message(backend_, dsn_env, compose_dsn(req), &dsn_id);
  } catch (const std::exception& e) {
    logger().error("notice (" + kind + "): " + e.what());
  }
  if (!written) {
    logger().error("cannot queue the " + kind + " notice for id=" + env.id + " to=<" + env.sender +
                   ">");
    return false;
  }
  // "bounce id=..." as before for failures; "dsn action=..." for the other notices.
  if (action == DsnAction::Failed)
    logger().information("bounce id=" + env.id + " dsn=" + dsn_id + " to=<" + env.sender + ">");
  else
    logger().information("dsn action=" + kind + " id=" + env.id + " dsn=" + dsn_id + " to=<" +
                         env.sender + "> nrcpt=" + std::to_string(recipients.size()));
  if (auto m = backend_.load(dsn_id)) schedule(std::move(*m), false);
  return true;
}

void Courierd::on_module_down(const std::string& module_name,
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
    if (removal.found) finish_removal(removal, now);  // cancelled or deleted meanwhile
  }
  if (stopping_)
    maybe_exit();
  else
    pump();
}

void Courierd::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    bool ours = false;
    for (auto& [name, pool] : modules_)
      for (auto& m : pool) ours = ours || m->child_exited(pid, status);
    if (!ours) logger().information("reaped pid=" + std::to_string(pid));
  }
  if (stopping_) maybe_exit();
}

void Courierd::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  logger().information("stopping in_flight=" + std::to_string(running_.size()));
  loop_.cancel_timer(wakeup_timer_);
  wakeup_timer_ = 0;
  loop_.cancel_timer(expiry_timer_);
  expiry_timer_ = 0;
  if (listener_) {
    loop_.remove_fd(listener_.get());
    listener_.reset();
    ::unlink(config_.courierd_socket().c_str());
  }
  for (auto& [id, c] : clients_) closed_clients_.push_back(std::move(c));
  clients_.clear();
  // Jobs in flight get a grace period to report; then the modules are told to go.
  grace_timer_ = loop_.add_timer(kShutdownGrace, [this] {
    grace_timer_ = 0;
    if (!modules_stopped_) stop_modules();
  });
  maybe_exit();
}

void Courierd::stop_modules() {
  modules_stopped_ = true;
  loop_.cancel_timer(grace_timer_);
  // Modules exit on EOF; one that does not within the grace period is killed.
  grace_timer_ = loop_.add_timer(kShutdownGrace, [this] {
    grace_timer_ = 0;
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
    stopped_ = true;
    logger().information("stopped");
    loop_.stop();
  });
  for (auto& [name, pool] : modules_)
    for (auto& m : pool) m->stop();
}

void Courierd::maybe_exit() {
  if (!stopping_) return;
  if (!modules_stopped_ && running_.empty()) stop_modules();
  if (!modules_stopped_) return;
  for (auto& [name, pool] : modules_)
    for (auto& m : pool)
      if (m->running()) return;
  if (stopped_) return;
  stopped_ = true;
  logger().information("stopped");
  loop_.stop();
}

}  // namespace estafette::courierd
