#include "lib/dns/resolver.h"

#include "lib/dns/answer_ttl.h"
#include "lib/dns/wire_reader.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <utility>

namespace estafette::dns {

namespace {

constexpr std::size_t kMaxMxHosts = 10;
constexpr int kMaxAddresses = 64;

Status map_status(int status) {
  switch (status) {
    case ARES_SUCCESS:
      return Status::Ok;
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
      return Status::NotFound;
    case ARES_EBADNAME:
      return Status::PermFail;
    default:
      return Status::TempFail;
  }
}

// Wraps a user callback so that it runs at most once, and never after its Request was dropped.
template <typename... Args>
std::function<void(Args...)> guard(const std::shared_ptr<detail::Token>& token,
                                   std::function<void(Args...)> callback) {
  return [token, callback = std::move(callback)](Args... args) {
    if (token->cancelled || token->done) return;
    token->done = true;
    callback(std::forward<Args>(args)...);
  };
}

std::string normal_name(std::string_view n) {
  while (!n.empty() && n.back() == '.') n.remove_suffix(1);
  std::string out(n);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// A name at p in the message, expanded (compression followed by c-ares, bounded); its encoded
// length in *used. nullopt when malformed.
std::optional<std::string> expand_name(const unsigned char* p, const unsigned char* abuf, int alen,
                                       long* used) {
  char* s = nullptr;
  if (ares_expand_name(p, abuf, alen, &s, used) != ARES_SUCCESS || !s) return std::nullopt;
  std::string out = normal_name(s);
  ares_free_string(s);
  return out;
}

// The end of the CNAME chain that starts at `asked` in the answer section (lower case, no
// trailing dot), or "" when the name is no alias or the answer is malformed. At most 16 hops;
// a loop ends it.
std::string cname_chain_end(const unsigned char* abuf, int alen, const std::string& asked) {
  if (!abuf || alen < 12) return "";
  const unsigned char* end = abuf + alen;
  const int questions = abuf[4] << 8 | abuf[5];
  const int answers = abuf[6] << 8 | abuf[7];
  const unsigned char* p = abuf + 12;
  for (int i = 0; i < questions; ++i) {
    long used = 0;
    if (!expand_name(p, abuf, alen, &used) || end - p < used + 4) return "";
    p += used + 4;
  }
  std::vector<std::pair<std::string, std::string>> aliases;
  for (int i = 0; i < answers && i < 64; ++i) {
    long used = 0;
    auto owner = expand_name(p, abuf, alen, &used);
    if (!owner || end - p < used + 10) return "";
    p += used;
    const int type = p[0] << 8 | p[1];
    const int length = p[8] << 8 | p[9];
    p += 10;
    if (end - p < length) return "";
    if (type == ns_t_cname) {
      long target_used = 0;
      auto target = expand_name(p, abuf, alen, &target_used);
      if (!target) return "";
      aliases.emplace_back(std::move(*owner), std::move(*target));
    }
    p += length;
  }
  const std::string start = normal_name(asked);
  std::string name = start;
  for (int hop = 0; hop < 16; ++hop) {
    auto next = std::find_if(aliases.begin(), aliases.end(),
                             [&](const auto& a) { return a.first == name; });
    if (next == aliases.end()) break;
    name = next->second;
  }
  return name == start || name.size() > 253 ? std::string() : name;
}

bool authentic(const unsigned char* abuf, int alen) {
  return abuf && alen > 0 &&
         authentic_data(
             std::string_view(reinterpret_cast<const char*>(abuf), static_cast<std::size_t>(alen)));
}

// What ares_query() makes of a response's RCODE and answer count, for ares_send() (which reports
// any response as success).
int rcode_status(const unsigned char* abuf, int alen) {
  if (!abuf || alen < static_cast<int>(kDnsHeaderSize)) return ARES_EBADRESP;
  unsigned rcode = abuf[3] & 0xF;
  unsigned ancount = static_cast<unsigned>(abuf[6]) << 8 | abuf[7];
  switch (rcode) {
    case ns_r_noerror:
      return ancount > 0 ? ARES_SUCCESS : ARES_ENODATA;
    case ns_r_formerr:
      return ARES_EFORMERR;
    case ns_r_servfail:
      return ARES_ESERVFAIL;
    case ns_r_nxdomain:
      return ARES_ENOTFOUND;
    case ns_r_notimpl:
      return ARES_ENOTIMP;
    case ns_r_refused:
      return ARES_EREFUSED;
    default:
      return ARES_SUCCESS;  // as ares_query(): other codes pass and fail in the parsers
  }
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Combines partial results: Ok wins, then TempFail, then PermFail, then NotFound.
Status combine(Status a, Status b) {
  auto rank = [](Status s) {
    switch (s) {
      case Status::Ok:
        return 3;
      case Status::TempFail:
        return 2;
      case Status::PermFail:
        return 1;
      case Status::NotFound:
        return 0;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

// An MX reply's hosts, each with `host_status`; `status` is the query's or else the parse's.
struct MxReply {
  int status;
  std::vector<MxHost> hosts;
  bool null_mx = false;  // it named "." (or nothing): RFC 7505

  // Only the null MX: the domain takes no mail.
  bool no_mail() const { return status == ARES_SUCCESS && hosts.empty() && null_mx; }
  // No MX records (asked after no_mail): the domain is its own mail exchanger (RFC 5321 5.1).
  bool implicit() const {
    return status == ARES_ENODATA || (status == ARES_SUCCESS && hosts.empty());
  }
};

MxReply parse_mx(int status, const unsigned char* abuf, int alen, Status host_status) {
  MxReply r{status, {}};
  if (status != ARES_SUCCESS) return r;
  ares_mx_reply* mx = nullptr;
  r.status = ares_parse_mx_reply(abuf, alen, &mx);
  for (ares_mx_reply* m = mx; r.status == ARES_SUCCESS && m; m = m->next) {
    std::string host = m->host ? m->host : "";
    if (host.empty() || host == ".") {
      r.null_mx = true;
      continue;
    }
    r.hosts.push_back(MxHost{host, m->priority, host_status, {}});
  }
  if (mx) ares_free_data(mx);
  return r;
}

}  // namespace

const char* to_string(Status status) {
  switch (status) {
    case Status::Ok:
      return "ok";
    case Status::NotFound:
      return "not found";
    case Status::TempFail:
      return "temporary failure";
    case Status::PermFail:
      return "permanent failure";
  }
  return "?";
}

std::string reverse_name(const std::string& ip) {
  unsigned char a[16];
  char buf[80];
  if (inet_pton(AF_INET, ip.c_str(), a) == 1) {
    snprintf(buf, sizeof buf, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
    return buf;
  }
  if (inet_pton(AF_INET6, ip.c_str(), a) == 1) {
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    for (int i = 15; i >= 0; --i) {
      out += kHex[a[i] & 0xf];
      out += '.';
      out += kHex[a[i] >> 4];
      out += '.';
    }
    return out + "ip6.arpa";
  }
  return "";
}

struct Resolver::QueryState {
  Resolver* resolver;
  AresDone done;
  std::string cache_key;  // empty without a cache
  std::uint16_t id;       // in ids_in_flight_ until done
  std::chrono::steady_clock::time_point sent = std::chrono::steady_clock::now();
};

Resolver::Resolver(event::Loop& loop, ResolverOptions options)
    : loop_(loop),
      cache_max_ttl_(options.cache_max_ttl),
      cache_(options.cache_size > 0 ? std::make_unique<AnswerCache>(options.cache_size) : nullptr),
      random_(std::random_device{}()) {
  if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
    throw std::runtime_error("c-ares: library init failed");
  ares_options o{};
  o.sock_state_cb = &Resolver::on_sock_state;
  o.sock_state_cb_data = this;
  o.lookups = const_cast<char*>("b");                     // DNS only, never /etc/hosts
  o.timeout = static_cast<int>(options.timeout.count());  // ms, with ARES_OPT_TIMEOUTMS
  o.tries = std::max(1, options.tries);
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  int rc = ares_init_options(&channel_, &o, mask);
  if (rc == ARES_SUCCESS && !options.servers.empty()) {
    std::string csv;
    for (const auto& s : options.servers) csv += (csv.empty() ? "" : ",") + s;
    rc = ares_set_servers_ports_csv(channel_, csv.c_str());
    if (rc != ARES_SUCCESS) {
      ares_destroy(channel_);
      ares_library_cleanup();
      throw std::runtime_error("c-ares: bad DNS server list '" + csv + "': " + ares_strerror(rc));
    }
  }
  if (rc != ARES_SUCCESS) {
    ares_library_cleanup();
    throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
  }
}

Resolver::~Resolver() {
  if (timer_) loop_.cancel_timer(timer_);
  ares_destroy(channel_);  // completes every query with ARES_EDESTRUCTION: nothing is called
  for (int fd : watched_) loop_.remove_fd(fd);
  ares_library_cleanup();
}

void Resolver::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<Resolver*>(data);
  if (!readable && !writable) {  // c-ares is closing the socket
    self->loop_.remove_fd(fd);
    self->watched_.erase(fd);
    return;
  }
  std::uint32_t events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
  if (self->watched_.count(fd)) {
    self->loop_.modify_fd(fd, events);
  } else {
    self->loop_.add_fd(fd, events, [self, fd](std::uint32_t ev) { self->process(fd, ev); });
    self->watched_.insert(fd);
  }
}

void Resolver::process(int fd, std::uint32_t events) {
  ares_process_fd(channel_, (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                  (events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
  update_timer();
}

void Resolver::update_timer() {
  if (timer_) loop_.cancel_timer(timer_);
  timer_ = 0;
  timeval tv;
  if (!ares_timeout(channel_, nullptr, &tv)) return;  // nothing pending
  auto delay = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  timer_ = loop_.add_timer(delay, [this] {
    timer_ = 0;
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts and retries
    update_timer();
  });
}

void Resolver::post(std::function<void()> fn) {
  loop_.post(guard_.wrap(std::move(fn)));
}

void Resolver::on_query_done(void* arg, int status, int, unsigned char* abuf, int alen) {
  std::unique_ptr<QueryState> state(static_cast<QueryState*>(arg));
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
  if (status == ARES_SUCCESS) status = rcode_status(abuf, alen);
  Resolver* self = state->resolver;
  self->ids_in_flight_.erase(state->id);
  if (self->metrics_) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - state->sent;
    self->metrics_->observe(metrics::Metric::DnsLookupSeconds, took.count());
  }
  if (!state->cache_key.empty()) self->remember(state->cache_key, status, abuf, alen);
  if (self->submitting_ > 0) {
    // Completed inside ares_query() (e.g. a bad name): report it from the loop instead.
    std::string copy(reinterpret_cast<const char*>(abuf),
                     abuf ? static_cast<std::size_t>(alen) : 0);
    self->post([done = std::move(state->done), status, copy] {
      done(status, reinterpret_cast<const unsigned char*>(copy.data()),
           static_cast<int>(copy.size()));
    });
    return;
  }
  state->done(status, abuf, alen);
}

void Resolver::remember(const std::string& key, int status, const unsigned char* abuf, int alen) {
  // Answers only: NOERROR with records, NXDOMAIN, NODATA. Everything else is worth asking again.
  if (status != ARES_SUCCESS && status != ARES_ENOTFOUND && status != ARES_ENODATA) return;
  if (!abuf || alen <= 0) return;
  std::string_view message(reinterpret_cast<const char*>(abuf), static_cast<std::size_t>(alen));
  auto ttl = answer_ttl(message);
  if (!ttl || ttl->seconds == 0) return;
  auto keep = std::min<std::chrono::seconds>(std::chrono::seconds(ttl->seconds), cache_max_ttl_);
  auto now = AnswerCache::Clock::now();
  cache_->insert(key, status, message, now + keep, now);
}

CacheStats Resolver::cache_stats() const {
  CacheStats s = stats_;
  s.entries = cache_ ? cache_->size() : 0;
  return s;
}

void Resolver::raw_query(const std::string& name, int type, AresDone done) {
  std::string key;
  if (cache_) {
    key = AnswerCache::key(name, type);
    if (const AnswerCache::Entry* hit = cache_->find(key, AnswerCache::Clock::now())) {
      ++stats_.hits;
      post([done = std::move(done), status = hit->status, copy = hit->answer] {
        done(status, reinterpret_cast<const unsigned char*>(copy.data()),
             static_cast<int>(copy.size()));
      });
      return;
    }
    ++stats_.misses;
  }
  // ares_query() with the AD bit set (RFC 6840 5.7): c-ares 1.18 has no flag for it. RD as
  // ares_query() sets it; no EDNS0, as before (the channel has no ARES_FLAG_EDNS). ares_send()
  // sends the caller's query id as it is: ids are random (a forged answer must guess one) and
  // distinct among the queries in flight, as ares_query() makes them.
  std::uint16_t id = 0;
  do {
    id = static_cast<std::uint16_t>(random_());
  } while (ids_in_flight_.contains(id));
  unsigned char* packet = nullptr;
  int length = 0;
  int rc = ares_create_query(name.c_str(), ns_c_in, type, id, 1, &packet, &length, 0);
  if (rc != ARES_SUCCESS) {
    if (packet) ares_free_string(packet);
    post([done = std::move(done), rc] { done(rc, nullptr, 0); });
    return;
  }
  packet[3] |= kDnsFlagAd;
  ids_in_flight_.insert(id);
  ++submitting_;
  ares_send(channel_, packet, length, &Resolver::on_query_done,
            new QueryState{this, std::move(done), std::move(key), id});
  --submitting_;
  ares_free_string(packet);
  update_timer();
}

Request Resolver::query(const std::string& name, int type, RawCallback callback) {
  auto token = std::make_shared<detail::Token>();
  auto cb = guard(token, std::move(callback));
  raw_query(name, type, [cb](int status, const unsigned char* abuf, int alen) {
    if (status != ARES_SUCCESS) return cb(map_status(status), {});
    cb(Status::Ok,
       std::string_view(reinterpret_cast<const char*>(abuf), static_cast<std::size_t>(alen)));
  });
  return Request(token);
}

void Resolver::address_query(const std::string& name, int type, AddressesDone done) {
  raw_query(name, type, [name, type, done](int status, const unsigned char* abuf, int alen) {
    bool secure = authentic(abuf, alen);
    std::vector<std::string> out;
    std::string canonical;
    if (status == ARES_SUCCESS) {
      char text[INET6_ADDRSTRLEN];
      int n = kMaxAddresses;
      if (type == ns_t_a) {
        ares_addrttl addrs[kMaxAddresses];
        status = ares_parse_a_reply(abuf, alen, nullptr, addrs, &n);
        for (int i = 0; status == ARES_SUCCESS && i < n; ++i) {
          if (inet_ntop(AF_INET, &addrs[i].ipaddr, text, sizeof text)) out.emplace_back(text);
        }
      } else {
        ares_addr6ttl addrs[kMaxAddresses];
        status = ares_parse_aaaa_reply(abuf, alen, nullptr, addrs, &n);
        for (int i = 0; status == ARES_SUCCESS && i < n; ++i) {
          if (inet_ntop(AF_INET6, &addrs[i].ip6addr, text, sizeof text)) out.emplace_back(text);
        }
      }
      if (status == ARES_SUCCESS) canonical = cname_chain_end(abuf, alen, name);
      if (status == ARES_SUCCESS && out.empty()) status = ARES_ENODATA;
    }
    done(map_status(status), std::move(out), secure, canonical);
  });
}

namespace {
// A ListCallback that drops the authenticated flag, for the lookups that do not report it.
auto without_flag(Resolver::ListCallback cb) {
  return [cb = std::move(cb)](Status s, std::vector<std::string> v, bool, const std::string&) {
    cb(s, std::move(v));
  };
}
}  // namespace

Request Resolver::lookup_a(const std::string& name, ListCallback callback) {
  auto token = std::make_shared<detail::Token>();
  address_query(name, ns_t_a, without_flag(guard(token, std::move(callback))));
  return Request(token);
}

Request Resolver::lookup_aaaa(const std::string& name, ListCallback callback) {
  auto token = std::make_shared<detail::Token>();
  address_query(name, ns_t_aaaa, without_flag(guard(token, std::move(callback))));
  return Request(token);
}

void Resolver::host_addresses(const std::string& name, AddressesDone done) {
  if (is_ip_literal(name)) {
    post([done, name] { done(Status::Ok, {name}, false, ""); });
    return;
  }
  struct Join {
    int left = 2;
    Status a = Status::NotFound, aaaa = Status::NotFound;
    bool a_secure = false, aaaa_secure = false;
    std::vector<std::string> v4, v6;
    std::string canonical;  // from whichever answer had a CNAME chain
    AddressesDone done;
  };
  auto join = std::make_shared<Join>();
  join->done = std::move(done);
  auto finish = [join] {
    if (--join->left > 0) return;
    std::vector<std::string> all = std::move(join->v4);
    all.insert(all.end(), join->v6.begin(), join->v6.end());
    Status s = all.empty() ? combine(join->a, join->aaaa) : Status::Ok;
    // Secure when each answer that came (records or a denial) was; a failed lookup adds nothing.
    auto answered = [](Status st) { return st == Status::Ok || st == Status::NotFound; };
    bool secure = s == Status::Ok && (!answered(join->a) || join->a_secure) &&
                  (!answered(join->aaaa) || join->aaaa_secure);
    join->done(s, std::move(all), secure, join->canonical);
  };
  address_query(name, ns_t_a,
                [join, finish](Status s, std::vector<std::string> v, bool secure,
                               const std::string& canonical) {
                  join->a = s;
                  join->a_secure = secure;
                  join->v4 = std::move(v);
                  if (!canonical.empty()) join->canonical = canonical;
                  finish();
                });
  address_query(name, ns_t_aaaa,
                [join, finish](Status s, std::vector<std::string> v, bool secure,
                               const std::string& canonical) {
                  join->aaaa = s;
                  join->aaaa_secure = secure;
                  join->v6 = std::move(v);
                  if (join->canonical.empty()) join->canonical = canonical;
                  finish();
                });
}

Request Resolver::resolve_host(const std::string& name, ListCallback callback) {
  auto token = std::make_shared<detail::Token>();
  host_addresses(name, without_flag(guard(token, std::move(callback))));
  return Request(token);
}

Request Resolver::lookup_ptr(const std::string& ip, ListCallback callback) {
  auto token = std::make_shared<detail::Token>();
  auto cb = guard(token, std::move(callback));
  std::string name = reverse_name(ip);
  if (name.empty()) {
    post([cb] { cb(Status::PermFail, {}); });
    return Request(token);
  }
  raw_query(name, ns_t_ptr, [cb, ip](int status, const unsigned char* abuf, int alen) {
    std::vector<std::string> names;
    if (status == ARES_SUCCESS) {
      unsigned char addr[16];
      bool v6 = ip.find(':') != std::string::npos;
      inet_pton(v6 ? AF_INET6 : AF_INET, ip.c_str(), addr);
      hostent* host = nullptr;
      status = ares_parse_ptr_reply(abuf, alen, addr, v6 ? 16 : 4, v6 ? AF_INET6 : AF_INET, &host);
      if (status == ARES_SUCCESS && host) {
        auto add = [&names](const char* n) {
          if (n && *n && std::find(names.begin(), names.end(), n) == names.end())
            names.emplace_back(n);
        };
        add(host->h_name);
        for (char** a = host->h_aliases; a && *a; ++a) add(*a);
      }
      if (host) ares_free_hostent(host);
      if (status == ARES_SUCCESS && names.empty()) status = ARES_ENODATA;
    }
    cb(map_status(status), std::move(names));
  });
  return Request(token);
}

Request Resolver::lookup_txt(const std::string& name, ListCallback callback) {
  auto token = std::make_shared<detail::Token>();
  auto cb = guard(token, std::move(callback));
  raw_query(name, ns_t_txt, [cb](int status, const unsigned char* abuf, int alen) {
    std::vector<std::string> records;
    if (status == ARES_SUCCESS) {
      ares_txt_ext* txt = nullptr;
      status = ares_parse_txt_reply_ext(abuf, alen, &txt);
      for (ares_txt_ext* t = txt; status == ARES_SUCCESS && t; t = t->next) {
        if (t->record_start || records.empty()) records.emplace_back();
        records.back().append(reinterpret_cast<const char*>(t->txt), t->length);
      }
      if (txt) ares_free_data(txt);
      if (status == ARES_SUCCESS && records.empty()) status = ARES_ENODATA;
    }
    cb(map_status(status), std::move(records));
  });
  return Request(token);
}

void Resolver::mx_hosts(const std::string& domain, MxCallback done) {
  raw_query(domain, ns_t_mx, [this, domain, done](int status, const unsigned char* abuf, int alen) {
    MxReply reply = parse_mx(status, abuf, alen, Status::TempFail);
    bool mx_secure = authentic(abuf, alen);
    if (reply.no_mail()) {
      done(MxResult{Status::PermFail, false, {}, mx_secure});
      return;
    }
    if (reply.implicit()) {
      host_addresses(domain, [domain, done, mx_secure](Status s, std::vector<std::string> addrs,
                                                       bool secure, const std::string& canonical) {
        MxResult r{s, true, {MxHost{domain, 0, s, std::move(addrs), secure, canonical}}, mx_secure};
        done(r);
      });
      return;
    }
    if (reply.status != ARES_SUCCESS) {
      done(MxResult{map_status(reply.status), false, {}});
      return;
    }
    std::vector<MxHost> hosts = std::move(reply.hosts);
    // By preference; random among equal preferences (RFC 5321 5.1).
    std::shuffle(hosts.begin(), hosts.end(), random_);
    std::stable_sort(hosts.begin(), hosts.end(),
                     [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
    if (hosts.size() > kMaxMxHosts) hosts.resize(kMaxMxHosts);
    struct Join {
      std::size_t left;
      MxResult result;
      MxCallback done;
    };
    auto join = std::make_shared<Join>();
    join->left = hosts.size();
    join->result.hosts = std::move(hosts);
    join->result.authenticated = mx_secure;
    join->done = done;
    for (std::size_t i = 0; i < join->result.hosts.size(); ++i) {
      host_addresses(join->result.hosts[i].name,
                     [join, i](Status s, std::vector<std::string> addrs, bool secure,
                               const std::string& canonical) {
                       join->result.hosts[i].status = s;
                       join->result.hosts[i].addresses = std::move(addrs);
                       join->result.hosts[i].authenticated = secure;
                       join->result.hosts[i].canonical = canonical;
                       if (--join->left > 0) return;
                       Status overall = Status::NotFound;
                       for (const auto& h : join->result.hosts)
                         overall = combine(overall, h.status);
                       join->result.status = overall;
                       join->done(join->result);
                     });
    }
  });
}

Request Resolver::resolve_mx(const std::string& domain, MxCallback callback) {
  auto token = std::make_shared<detail::Token>();
  mx_hosts(domain, guard(token, std::move(callback)));
  return Request(token);
}

Request Resolver::lookup_mx(const std::string& domain, MxNamesCallback callback) {
  auto token = std::make_shared<detail::Token>();
  auto cb = guard(token, std::move(callback));
  raw_query(domain, ns_t_mx, [cb](int status, const unsigned char* abuf, int alen) {
    MxNames out;
    if (abuf && alen > 0 &&
        (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND)) {
      auto ttl = answer_ttl(
          std::string_view(reinterpret_cast<const char*>(abuf), static_cast<std::size_t>(alen)));
      if (ttl) out.ttl = std::chrono::seconds(ttl->seconds);
    }
    MxReply reply = parse_mx(status, abuf, alen, Status::Ok);
    if (reply.no_mail()) {
      out.status = Status::PermFail;
    } else if (reply.implicit()) {
      out.status = Status::Ok;
      out.implicit = true;
    } else {
      out.status = map_status(reply.status);
    }
    out.hosts = std::move(reply.hosts);
    if (out.status == Status::TempFail) out.ttl = std::chrono::seconds(0);
    cb(out);
  });
  return Request(token);
}

Request Resolver::lookup_tlsa(const std::string& host, unsigned port, TlsaCallback callback) {
  auto token = std::make_shared<detail::Token>();
  auto cb = guard(token, std::move(callback));
  std::string name = "_" + std::to_string(port) + "._tcp." + host;
  raw_query(name, kTypeTlsa, [cb](int status, const unsigned char* abuf, int alen) {
    TlsaResult out;
    out.authenticated = authentic(abuf, alen);
    out.status = map_status(status);
    if (status == ARES_SUCCESS) {
      auto records = parse_tlsa_answer(
          std::string_view(reinterpret_cast<const char*>(abuf), static_cast<std::size_t>(alen)));
      if (!records) {
        out.status = Status::TempFail;  // malformed: as any other lookup
      } else if (records->empty()) {
        out.status = Status::NotFound;  // e.g. a CNAME to a name without TLSA records
      } else {
        out.records = std::move(*records);
      }
    }
    if (out.status == Status::TempFail || out.status == Status::PermFail) out.authenticated = false;
    cb(out);
  });
  return Request(token);
}

}  // namespace estafette::dns
