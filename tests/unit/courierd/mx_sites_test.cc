// MX sites: site_key() as a table; Sites against a real DNS server (a dnsmasq child): domains
// with the same MX hosts share a site whatever their order and preferences, an implicit MX is the
// domain itself, no site for NXDOMAIN / null MX / a silent server (the domain is the key, after
// the timeout), answers kept for their TTL, one query for concurrent lookups, and the
// destinations file's domains name their sites' limits.
#include "courierd/mx_sites.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>

#include "tests/unit/test_servers.h"

namespace estafette::courierd {
namespace {

using namespace std::chrono_literals;
using dns::MxHost;
using dns::MxNames;
using dns::Status;

MxNames answer(Status status, std::vector<std::string> names, bool implicit = false) {
  MxNames m;
  m.status = status;
  m.implicit = implicit;
  unsigned pref = 10;
  for (auto& n : names) m.hosts.push_back(MxHost{n, pref += 10, Status::Ok, {}});
  return m;
}

struct KeyCase {
  std::string domain;
  MxNames mx;
  std::optional<std::string> key;
};
class SiteKey : public ::testing::TestWithParam<KeyCase> {};
TEST_P(SiteKey, FromTheAnswer) {
  EXPECT_EQ(site_key(GetParam().domain, GetParam().mx), GetParam().key) << GetParam().domain;
}
INSTANTIATE_TEST_SUITE_P(
    Table, SiteKey,
    ::testing::Values(
        KeyCase{"a.test", answer(Status::Ok, {"mx.site.test"}), "mx:mx.site.test"},
        // Sorted, lower-case, without the root dot, each name once.
        KeyCase{"b.test", answer(Status::Ok, {"MX2.site.test.", "mx1.site.test", "mx2.site.test"}),
                "mx:mx1.site.test,mx2.site.test"},
        KeyCase{"Plain.Test", answer(Status::Ok, {}, true), "mx:plain.test"},
        KeyCase{"gone.test", answer(Status::NotFound, {}), std::nullopt},
        KeyCase{"null.test", answer(Status::PermFail, {}), std::nullopt},
        KeyCase{"slow.test", answer(Status::TempFail, {}), std::nullopt},
        KeyCase{"odd.test", answer(Status::Ok, {}), std::nullopt}));

TEST(SiteKey, Recognised) {
  EXPECT_TRUE(is_site_key("mx:mx.site.test"));
  EXPECT_FALSE(is_site_key("example.com"));
  EXPECT_FALSE(is_site_key("relay.test:25"));
  EXPECT_FALSE(is_site_key("local"));
}

class SitesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::access("/usr/sbin/dnsmasq", X_OK) != 0) return;
    port_ = estafette::testing::free_port();
    auto args = estafette::testing::dnsmasq_args(
        port_, {"--local-ttl=60", "--mx-host=a.test,mx.site.test,10",
                "--mx-host=b.test,mx.site.test,20", "--mx-host=c.test,mx1.two.test,10",
                "--mx-host=c.test,mx2.two.test,20", "--mx-host=d.test,mx2.two.test,5",
                "--mx-host=d.test,mx1.two.test,50", "--mx-host=e.test,plain.test,10",
                "--host-record=plain.test,127.0.0.20", "--mx-host=nullmx.test,.,0"});
    if (dnsmasq_.start(args) && !estafette::testing::wait_tcp(port_)) dnsmasq_.stop();
  }
  static void TearDownTestSuite() { dnsmasq_.stop(); }

  void SetUp() override {
    if (!dnsmasq_.running()) GTEST_SKIP() << "dnsmasq is not available";
  }

  dns::ResolverOptions options(int port) {
    dns::ResolverOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(port)};
    o.timeout = 300ms;
    o.tries = 1;
    return o;
  }

  void run_until(const std::function<bool()>& done) {
    auto deadline = event::Clock::now() + 10s;
    while (!done() && event::Clock::now() < deadline) {
      auto tick = loop_.add_timer(2ms, [this] { loop_.stop(); });
      loop_.run();
      loop_.cancel_timer(tick);
    }
  }

  std::string key_of(Sites& sites, const std::string& domain) {
    std::optional<std::string> key;
    sites.resolve(domain, [&](const std::string& k) { key = k; });
    EXPECT_FALSE(key) << "called back inside resolve()";
    run_until([&] { return key.has_value(); });
    EXPECT_TRUE(key) << domain;
    return key.value_or("");
  }

  static inline estafette::testing::ChildProcess dnsmasq_;
  static inline int port_ = 0;
  event::Loop loop_;
};

