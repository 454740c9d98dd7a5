// Resolver tests against a real DNS server: a dnsmasq child on a free loopback port, started
// once for the suite (skipped when dnsmasq is missing or cannot start).
#include "lib/dns/resolver.h"

#include <arpa/nameser.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include "tests/unit/test_servers.h"

namespace estafette::dns {

void PrintTo(Status s, std::ostream* os) {
  *os << to_string(s);
}

namespace {

using namespace std::chrono_literals;
using estafette::testing::free_port;
using estafette::testing::wait_tcp;

class ResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::access("/usr/sbin/dnsmasq", X_OK) != 0) return;
    port_ = free_port();
    auto args = estafette::testing::dnsmasq_args(
        port_,
        {"--mx-host=multi.test,mx1.multi.test,10", "--mx-host=multi.test,mx2.multi.test,20",
         "--mx-host=multi.test,mx3.multi.test,10", "--host-record=mx1.multi.test,127.0.0.11",
         "--host-record=mx2.multi.test,127.0.0.12",
         "--host-record=mx3.multi.test,127.0.0.13,fd00::13",
         "--mx-host=dangling.test,nowhere.test,10", "--host-record=plain.test,127.0.0.20",
         "--mx-host=nullmx.test,.,0", "--txt-record=txt.test,v=spf1 -all",
         // An MX host that is an alias (two CNAMEs deep) and one that is not.
         "--mx-host=alias.test,mx.alias.test,10", "--mx-host=alias.test,real.alias.test,20",
         "--cname=mx.alias.test,hop.alias.test", "--cname=hop.alias.test,real.alias.test",
         "--host-record=real.alias.test,127.0.0.30", "--txt-record=split.test,part one ,part two",
         "--txt-record=split.test,second", "--ptr-record=5.0.0.127.in-addr.arpa,ptr.test",
         // TLSA (type 52): DANE-EE 3 1 1 and PKIX-EE 1 1 1, each with 32 bytes of data
         "--dns-rr=_25._tcp.mx1.multi.test,52,030101" + std::string(64, 'a'),
         "--dns-rr=_25._tcp.mx1.multi.test,52,010101" + std::string(64, 'b')});
    if (dnsmasq_.start(args) && !wait_tcp(port_)) dnsmasq_.stop();
  }
  static void TearDownTestSuite() { dnsmasq_.stop(); }

  void SetUp() override {
    if (!dnsmasq_.running()) GTEST_SKIP() << "dnsmasq is not available";
    resolver_.emplace(loop_, at(port_, 1000ms, 2));
  }

  // Options for a server on 127.0.0.1:port.
  static ResolverOptions at(int port, std::chrono::milliseconds timeout, int tries) {
    ResolverOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(port)};
    o.timeout = timeout;
    o.tries = tries;
    return o;
  }

  // Runs the loop until `done` or 10 s.
  void run_until(const bool& done) {
    auto deadline = event::Clock::now() + 10s;
    while (!done && event::Clock::now() < deadline) {
      auto tick = loop_.add_timer(2ms, [this] { loop_.stop(); });
      loop_.run();
      loop_.cancel_timer(tick);
    }
  }

  std::pair<Status, std::vector<std::string>> list(Request (Resolver::*fn)(const std::string&,
                                                                           Resolver::ListCallback),
                                                   const std::string& arg) {
    bool done = false;
    std::pair<Status, std::vector<std::string>> out{Status::TempFail, {}};
    Request r = ((*resolver_).*fn)(arg, [&](Status s, std::vector<std::string> v) {
      out = {s, std::move(v)};
      done = true;
    });
    run_until(done);
    EXPECT_TRUE(done) << arg;
    return out;
  }

  MxResult mx(Resolver& resolver, const std::string& domain) {
    bool done = false;
    MxResult out;
    Request r = resolver.resolve_mx(domain, [&](const MxResult& m) {
      out = m;
      done = true;
    });
    run_until(done);
    EXPECT_TRUE(done) << domain;
    return out;
  }

  static inline estafette::testing::ChildProcess dnsmasq_;
  static inline int port_ = 0;
  event::Loop loop_;
  std::optional<Resolver> resolver_;
};

