#include "lib/mtasts/policy_source.h"

#include <ctime>

#include "lib/base/log.h"

namespace estafette::mtasts {
namespace {

Poco::Logger& logger() {
  return base::log("mta-sts");
}

Decision no_policy(const std::string& domain, const std::string& note) {
  Decision d;
  d.domain = domain;
  d.note = note;
  return d;
}

Decision from_entry(const CachedPolicy& e, Decision::Source source, const std::string& note) {
  Decision d;
  d.mode = e.policy.mode;
  d.source = source;
  d.domain = e.domain;
  d.id = e.id;
  d.policy = e.policy;
  d.expires = e.expires();
  d.note = note;
  return d;
}

}  // namespace

const char* to_string(Decision::Source source) {
  switch (source) {
    case Decision::Source::None:
      return "none";
    case Decision::Source::Fetched:
      return "fetched";
    case Decision::Source::Cache:
      return "cache";
  }
  return "?";
}

MxCheck check_mx(const Decision& decision, std::string_view mx_host) {
  MxCheck c;
  if (decision.source == Decision::Source::None || decision.mode == Mode::None) return c;
  std::string_view host = mx_host;
  if (host.ends_with('.')) host.remove_suffix(1);
  c.verify = true;
  c.verify_name = std::string(host);
  c.report_only = decision.mode == Mode::Testing;
  if (!mx_allowed(decision.policy, host)) {
    c.reason = "MX host " + c.verify_name + " does not match the MTA-STS policy of " +
               decision.domain + " (" + to_string(decision.mode) + ")";
    c.allowed = c.report_only;  // testing: delivered anyway, the mismatch only reported
  }
  return c;
}

PolicySource::PolicySource(event::Loop& loop, dns::Resolver& resolver,
                           std::shared_ptr<tls::ClientContext> tls, PolicyCache& cache,
                           SourceOptions options)
    : loop_(loop),
      resolver_(resolver),
      tls_(std::move(tls)),
      cache_(cache),
      options_(std::move(options)) {}

PolicySource::~PolicySource() = default;

std::int64_t PolicySource::now() const {
  return options_.now ? options_.now() : static_cast<std::int64_t>(std::time(nullptr));
}

Lookup PolicySource::lookup(const std::string& name, Callback callback) {
  auto token = std::make_shared<detail::LookupToken>();
  auto domain = normalize_domain(name);
  if (!domain) {
    Decision d = no_policy(name, "not a domain name");
    loop_.post(guard_.wrap([token, callback = std::move(callback), d] {
      if (!token->cancelled) callback(d);
    }));
    return Lookup(token);
  }
  auto [it, fresh] = pending_.try_emplace(*domain);
  it->second.waiters.push_back({token, std::move(callback)});
  if (fresh) {
    std::string d = *domain;
    it->second.txt = resolver_.lookup_txt(
        "_mta-sts." + d, guard_.wrap([this, d](dns::Status s, std::vector<std::string> records) {
          on_txt(d, s, std::move(records));
        }));
  }
  return Lookup(token);
}

const CachedPolicy* PolicySource::entry(const std::string& domain, const std::string& want_id) {
  auto it = memory_.find(domain);
  if (it != memory_.end() && (want_id.empty() || it->second.id == want_id) &&
      it->second.expires() > now())
    return &it->second;
  // Not in memory, another id or expired: another process may have fetched a new one already.
  std::string why;
  auto loaded = cache_.load(domain, &why);
  if (!why.empty()) logger().warning("ignoring cached MTA-STS policy " + why);
  if (!loaded) return it == memory_.end() ? nullptr : &it->second;
  remember(std::move(*loaded));
  return &memory_.at(domain);
}

void PolicySource::remember(CachedPolicy e) {
  if (memory_.size() >= options_.memory_entries && !memory_.contains(e.domain))
    memory_.clear();  // a bound, not an LRU: the disk still has them
  std::string domain = e.domain;
  memory_.insert_or_assign(domain, std::move(e));
}

Decision PolicySource::from_cache(const std::string& domain, const std::string& note, bool failed) {
  const CachedPolicy* e = entry(domain, "");
  if (!e || e->expires() <= now()) {
    Decision d = no_policy(domain, note);
    d.failed = failed;
    if (e) d.note += "; the cached policy expired";
    return d;
  }
  return from_entry(*e, Decision::Source::Cache, note);
}

Decision PolicySource::cached(const std::string& name) {
  auto domain = normalize_domain(name);
  if (!domain) return no_policy(name, "not a domain name");
  return from_cache(*domain, "no cached policy", false);
}

void PolicySource::on_txt(const std::string& domain, dns::Status status,
                          std::vector<std::string> records) {
  auto it = pending_.find(domain);
  if (it == pending_.end()) return;
  if (status != dns::Status::Ok) {
    // NXDOMAIN or no TXT: no policy published now, yet a cached one holds until it expires
    // (a domain ends its policy with mode none, 5.1); a failure: the cache is what we have.
    std::string note = std::string("TXT _mta-sts.") + domain + ": " + dns::to_string(status);
    deliver(domain, from_cache(domain, note, status != dns::Status::NotFound));
    return;
  }
  auto txt = parse_txt_records(records);
  if (!txt.ok) {
    bool none = records.empty() || txt.reason == kNoStsRecord;
    deliver(domain, from_cache(domain, "TXT _mta-sts." + domain + ": " + txt.reason, !none));
    return;
  }
  const CachedPolicy* e = entry(domain, txt.id);
  if (e && e->id == txt.id && e->expires() > now()) {
    deliver(domain, from_cache(domain, "", false));
    return;
  }
  Pending& p = it->second;
  p.id = txt.id;
  p.fetch = std::make_unique<PolicyFetch>(loop_, resolver_, tls_, options_.fetch);
  p.fetch->start(domain,
                 guard_.wrap([this, domain](const FetchResult& r) { on_fetched(domain, r); }));
}

void PolicySource::on_fetched(const std::string& domain, const FetchResult& result) {
  auto it = pending_.find(domain);
  if (it == pending_.end()) return;
  if (!result.ok) {
    logger().warning("MTA-STS policy fetch failed: " + result.reason);
    deliver(domain, from_cache(domain, "fetch failed: " + result.reason, true));
    return;
  }
  CachedPolicy e;
  e.domain = domain;
  e.id = it->second.id;
  e.policy = result.policy;
  e.fetched = now();
  std::string why;
  if (!cache_.store(e, &why))
    logger().warning("cannot cache the MTA-STS policy of " + domain + ": " + why);
  logger().information("MTA-STS policy of " + domain + " fetched from " + result.address +
                       ": mode=" + to_string(e.policy.mode) +
                       " max_age=" + std::to_string(e.policy.max_age) + " id=" + e.id);
  Decision d = from_entry(e, Decision::Source::Fetched, "");
  remember(std::move(e));
  deliver(domain, d);
}

// Ends the pending lookup of `domain`; its waiters hear `decision` from the loop.
void PolicySource::deliver(const std::string& domain, const Decision& decision) {
  auto node = pending_.extract(domain);
  if (node.empty()) return;
  auto waiters = std::move(node.mapped().waiters);
  // The fetch object may be the caller (its posted completion): destroyed later, from the loop.
  loop_.post([fetch = std::shared_ptr<PolicyFetch>(std::move(node.mapped().fetch))] {});
  for (auto& w : waiters) {
    if (w.token->cancelled) continue;
    loop_.post(guard_.wrap([w = std::move(w), decision] {
      if (!w.token->cancelled) w.callback(decision);
    }));
  }
}

}  // namespace estafette::mtasts
