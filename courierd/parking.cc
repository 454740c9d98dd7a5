#include "courierd/parking.h"

#include "courierd/wall_clock.h"
#include "lib/base/log.h"
#include "lib/config/resolver_options.h"

namespace estafette::courierd {

namespace {

Poco::Logger& logger() {
  return base::log("courierd");
}

}  // namespace

Parking::Parking(event::Loop& loop, const config::Config& config, Scheduler& scheduler,
                 queue::Backend& backend, Added on_added)
    : config_(config),
      scheduler_(scheduler),
      backend_(backend),
      on_added_(std::move(on_added)),
      sites_(loop, config::resolver_options(config), config.destinations) {}

void Parking::start() {
  sites_.start();
}

bool Parking::known(const queue::QueueId& id) const {
  return scheduler_.contains(id) || parked_.count(id) > 0;
}

void Parking::schedule(queue::StoredMessage m, bool recovered) {
  const queue::QueueId id = m.envelope.id;
  if (known(id)) return;
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

void Parking::on_site(const queue::QueueId& id, const std::string& domain, const std::string& key) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  Parked& p = it->second;
  p.keys[domain] = key;
  if (--p.lookups > 0) return;
  Parked ready = std::move(p);
  parked_.erase(it);
  if (stopped_) return;  // still on disk: the next start finds it
  add(std::move(ready.message), ready.recovered, ready.keys);
  if (on_added_) on_added_();
}

Destination Parking::route(const std::string& recipient, bool program,
                           const std::unordered_map<std::string, std::string>& keys) const {
  Destination d = destination_for(config_, *router_, recipient, program);
  if (!d.mx_lookup) return d;
  auto it = keys.find(d.key);
  if (it == keys.end() || it->second == d.key) return d;
  d.key = it->second;
  if (const auto* site = sites_.site_limits(d.key)) d.limits = config::strictest(d.limits, *site);
  return d;
}

Destination Parking::route_known(const std::string& recipient, bool program) {
  std::unordered_map<std::string, std::string> keys;
  Destination d = destination_for(config_, *router_, recipient, program);
  if (d.mx_lookup)
    if (auto key = sites_.cached(d.key, Sites::Clock::now())) keys.emplace(d.key, *key);
  return route(recipient, program, keys);
}

void Parking::add(queue::StoredMessage m, bool recovered,
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
      if (backend_.remove(id)) logger().information("id=" + id + " removed");
      break;
  }
}

std::vector<QueuedMessage> Parking::snapshot() const {
  std::vector<QueuedMessage> out;
  out.reserve(parked_.size());
  for (const auto& [id, p] : parked_) {
    const auto& env = p.message.envelope;
    QueuedMessage e{
        id, env.arrival, p.message.body_size, env.sender, p.message.held, env.quarantine, {}};
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
      if (i < p.message.done.size() && p.message.done[i]) continue;
      QueuedRecipient q;
      q.address = env.recipients[i];
      q.destination = destination_for(config_, *router_, q.address, env.programs.count(i) > 0).key;
      q.state = p.message.held ? QueuedRecipient::State::Held : QueuedRecipient::State::Ready;
      e.recipients.push_back(std::move(q));
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace estafette::courierd