std::vector<std::string> names(const MxResult& m) {
  std::vector<std::string> out;
  for (const auto& h : m.hosts) out.push_back(h.name);
  return out;
}

TEST_F(ResolverTest, MxOrderedByPreferenceRandomAmongEquals) {
  std::set<std::string> firsts;
  for (int i = 0; i < 24; ++i) {
    MxResult m = mx(*resolver_, "multi.test");
    ASSERT_EQ(m.status, Status::Ok);
    EXPECT_FALSE(m.implicit);
    ASSERT_EQ(m.hosts.size(), 3u);
    auto n = names(m);
    EXPECT_EQ(n[2], "mx2.multi.test");
    EXPECT_EQ(m.hosts[0].preference, 10u);
    EXPECT_EQ(m.hosts[2].preference, 20u);
    firsts.insert(n[0]);
    for (const auto& h : m.hosts) {
      EXPECT_EQ(h.status, Status::Ok) << h.name;
      if (h.name == "mx1.multi.test") {
        EXPECT_EQ(h.addresses, std::vector<std::string>{"127.0.0.11"});
      } else if (h.name == "mx3.multi.test") {
        EXPECT_EQ(h.addresses, (std::vector<std::string>{"127.0.0.13", "fd00::13"}));
      }
    }
  }
  EXPECT_EQ(firsts, (std::set<std::string>{"mx1.multi.test", "mx3.multi.test"}));
}

TEST_F(ResolverTest, NoMxFallsBackToAddressRecords) {
  MxResult m = mx(*resolver_, "plain.test");
  EXPECT_EQ(m.status, Status::Ok);
  EXPECT_TRUE(m.implicit);
  ASSERT_EQ(m.hosts.size(), 1u);
  EXPECT_EQ(m.hosts[0].name, "plain.test");
  EXPECT_EQ(m.hosts[0].addresses, std::vector<std::string>{"127.0.0.20"});
}

// RFC 7672 2.2.2: DANE looks for TLSA records at the end of an MX host's CNAME chain.
TEST_F(ResolverTest, MxHostAliasHasItsCanonicalName) {
  MxResult m = mx(*resolver_, "alias.test");
  ASSERT_EQ(m.status, Status::Ok);
  ASSERT_EQ(m.hosts.size(), 2u);
  EXPECT_EQ(m.hosts[0].name, "mx.alias.test");
  EXPECT_EQ(m.hosts[0].addresses, std::vector<std::string>{"127.0.0.30"});
  EXPECT_EQ(m.hosts[0].canonical, "real.alias.test");
  EXPECT_EQ(m.hosts[1].name, "real.alias.test");
  EXPECT_EQ(m.hosts[1].canonical, "");
  // Not for a host that is no alias, nor for the implicit MX.
  for (const auto& h : mx(*resolver_, "multi.test").hosts) EXPECT_EQ(h.canonical, "") << h.name;
  EXPECT_EQ(mx(*resolver_, "plain.test").hosts[0].canonical, "");
}

TEST_F(ResolverTest, NullMxIsPermFail) {
  MxResult m = mx(*resolver_, "nullmx.test");
  EXPECT_EQ(m.status, Status::PermFail);
  EXPECT_TRUE(m.hosts.empty());
}

TEST_F(ResolverTest, NxdomainIsNotFound) {
  EXPECT_EQ(mx(*resolver_, "nodomain.test").status, Status::NotFound);
  EXPECT_EQ(list(&Resolver::lookup_a, "nodomain.test").first, Status::NotFound);
}

TEST_F(ResolverTest, MxToMissingHostIsNotFound) {
  MxResult m = mx(*resolver_, "dangling.test");
  EXPECT_EQ(m.status, Status::NotFound);
  ASSERT_EQ(m.hosts.size(), 1u);
  EXPECT_EQ(m.hosts[0].status, Status::NotFound);
}

