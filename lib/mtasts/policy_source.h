// policy_source.h: which MTA-STS policy applies to a recipient domain (RFC 8461 5.1), for
// esmtpclient and `estafette mta-sts`, and what it means for one MX host (4.2).
// PolicySource::lookup: the `_mta-sts.<domain>` TXT record, then the cached policy when its id is
// the record's and it has not expired, else a fetch (PolicyFetch) that replaces the cached one.
// When the TXT lookup or the fetch fails (or the record is gone), an unexpired cached policy
// still applies: an attacker who blocks DNS or HTTPS must not turn enforce off. No usable policy:
// Mode::None, deliver as without MTA-STS. Concurrent lookups of one domain share one fetch.
// Loop thread only; callbacks run on the loop, never inside lookup(); a Lookup handle that is
// destroyed or cancelled guarantees its callback never runs. The loop, resolver, cache and TLS
// context outlive the PolicySource; the PolicySource outlives its pending Lookups' use (its
// destructor drops them). Cost: a TXT query per lookup (the resolver's cache answers repeats),
// the cache file read once per domain and process (then memory, bounded), an HTTPS fetch only
// when the id changes or the policy expired. Errors: none thrown; Decision::note says what
// went wrong for the log (a failed fetch, a corrupt cache file).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/dns/resolver.h"
#include "lib/event/loop.h"
#include "lib/mtasts/cache.h"
#include "lib/mtasts/fetcher.h"
#include "lib/mtasts/policy.h"

namespace estafette::mtasts {

// What applies to a domain. mode None (no policy, or a policy of mode none) changes nothing.
struct Decision {
  enum class Source { None, Fetched, Cache };
  Mode mode = Mode::None;
  Source source = Source::None;  // where the policy came from
  std::string domain;
  std::string id;            // the policy's id
  Policy policy;             // when source != None (mode and mx patterns, max_age)
  std::int64_t expires = 0;  // Unix time
  std::string note;  // Source::None: why there is none; else what failed on the way ("" if all ok)
  // Source::None: true when the domain may have a policy that could not be had (DNS failure, a
  // malformed record, a failed fetch); false when it publishes none.
  bool failed = false;
};
const char* to_string(Decision::Source source);

// What a policy means for one MX host (4.2), for the SMTP client:
// - allowed: whether to connect to this MX at all (enforce: only hosts its mx patterns match);
// - verify: TLS is required and the certificate must be PKIX-valid for verify_name (the MX host
//   name without a trailing dot, RFC 6125 rules, wildcard only as the whole leftmost label);
//   a failure (no STARTTLS, handshake, certificate) is a temporary failure, 4.7.5;
// - report_only (testing): check the same, deliver anyway, log (and later report) a failure.
// Mode None: allowed, nothing required.
struct MxCheck {
  bool allowed = true;
  bool verify = false;
  bool report_only = false;
  std::string verify_name;
  std::string reason;  // !allowed, or testing with a non-matching host: for the log and the 4.7.5
};
MxCheck check_mx(const Decision& decision, std::string_view mx_host);

struct SourceOptions {
  FetchOptions fetch;
  // The wall clock in Unix seconds (max_age outlives restarts); tests pass their own.
  std::function<std::int64_t()> now;
  std::size_t memory_entries = 1000;  // policies kept in memory (then re-read from the cache)
};

namespace detail {
struct LookupToken {
  bool cancelled = false;
};
}  // namespace detail

// A pending lookup. Move-only; destruction cancels.
class Lookup final {
 public:
  Lookup() = default;
  ~Lookup() { cancel(); }
  Lookup(Lookup&&) noexcept = default;
  Lookup& operator=(Lookup&& other) noexcept {
    if (this != &other) {
      cancel();
      token_ = std::move(other.token_);
    }
    return *this;
  }
  void cancel() {
    if (token_) token_->cancelled = true;
    token_.reset();
  }

 private:
  friend class PolicySource;
  explicit Lookup(std::shared_ptr<detail::LookupToken> t) : token_(std::move(t)) {}
  std::shared_ptr<detail::LookupToken> token_;
};

class PolicySource final {
 public:
  using Callback = std::function<void(const Decision&)>;

  PolicySource(event::Loop& loop, dns::Resolver& resolver, std::shared_ptr<tls::ClientContext> tls,
               PolicyCache& cache, SourceOptions options);
  ~PolicySource();
  PolicySource(const PolicySource&) = delete;
  PolicySource& operator=(const PolicySource&) = delete;

  // The policy of the recipient domain `domain` (any case, trailing dot allowed).
  [[nodiscard]] Lookup lookup(const std::string& domain, Callback callback);
  // Only the cache (memory, then disk), no DNS and no fetch: what applies now if nothing
  // could be looked up. For the probe's "cached" view.
  Decision cached(const std::string& domain);

 private:
  struct Waiter {
    std::shared_ptr<detail::LookupToken> token;
    Callback callback;
  };
  struct Pending {
    std::vector<Waiter> waiters;
    dns::Request txt;
    std::unique_ptr<PolicyFetch> fetch;
    std::string id;  // of the TXT record, while fetching
  };

  void on_txt(const std::string& domain, dns::Status status, std::vector<std::string> records);
  void on_fetched(const std::string& domain, const FetchResult& result);
  // The cached entry (memory; disk when memory has none or not this id); logs a bad file.
  const CachedPolicy* entry(const std::string& domain, const std::string& want_id);
  Decision from_cache(const std::string& domain, const std::string& note, bool failed);
  void deliver(const std::string& domain, const Decision& decision);
  void remember(CachedPolicy entry);
  std::int64_t now() const;

  event::Loop& loop_;
  dns::Resolver& resolver_;
  std::shared_ptr<tls::ClientContext> tls_;
  PolicyCache& cache_;
  SourceOptions options_;
  std::unordered_map<std::string, CachedPolicy> memory_;
  std::unordered_map<std::string, Pending> pending_;
  event::CallbackGuard guard_;
};

}  // namespace estafette::mtasts
