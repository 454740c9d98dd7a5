// mx_sites.h: MX sites for courierd's scheduler. Domains whose MX records name the same hosts
// form one site, and the scheduler keys their destination by it ("mx:" + the sorted MX host
// names), so they share MAXHOST, the concurrency window, the host backoff, the per-destination
// limits and, in esmtpclient, the idle connections.
//
// The key is made of host names, not addresses: the MX query alone gives it (no address lookup
// per host before mail can be queued), it does not change when a host's A records rotate, and
// it reads well in mailq ("mx:aspmx.l.google.com,alt1.aspmx.l.google.com,..."). A domain without
// MX records is its own mail exchanger, so its site is "mx:" + the domain and it shares a site
// with domains whose MX is that host. No such domain, a null MX or a DNS failure gives no site:
// the domain itself is the key, and esmtpclient's own lookup then bounces or defers its mail as
// it does without sites.
//
// site_key() is pure. Sites runs on courierd's loop with its own dns::Resolver: resolve() never
// blocks and its callback always runs later on the loop (after at most the resolver's timeout
// and tries); answers are kept for their DNS TTL (at most kMaxKeep; failures are never kept),
// and concurrent lookups of one domain share one query. Sites also resolves the domains named
// in the destinations file (at start, then whenever their answer has expired) to learn which
// site each names, so that their limits apply to every domain of that site.
// Owns the resolver, its requests and its timer; destroying Sites drops every pending callback.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/config/destinations.h"
#include "lib/dns/resolver.h"
#include "lib/event/loop.h"

namespace estafette::courierd {

inline constexpr std::string_view kSitePrefix = "mx:";

// The site of `domain` from its MX answer, or nullopt when the answer gives none (see above).
std::optional<std::string> site_key(const std::string& domain, const dns::MxNames& mx);
bool is_site_key(std::string_view key);

class Sites final {
 public:
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(const std::string& key)>;  // the site, or the domain
  static constexpr std::chrono::seconds kMaxKeep{3600};
  static constexpr std::chrono::seconds kEntryRefresh{60};  // checks on the file's domains
  static constexpr std::size_t kMaxEntries = 100000;

  Sites(event::Loop& loop, dns::ResolverOptions options, const config::DestinationTable& table);
  ~Sites();
  Sites(const Sites&) = delete;
  Sites& operator=(const Sites&) = delete;

  // Starts resolving the destinations file's domains (and refreshing them).
  void start();
  // The key of a (lower-case) domain when an unexpired answer is kept.
  std::optional<std::string> cached(const std::string& domain, Clock::time_point now);
  // Looks the domain up; `done` runs once, later, on the loop.
  void resolve(const std::string& domain, Done done);
  // The limits the destinations file gives a site through the domains that resolved to it (the
  // strictest when several do); nullptr when none.
  const config::DestinationLimits* site_limits(const std::string& key) const;
  std::size_t pending() const { return pending_.size(); }

 private:
  struct Kept {
    std::string key;
    Clock::time_point expires;
  };
  struct Pending {
    dns::Request request;
    std::vector<Done> waiting;
  };
  void on_answer(const std::string& domain, const dns::MxNames& mx);
  void learn(const std::string& domain, const std::string& key);
  void refresh_entries();

  event::Loop& loop_;
  const config::DestinationTable& table_;
  dns::Resolver resolver_;
  std::unordered_map<std::string, Kept> kept_;
  std::unordered_map<std::string, Pending> pending_;
  std::unordered_map<std::string, std::string> entry_sites_;  // file's domain -> its site
  std::unordered_map<std::string, config::DestinationLimits> site_limits_;
  event::TimerId refresh_timer_ = 0;
};

}  // namespace estafette::courierd