// lookup_mx: the MX query alone (courierd's MX sites), no address lookups.
TEST_F(ResolverTest, MxNamesOnly) {
  auto names_of = [&](const std::string& domain) {
    bool done = false;
    MxNames out;
    Request r = resolver_->lookup_mx(domain, [&](const MxNames& m) {
      out = m;
      done = true;
    });
    run_until(done);
    EXPECT_TRUE(done) << domain;
    return out;
  };
  MxNames multi = names_of("multi.test");
  EXPECT_EQ(multi.status, Status::Ok);
  EXPECT_FALSE(multi.implicit);
  std::set<std::string> hosts;
  for (const auto& h : multi.hosts) {
    hosts.insert(h.name);
    EXPECT_TRUE(h.addresses.empty()) << h.name;
  }
  EXPECT_EQ(hosts, (std::set<std::string>{"mx1.multi.test", "mx2.multi.test", "mx3.multi.test"}));
  // An MX host without an address is still named: the site does not depend on addresses.
  MxNames dangling = names_of("dangling.test");
  EXPECT_EQ(dangling.status, Status::Ok);
  ASSERT_EQ(dangling.hosts.size(), 1u);
  EXPECT_EQ(dangling.hosts[0].name, "nowhere.test");
  MxNames plain = names_of("plain.test");
  EXPECT_EQ(plain.status, Status::Ok);
  EXPECT_TRUE(plain.implicit);
  EXPECT_TRUE(plain.hosts.empty());
  EXPECT_EQ(names_of("nullmx.test").status, Status::PermFail);
  EXPECT_EQ(names_of("nodomain.test").status, Status::NotFound);
}

TEST_F(ResolverTest, AddressLookups) {
  EXPECT_EQ(list(&Resolver::lookup_a, "mx3.multi.test"),
            std::make_pair(Status::Ok, std::vector<std::string>{"127.0.0.13"}));
  EXPECT_EQ(list(&Resolver::lookup_aaaa, "mx3.multi.test"),
            std::make_pair(Status::Ok, std::vector<std::string>{"fd00::13"}));
  EXPECT_EQ(list(&Resolver::lookup_aaaa, "plain.test").first, Status::NotFound);  // NODATA
  EXPECT_EQ(list(&Resolver::resolve_host, "mx3.multi.test"),
            std::make_pair(Status::Ok, std::vector<std::string>{"127.0.0.13", "fd00::13"}));
  EXPECT_EQ(list(&Resolver::resolve_host, "192.0.2.7"),
            std::make_pair(Status::Ok, std::vector<std::string>{"192.0.2.7"}));
}

// Each query sent is timed into the metrics; an answer from the cache is not.
TEST_F(ResolverTest, QueriesAreTimedIntoTheMetrics) {
  auto writer = metrics::Writer::anonymous("estafette-esmtpd");
  ResolverOptions o = at(port_, 1000ms, 2);
  o.cache_size = 100;
  resolver_.emplace(loop_, o);
  resolver_->set_metrics(writer.get());
  EXPECT_EQ(list(&Resolver::lookup_a, "mx3.multi.test").first, Status::Ok);
  EXPECT_EQ(list(&Resolver::lookup_a, "mx3.multi.test").first, Status::Ok);  // cached
  EXPECT_EQ(list(&Resolver::lookup_aaaa, "plain.test").first, Status::NotFound);
  std::string why;
  auto s = metrics::parse(writer->bytes(), why);
  ASSERT_TRUE(s) << why;
  const auto& f = metrics::family(metrics::Metric::DnsLookupSeconds);
  const std::size_t first = metrics::cell_slot(metrics::Metric::DnsLookupSeconds, 0, 0);
  std::uint64_t count = 0;
  for (std::size_t b = 0; b <= f.buckets.size(); ++b) count += s->counters[first + b];
  EXPECT_GE(count, 2u);
  EXPECT_EQ(count, resolver_->cache_stats().misses);  // the queries sent, not the cache hits
}

