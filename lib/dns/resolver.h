// resolver.h: asynchronous DNS lookups with c-ares 1.18, driven by the process's event::Loop
// (c-ares tells the loop which sockets to watch through ARES_OPT_SOCK_STATE_CB; a loop timer
// follows ares_timeout() and drives retries). No threads.
// Loop thread only. Every callback runs later on the loop thread, never inside the call that
// started the lookup. Each lookup returns a Request that the caller keeps: destroying or
// cancelling it guarantees that its callback never runs (a session that goes away simply drops
// its Requests). Destroying the Resolver drops every pending callback; a callback must not
// destroy the Resolver itself.
// Results are classified as Ok, NotFound (NXDOMAIN or no records of that type), TempFail
// (timeout, SERVFAIL, REFUSED, no server reachable, a malformed answer) or PermFail (a null MX,
// RFC 7505, or a name/address that cannot be looked up at all). Construction throws
// std::runtime_error when c-ares cannot be set up (e.g. a malformed server list).
// With ResolverOptions::cache_size > 0, responses are cached per (name, type) below every kind of
// lookup (answer_cache.h): positive ones for their smallest answer TTL, NXDOMAIN/NODATA for their
// SOA minimum (none without an SOA), both at most cache_max_ttl; temporary failures never. A
// cached answer is delivered on the loop like any other, never inside the call.
// DNSSEC: every query asks for the AD bit (RFC 6840 5.7; no DO bit, so no signatures travel),
// and the answer's AD bit says whether the resolver validated it. The cache keeps the whole
// response, header included, so a cached answer is exactly as authenticated as it was. The bit
// means something only from a validating resolver on a trusted path (dns_servers on loopback);
// RFC 7672 2.2 uses it for DANE: resolve_mx() reports it for the MX RRset and for each host's
// addresses, lookup_tlsa() for the TLSA RRset, and dane.h decides what it means.
#pragma once

#include <ares.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "lib/dns/answer_cache.h"
#include "lib/dns/tlsa.h"
#include "lib/event/loop.h"
#include "lib/metrics/shm_file.h"

namespace estafette::dns {

enum class Status { Ok, NotFound, TempFail, PermFail };
const char* to_string(Status status);

struct ResolverOptions {
  std::vector<std::string> servers;  // "127.0.0.1:5300", "[::1]:53"; empty = /etc/resolv.conf
  std::chrono::milliseconds timeout{2000};  // per try
  int tries = 2;
  std::size_t cache_size = 0;                // cached responses (entries); 0 = no cache
  std::chrono::seconds cache_max_ttl{3600};  // no response is kept longer
};

struct CacheStats {
  std::uint64_t hits = 0;    // lookups answered from the cache
  std::uint64_t misses = 0;  // lookups sent to a server (only counted with a cache)
  std::size_t entries = 0;
};

struct MxHost {
  std::string name;
  unsigned preference = 0;
  Status status = Status::TempFail;    // of this host's address lookup
  std::vector<std::string> addresses;  // IPv4 first, then IPv6, as text
  // DNSSEC-secure addresses: every A/AAAA answer (records or none) had the AD bit and one had
  // records. Never for an IP literal.
  bool authenticated = false;
  // The host name is an alias: the end of its CNAME chain (lower case, no trailing dot), where
  // DANE looks for TLSA records first (RFC 7672 2.2.2); "" when it is no alias.
  std::string canonical = {};
};

struct MxResult {
  Status status = Status::TempFail;  // Ok when at least one host has an address
  bool implicit = false;             // no MX records: the domain itself (RFC 5321 5.1)
  std::vector<MxHost> hosts;         // by preference, random order among equal preferences
  // The MX answer had the AD bit (implicit: the answer that there is no MX RRset had it).
  bool authenticated = false;
};

// The TLSA RRset of a service (lookup_tlsa). Ok: records (usable or not: tlsa.h); NotFound: no
// TLSA records or no such name (authenticated: a secure denial); TempFail: SERVFAIL, which is
// what a validating resolver says for a bogus answer (RFC 7672 2.2: defer), a timeout or a
// malformed answer.
struct TlsaResult {
  Status status = Status::TempFail;
  bool authenticated = false;  // the answer (records or denial) had the AD bit
  std::vector<TlsaRecord> records;
};

// The MX host names of a domain without their addresses (courierd's MX sites), and how long the
// answer may be kept.
struct MxNames {
  // Ok: hosts, or implicit; NotFound: no such domain; PermFail: null MX; TempFail.
  Status status = Status::TempFail;
  bool implicit = false;        // the domain exists and has no MX records: hosts is empty
  std::vector<MxHost> hosts;    // name and preference (no addresses), as in the answer
  std::chrono::seconds ttl{0};  // answer_ttl() of the response; 0: do not keep it
};

namespace detail {
struct Token {
  bool cancelled = false;
  bool done = false;
};
}  // namespace detail

// A pending lookup. Move-only; destruction cancels.
class Request final {
 public:
  Request() = default;
  ~Request() { cancel(); }
  Request(Request&&) noexcept = default;
  Request& operator=(Request&& other) noexcept {
    if (this != &other) {
      cancel();
      token_ = std::move(other.token_);
    }
    return *this;
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  void cancel() {
    if (token_) token_->cancelled = true;
    token_.reset();
  }
  bool pending() const { return token_ && !token_->cancelled && !token_->done; }

 private:
  friend class Resolver;
  explicit Request(std::shared_ptr<detail::Token> token) : token_(std::move(token)) {}
  std::shared_ptr<detail::Token> token_;
};

class Resolver final {
 public:
  // answer: the whole DNS response message (empty unless Ok).
  using RawCallback = std::function<void(Status, std::string_view answer)>;
  // addresses (text), host names or TXT strings.
  using ListCallback = std::function<void(Status, std::vector<std::string>)>;
  using MxCallback = std::function<void(const MxResult&)>;
  using MxNamesCallback = std::function<void(const MxNames&)>;
  using TlsaCallback = std::function<void(const TlsaResult&)>;