TEST_F(SitesTest, DomainsWithTheSameMxHostsShareASite) {
  config::DestinationTable table;
  Sites sites(loop_, options(port_), table);
  EXPECT_EQ(key_of(sites, "a.test"), "mx:mx.site.test");
  EXPECT_EQ(key_of(sites, "b.test"), "mx:mx.site.test");
  EXPECT_EQ(key_of(sites, "c.test"), "mx:mx1.two.test,mx2.two.test");
  EXPECT_EQ(key_of(sites, "d.test"), "mx:mx1.two.test,mx2.two.test");  // other preferences
  EXPECT_EQ(key_of(sites, "plain.test"), "mx:plain.test");             // implicit MX: its own host
  EXPECT_EQ(key_of(sites, "e.test"), "mx:plain.test");     // ... shared with e.test's MX
  EXPECT_EQ(key_of(sites, "nullmx.test"), "nullmx.test");  // esmtpclient bounces it
  EXPECT_EQ(key_of(sites, "nodomain.test"), "nodomain.test");
  // Kept for the answer's TTL (--local-ttl=60).
  EXPECT_EQ(sites.cached("a.test", Sites::Clock::now()), "mx:mx.site.test");
  EXPECT_EQ(sites.cached("a.test", Sites::Clock::now() + 61s), std::nullopt);
  EXPECT_EQ(sites.cached("unknown.test", Sites::Clock::now()), std::nullopt);
}

TEST_F(SitesTest, ConcurrentLookupsShareOneQuery) {
  config::DestinationTable table;
  Sites sites(loop_, options(port_), table);
  std::vector<std::string> keys;
  for (int i = 0; i < 3; ++i)
    sites.resolve("c.test", [&](const std::string& k) { keys.push_back(k); });
  EXPECT_EQ(sites.pending(), 1u);
  run_until([&] { return keys.size() == 3; });
  EXPECT_EQ(keys, std::vector<std::string>(3, "mx:mx1.two.test,mx2.two.test"));
  EXPECT_EQ(sites.pending(), 0u);
}

TEST_F(SitesTest, SilentServerGivesTheDomainAfterTheTimeout) {
  int port = 0;
  base::UniqueFd silent = estafette::testing::silent_udp(port);
  ASSERT_GT(port, 0);
  config::DestinationTable table;
  table.domains["a.test"] = config::DestinationLimits{2, 0ms, 0};
  {
    Sites sites(loop_, options(port), table);
    sites.start();  // the file's domain: no answer, nothing learned
    auto start = event::Clock::now();
    EXPECT_EQ(key_of(sites, "b.test"), "b.test");
    EXPECT_GE(event::Clock::now() - start, 250ms);
    EXPECT_LT(event::Clock::now() - start, 3s);
    EXPECT_EQ(sites.cached("b.test", Sites::Clock::now()), std::nullopt);  // failures not kept
    EXPECT_EQ(sites.site_limits("mx:mx.site.test"), nullptr);
    // Destroying Sites with a lookup in flight calls nothing back.
    bool late = false;
    sites.resolve("c.test", [&](const std::string&) { late = true; });
    (void)late;
  }
}

TEST_F(SitesTest, TheFilesDomainsNameTheirSitesLimits) {
  config::DestinationTable table;
  table.domains["a.test"] = config::DestinationLimits{3, 1000ms, 0};
  table.domains["b.test"] = config::DestinationLimits{2, 0ms, 10};  // same site: the strictest
  table.domains["c.test"] = config::DestinationLimits{0, 0ms, 5};
  table.domains["nullmx.test"] = config::DestinationLimits{1, 0ms, 0};  // no site
  Sites sites(loop_, options(port_), table);
  sites.start();
  run_until([&] {
    return sites.pending() == 0 && sites.site_limits("mx:mx.site.test") &&
           sites.site_limits("mx:mx1.two.test,mx2.two.test");
  });
  ASSERT_NE(sites.site_limits("mx:mx.site.test"), nullptr);
  EXPECT_EQ(*sites.site_limits("mx:mx.site.test"), (config::DestinationLimits{2, 1000ms, 10}));
  ASSERT_NE(sites.site_limits("mx:mx1.two.test,mx2.two.test"), nullptr);
  EXPECT_EQ(sites.site_limits("mx:mx1.two.test,mx2.two.test")->max_rcpt, 5u);
  EXPECT_EQ(sites.site_limits("nullmx.test"), nullptr);
  EXPECT_EQ(sites.site_limits("mx:plain.test"), nullptr);
}

}  // namespace
}  // namespace estafette::courierd