TEST_F(ResolverTest, Ptr) {
  EXPECT_EQ(list(&Resolver::lookup_ptr, "127.0.0.5"),
            std::make_pair(Status::Ok, std::vector<std::string>{"ptr.test"}));
  EXPECT_EQ(list(&Resolver::lookup_ptr, "127.0.0.11"),
            std::make_pair(Status::Ok, std::vector<std::string>{"mx1.multi.test"}));
  EXPECT_EQ(list(&Resolver::lookup_ptr, "fd00::13"),
            std::make_pair(Status::Ok, std::vector<std::string>{"mx3.multi.test"}));
  EXPECT_EQ(list(&Resolver::lookup_ptr, "127.0.0.99").first, Status::NotFound);
  EXPECT_EQ(list(&Resolver::lookup_ptr, "not-an-ip").first, Status::PermFail);
}

TEST_F(ResolverTest, Txt) {
  EXPECT_EQ(list(&Resolver::lookup_txt, "txt.test"),
            std::make_pair(Status::Ok, std::vector<std::string>{"v=spf1 -all"}));
  auto split = list(&Resolver::lookup_txt, "split.test");
  EXPECT_EQ(split.first, Status::Ok);
  std::sort(split.second.begin(), split.second.end());
  EXPECT_EQ(split.second, (std::vector<std::string>{"part one part two", "second"}));
  EXPECT_EQ(list(&Resolver::lookup_txt, "plain.test").first, Status::NotFound);
}

TEST_F(ResolverTest, GenericQuery) {
  bool done = false;
  Status status = Status::TempFail;
  std::size_t size = 0;
  Request r = resolver_->query("txt.test", ns_t_txt, [&](Status s, std::string_view answer) {
    status = s;
    size = answer.size();
    done = true;
  });
  EXPECT_TRUE(r.pending());
  run_until(done);
  EXPECT_EQ(status, Status::Ok);
  EXPECT_GT(size, 12u);  // at least a DNS header
  EXPECT_FALSE(r.pending());
}

// dnsmasq does not validate: no answer is authenticated, whatever the records.
TEST_F(ResolverTest, TlsaAndMxFromANonValidatingServerAreInsecure) {
  bool done = false;
  TlsaResult tlsa;
  Request r = resolver_->lookup_tlsa("mx1.multi.test", 25, [&](const TlsaResult& t) {
    tlsa = t;
    done = true;
  });
  run_until(done);
  ASSERT_EQ(tlsa.status, Status::Ok);
  EXPECT_FALSE(tlsa.authenticated);
  ASSERT_EQ(tlsa.records.size(), 2u);
  std::vector<std::string> texts{tlsa_text(tlsa.records[0]), tlsa_text(tlsa.records[1])};
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(texts[0], "1 1 1 " + std::string(64, 'b'));
  EXPECT_EQ(texts[1], "3 1 1 " + std::string(64, 'a'));

  done = false;
  r = resolver_->lookup_tlsa("mx2.multi.test", 25, [&](const TlsaResult& t) {
    tlsa = t;
    done = true;
  });
  run_until(done);
  EXPECT_EQ(tlsa.status, Status::NotFound);
  EXPECT_TRUE(tlsa.records.empty());

  MxResult m = mx(*resolver_, "multi.test");
  EXPECT_EQ(m.status, Status::Ok);
  EXPECT_FALSE(m.authenticated);
  for (const auto& h : m.hosts) EXPECT_FALSE(h.authenticated) << h.name;
}