  Resolver(event::Loop& loop, ResolverOptions options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Any record type (ns_t_* from <arpa/nameser.h>), class IN; no search domains.
  [[nodiscard]] Request query(const std::string& name, int type, RawCallback callback);
  [[nodiscard]] Request lookup_a(const std::string& name, ListCallback callback);
  [[nodiscard]] Request lookup_aaaa(const std::string& name, ListCallback callback);
  // A and AAAA together; an IP literal is returned as it is.
  [[nodiscard]] Request resolve_host(const std::string& name, ListCallback callback);
  // PTR names of an IPv4 or IPv6 address (PermFail for a malformed address).
  [[nodiscard]] Request lookup_ptr(const std::string& ip, ListCallback callback);
  // Each TXT record with its character-strings concatenated.
  [[nodiscard]] Request lookup_txt(const std::string& name, ListCallback callback);
  // The mail exchangers of a domain with their addresses. A null MX gives PermFail; a domain
  // with no MX records (but existing) falls back to its own A/AAAA records.
  [[nodiscard]] Request resolve_mx(const std::string& domain, MxCallback callback);
  // Only the MX query: host names and preferences, the answer's TTL, no address lookups.
  [[nodiscard]] Request lookup_mx(const std::string& domain, MxNamesCallback callback);
  // The TLSA records of _PORT._tcp.HOST (RFC 6698 3, RFC 7672 2.2.1), e.g. (mx host, 25).
  [[nodiscard]] Request lookup_tlsa(const std::string& host, unsigned port, TlsaCallback callback);

  CacheStats cache_stats() const;
  // Each query sent (not a cached answer) is observed there, from sending to its answer or
  // failure (metrics::Metric::DnsLookupSeconds). Null: none. The writer outlives the resolver.
  void set_metrics(metrics::Writer* metrics) { metrics_ = metrics; }

 private:
  using AresDone = std::function<void(int status, const unsigned char* abuf, int alen)>;
  // Addresses with whether they were DNSSEC-secure (MxHost::authenticated).
  // canonical: the name at the end of the answer's CNAME chain when it differs from the query's.
  using AddressesDone = std::function<void(Status, std::vector<std::string>, bool authenticated,
                                           const std::string& canonical)>;
  struct QueryState;

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable);
  static void on_query_done(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void raw_query(const std::string& name, int type, AresDone done);
  void host_addresses(const std::string& name, AddressesDone done);
  void mx_hosts(const std::string& domain, MxCallback done);
  void address_query(const std::string& name, int type, AddressesDone done);
  void post(std::function<void()> fn);  // run on the loop later, unless the resolver is gone
  void process(int fd, std::uint32_t events);
  void update_timer();
  void remember(const std::string& key, int status, const unsigned char* abuf, int alen);

  event::Loop& loop_;
  metrics::Writer* metrics_ = nullptr;
  std::chrono::seconds cache_max_ttl_;
  std::unique_ptr<AnswerCache> cache_;  // null without a cache
  CacheStats stats_;
  ares_channel channel_ = nullptr;
  std::unordered_set<int> watched_;
  std::unordered_set<std::uint16_t> ids_in_flight_;  // query ids c-ares has not answered yet
  event::TimerId timer_ = 0;
  int submitting_ = 0;          // >0 while inside ares_send: a completion then is deferred
  event::CallbackGuard guard_;  // posted callbacks die with the resolver
  std::mt19937 random_;
};

// "d.c.b.a.in-addr.arpa" / nibble ".ip6.arpa" name of an address; "" when malformed.
std::string reverse_name(const std::string& ip);

}  // namespace estafette::dns
