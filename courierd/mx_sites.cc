#include "courierd/mx_sites.h"

#include <algorithm>

#include "lib/smtp/address.h"

namespace estafette::courierd {

std::optional<std::string> site_key(const std::string& domain, const dns::MxNames& mx) {
  if (mx.status != dns::Status::Ok) return std::nullopt;
  std::vector<std::string> names;
  if (mx.implicit) names.push_back(smtp::to_lower(domain));
  for (const auto& h : mx.hosts) {
    std::string name = smtp::to_lower(h.name);
    while (!name.empty() && name.back() == '.') name.pop_back();
    if (!name.empty()) names.push_back(std::move(name));
  }
  if (names.empty()) return std::nullopt;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string key(kSitePrefix);
  for (std::size_t i = 0; i < names.size(); ++i) key += (i ? "," : "") + names[i];
  return key;
}

bool is_site_key(std::string_view key) {
  return key.substr(0, kSitePrefix.size()) == kSitePrefix;
}

Sites::Sites(event::Loop& loop, dns::ResolverOptions options, const config::DestinationTable& table)
    : loop_(loop), table_(table), resolver_(loop, [&options] {
        options.cache_size = 0;  // kept_ is the cache, per domain
        return options;
      }()) {}

Sites::~Sites() {
  loop_.cancel_timer(refresh_timer_);
}

void Sites::start() {
  refresh_entries();
}

void Sites::refresh_entries() {
  refresh_timer_ = 0;
  auto now = Clock::now();
  for (const auto& [domain, limits] : table_.domains)
    if (!pending_.count(domain) && !cached(domain, now)) resolve(domain, [](const std::string&) {});
  refresh_timer_ = loop_.add_timer(kEntryRefresh, [this] { refresh_entries(); });
}

std::optional<std::string> Sites::cached(const std::string& domain, Clock::time_point now) {
  auto it = kept_.find(domain);
  if (it == kept_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    kept_.erase(it);
    return std::nullopt;
  }
  return it->second.key;
}

void Sites::resolve(const std::string& domain, Done done) {
  auto [it, added] = pending_.try_emplace(domain);
  it->second.waiting.push_back(std::move(done));
  if (!added) return;
  it->second.request = resolver_.lookup_mx(
      domain, [this, domain](const dns::MxNames& mx) { on_answer(domain, mx); });
}

void Sites::on_answer(const std::string& domain, const dns::MxNames& mx) {
  auto it = pending_.find(domain);
  if (it == pending_.end()) return;
  std::vector<Done> waiting = std::move(it->second.waiting);
  pending_.erase(it);  // a callback may resolve the domain again

  std::string key = site_key(domain, mx).value_or(domain);
  auto now = Clock::now();
  if (mx.status != dns::Status::TempFail && mx.ttl.count() > 0) {
    if (kept_.size() >= kMaxEntries) {
      std::erase_if(kept_, [now](const auto& e) { return e.second.expires <= now; });
      if (kept_.size() >= kMaxEntries) kept_.clear();  // bounded memory; answers come back
    }
    kept_[domain] = Kept{key, now + std::min<std::chrono::seconds>(mx.ttl, kMaxKeep)};
  }
  // A failed lookup keeps what the file's domain was known to name.
  if (mx.status != dns::Status::TempFail && table_.for_domain(domain)) learn(domain, key);
  for (auto& d : waiting) d(key);
}

void Sites::learn(const std::string& domain, const std::string& key) {
  auto [it, added] = entry_sites_.try_emplace(domain, key);
  if (!added && it->second == key) return;
  it->second = key;
  site_limits_.clear();
  for (const auto& [d, site] : entry_sites_) {
    if (!is_site_key(site)) continue;
    const auto* limits = table_.for_domain(d);
    auto [s, first] = site_limits_.try_emplace(site, *limits);
    if (!first) s->second = config::strictest(s->second, *limits);
  }
}

const config::DestinationLimits* Sites::site_limits(const std::string& key) const {
  auto it = site_limits_.find(key);
  return it == site_limits_.end() ? nullptr : &it->second;
}

}  // namespace estafette::courierd