// What goes on the wire: every query asks for the AD bit (RFC 6840 5.7) with RD, and the
// queries in flight carry distinct ids (c-ares 1.18's ares_send takes the caller's id as it is;
// a fixed one would let anyone on the path guess it). Read at a socket that never answers.
TEST_F(ResolverTest, QueriesAskForTheAdBitWithDistinctIds) {
  int port = 0;
  base::UniqueFd server = estafette::testing::silent_udp(port);
  ASSERT_GT(port, 0);
  Resolver silent(loop_, at(port, 5000ms, 1));
  constexpr int kQueries = 64;
  std::vector<Request> requests;
  for (int i = 0; i < kQueries; ++i)
    requests.push_back(silent.lookup_a("n" + std::to_string(i) + ".test",
                                       [](Status, std::vector<std::string>) {}));
  std::set<unsigned> ids;
  int ad = 0, rd = 0, seen = 0;
  auto deadline = event::Clock::now() + 5s;
  while (seen < kQueries && event::Clock::now() < deadline) {
    auto tick = loop_.add_timer(5ms, [this] { loop_.stop(); });
    loop_.run();  // c-ares sends
    loop_.cancel_timer(tick);
    unsigned char packet[512];
    while (::recv(server.get(), packet, sizeof packet, MSG_DONTWAIT) >= 12) {
      ++seen;
      ids.insert(static_cast<unsigned>(packet[0]) << 8 | packet[1]);
      if (packet[3] & 0x20) ++ad;
      if (packet[2] & 0x01) ++rd;
    }
  }
  EXPECT_EQ(seen, kQueries);
  EXPECT_EQ(ad, kQueries);
  EXPECT_EQ(rd, kQueries);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kQueries));  // all distinct
}

TEST_F(ResolverTest, CancelledRequestNeverCallsBack) {
  bool cancelled_called = false;
  {
    Request dropped = resolver_->lookup_a(
        "mx1.multi.test", [&](Status, std::vector<std::string>) { cancelled_called = true; });
  }
  Request cancelled =
      resolver_->resolve_mx("multi.test", [&](const MxResult&) { cancelled_called = true; });
  cancelled.cancel();
  EXPECT_FALSE(cancelled.pending());
  // Another lookup, started afterwards, completes after the dropped ones were answered.
  auto later = list(&Resolver::resolve_host, "mx3.multi.test");
  auto again = list(&Resolver::lookup_a, "mx2.multi.test");
  EXPECT_EQ(again.first, Status::Ok);
  EXPECT_FALSE(cancelled_called);
}

TEST_F(ResolverTest, DeadServerIsTempFailAtOnce) {
  Resolver dead(loop_, at(free_port(), 500ms, 2));  // nobody listens: ICMP refused
  auto start = event::Clock::now();
  MxResult m = mx(dead, "multi.test");
  EXPECT_EQ(m.status, Status::TempFail);
  EXPECT_LT(event::Clock::now() - start, 3s);
}

TEST_F(ResolverTest, SilentServerTimesOut) {
  // A bound UDP socket that never answers: c-ares must retry and give up on its timer.
  int port = 0;
  base::UniqueFd silent_socket = estafette::testing::silent_udp(port);
  ASSERT_GT(port, 0);
  {
    Resolver silent(loop_, at(port, 200ms, 2));
    auto start = event::Clock::now();
    bool done = false;
    Status status = Status::Ok;
    Request r = silent.lookup_a("mx1.multi.test", [&](Status st, std::vector<std::string>) {
      status = st;
      done = true;
    });
    run_until(done);
    auto took = event::Clock::now() - start;
    EXPECT_TRUE(done);
    EXPECT_EQ(status, Status::TempFail);
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 3s);
    // Destroying a resolver with a query in flight calls nothing back.
    bool late = false;
    Request pending =
        silent.lookup_txt("txt.test", [&](Status, std::vector<std::string>) { late = true; });
    (void)pending;
    EXPECT_FALSE(late);
  }
}

TEST(ReverseName, Formats) {
  EXPECT_EQ(reverse_name("192.0.2.1"), "1.2.0.192.in-addr.arpa");
  EXPECT_EQ(reverse_name("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  EXPECT_EQ(reverse_name("x"), "");
}

}  // namespace
}  // namespace estafette::dns
