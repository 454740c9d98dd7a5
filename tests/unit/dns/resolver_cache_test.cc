// The Resolver's answer cache against a real authoritative server: an rbldnsd child on a free
// loopback port, one per test, whose zones carry short TTLs and an SOA (so that negative answers
// are cacheable, RFC 2308). Stopping the server mid-test shows what the cache answered itself.
#include <arpa/nameser.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lib/dns/resolver.h"
#include "tests/unit/test_servers.h"

namespace estafette::dns {
namespace {

using namespace std::chrono_literals;
using estafette::testing::ChildProcess;

class ResolverCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/sbin/rbldnsd", X_OK) != 0) GTEST_SKIP() << "rbldnsd is not installed";
    char tmpl[] = "/tmp/estafette-cache-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(tmpl, 0755);  // rbldnsd reads its zones after dropping root
    // cache.test: answers live 1 s, negative answers too (SOA TTL and MINIMUM 1).
    std::ofstream(dir_ + "/cache.zone")
        << "$SOA 1 ns.cache.test admin.cache.test 1 600 300 86400 1\n$TTL 1\n"
           ":127.0.0.2:Listed in cache.test\n127.0.0.2\n127.0.0.3\n127.0.0.4\n";
    // long.test: an hour, to be capped by cache_max_ttl.
    std::ofstream(dir_ + "/long.zone")
        << "$SOA 3600 ns.long.test admin.long.test 1 600 300 86400 3600\n$TTL 3600\n127.0.0.2\n";
    port_ = estafette::testing::free_port();
    ASSERT_TRUE(
        server_.start({"/usr/sbin/rbldnsd", "-n", "-q", "-b", "127.0.0.1/" + std::to_string(port_),
                       "-w", dir_, "cache.test:ip4set:cache.zone", "long.test:ip4set:long.zone"}));
    // rbldnsd is UDP only: wait until it answers.
    for (int i = 0; i < 100 && !answers(); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(answers()) << "rbldnsd did not come up on port " << port_;
  }
  void TearDown() override {
    server_.stop();
    if (!dir_.empty()) estafette::testing::run_command("rm -rf '" + dir_ + "'");
  }

  bool answers() {
    return estafette::testing::run_command(
        "dig +short +time=1 +tries=1 @127.0.0.1 -p " + std::to_string(port_) +
        " 2.0.0.127.long.test A 2>/dev/null | grep -q 127.0.0.2");
  }

  Resolver make(std::size_t cache_size, std::chrono::seconds max_ttl = 3600s) {
    ResolverOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(port_)};
    o.timeout = 300ms;
    o.tries = 1;
    o.cache_size = cache_size;
    o.cache_max_ttl = max_ttl;
    return Resolver(loop_, o);
  }

  // One lookup; checks that the callback never runs inside the call.
  std::pair<Status, std::vector<std::string>> a(Resolver& r, const std::string& name,
                                                bool txt = false) {
    bool done = false;
    std::pair<Status, std::vector<std::string>> out{Status::PermFail, {}};
    auto cb = [&](Status s, std::vector<std::string> v) {
      out = {s, std::move(v)};
      done = true;
    };
    Request req = txt ? r.lookup_txt(name, cb) : r.lookup_a(name, cb);
    EXPECT_FALSE(done) << "answered inside the call";
    EXPECT_TRUE(estafette::testing::run_until(loop_, [&] { return done; }));
    return out;
  }

  event::Loop loop_;
  ChildProcess server_;
  std::string dir_;
  int port_ = 0;
};

const std::vector<std::string> kListed{"127.0.0.2"};

TEST_F(ResolverCacheTest, PositiveAnswerServedFromCacheUntilItsTtl) {
  Resolver r = make(100);
  EXPECT_EQ(a(r, "2.0.0.127.cache.test"), std::make_pair(Status::Ok, kListed));
  EXPECT_EQ(r.cache_stats().misses, 1u);
  EXPECT_EQ(r.cache_stats().entries, 1u);
  auto stored = std::chrono::steady_clock::now();
  server_.stop();  // from now on only the cache can answer
  EXPECT_EQ(a(r, "2.0.0.127.cache.test"), std::make_pair(Status::Ok, kListed));
  EXPECT_EQ(a(r, "2.0.0.127.CACHE.Test."), std::make_pair(Status::Ok, kListed));
  // Another kind of lookup of the same name and type shares the entry.
  bool raw_done = false;
  Status raw = Status::PermFail;
  Request q = r.query("2.0.0.127.cache.test", ns_t_a, [&](Status s, std::string_view) {
    raw = s;
    raw_done = true;
  });
  ASSERT_TRUE(estafette::testing::run_until(loop_, [&] { return raw_done; }));
  EXPECT_EQ(raw, Status::Ok);
  EXPECT_EQ(r.cache_stats().hits, 3u);
  EXPECT_EQ(r.cache_stats().misses, 1u);
  ASSERT_LT(std::chrono::steady_clock::now() - stored, 900ms) << "machine too slow for TTL 1";
  // After the TTL the server is asked again: it is gone, so a temporary failure...
  std::this_thread::sleep_until(stored + 1100ms);
  EXPECT_EQ(a(r, "2.0.0.127.cache.test").first, Status::TempFail);
  EXPECT_EQ(r.cache_stats().misses, 2u);
  EXPECT_EQ(r.cache_stats().entries, 0u);
  // ...which is never cached.
  EXPECT_EQ(a(r, "2.0.0.127.cache.test").first, Status::TempFail);
  EXPECT_EQ(r.cache_stats().misses, 3u);
  EXPECT_EQ(r.cache_stats().hits, 3u);
  EXPECT_EQ(r.cache_stats().entries, 0u);
}

TEST_F(ResolverCacheTest, NegativeAnswersCachedForTheSoaMinimum) {
  Resolver r = make(100);
  EXPECT_EQ(a(r, "1.0.0.127.cache.test").first, Status::NotFound);  // NXDOMAIN + SOA
  EXPECT_EQ(a(r, "2.0.0.127.cache.test", true),
            std::make_pair(Status::Ok, std::vector<std::string>{"Listed in cache.test"}));
  bool done = false;
  Status nodata = Status::Ok;
  Request q = r.lookup_aaaa("2.0.0.127.cache.test", [&](Status s, std::vector<std::string>) {
    nodata = s;
    done = true;
  });
  ASSERT_TRUE(estafette::testing::run_until(loop_, [&] { return done; }));
  EXPECT_EQ(nodata, Status::NotFound);  // NODATA + SOA
  EXPECT_EQ(r.cache_stats().entries, 3u);
  auto stored = std::chrono::steady_clock::now();
  server_.stop();
  EXPECT_EQ(a(r, "1.0.0.127.cache.test").first, Status::NotFound);
  EXPECT_EQ(a(r, "2.0.0.127.cache.test", true).first, Status::Ok);
  EXPECT_EQ(r.cache_stats().hits, 2u);
  std::this_thread::sleep_until(stored + 1100ms);
  EXPECT_EQ(a(r, "1.0.0.127.cache.test").first, Status::TempFail);
}

TEST_F(ResolverCacheTest, RefusedIsNeverCached) {
  Resolver r = make(100);
  // rbldnsd refuses names outside its zones: a temporary failure.
  EXPECT_EQ(a(r, "elsewhere.example").first, Status::TempFail);
  EXPECT_EQ(a(r, "elsewhere.example").first, Status::TempFail);
  EXPECT_EQ(r.cache_stats().hits, 0u);
  EXPECT_EQ(r.cache_stats().misses, 2u);
  EXPECT_EQ(r.cache_stats().entries, 0u);
}

TEST_F(ResolverCacheTest, MaxTtlCapsLongAnswers) {
  Resolver r = make(100, 1s);
  EXPECT_EQ(a(r, "2.0.0.127.long.test"), std::make_pair(Status::Ok, kListed));
  auto stored = std::chrono::steady_clock::now();
  EXPECT_EQ(a(r, "2.0.0.127.long.test"), std::make_pair(Status::Ok, kListed));
  EXPECT_EQ(r.cache_stats().hits, 1u);
  std::this_thread::sleep_until(stored + 1100ms);
  EXPECT_EQ(a(r, "2.0.0.127.long.test"), std::make_pair(Status::Ok, kListed));
  EXPECT_EQ(r.cache_stats().hits, 1u);
  EXPECT_EQ(r.cache_stats().misses, 2u);
}

TEST_F(ResolverCacheTest, BoundedByCacheSize) {
  Resolver r = make(2, 3600s);
  for (const char* n : {"2.0.0.127.long.test", "3.0.0.127.long.test", "4.0.0.127.long.test"})
    a(r, n);
  EXPECT_EQ(r.cache_stats().entries, 2u);
  EXPECT_EQ(r.cache_stats().misses, 3u);
  a(r, "4.0.0.127.long.test");  // kept
  EXPECT_EQ(r.cache_stats().hits, 1u);
  a(r, "2.0.0.127.long.test");  // the oldest, evicted
  EXPECT_EQ(r.cache_stats().hits, 1u);
  EXPECT_EQ(r.cache_stats().misses, 4u);
  EXPECT_EQ(r.cache_stats().entries, 2u);
}

TEST_F(ResolverCacheTest, NoCacheByDefault) {
  Resolver r = make(0);
  a(r, "2.0.0.127.long.test");
  a(r, "2.0.0.127.long.test");
  EXPECT_EQ(r.cache_stats().hits, 0u);
  EXPECT_EQ(r.cache_stats().misses, 0u);
  EXPECT_EQ(r.cache_stats().entries, 0u);
}

TEST_F(ResolverCacheTest, CancelledCachedAnswerNeverCallsBack) {
  Resolver r = make(100);
  a(r, "2.0.0.127.long.test");
  bool called = false;
  {
    Request dropped =
        r.lookup_a("2.0.0.127.long.test", [&](Status, std::vector<std::string>) { called = true; });
  }
  a(r, "3.0.0.127.long.test");  // runs the loop past the posted answer
  EXPECT_FALSE(called);
  EXPECT_EQ(r.cache_stats().hits, 1u);
}

}  // namespace
}  // namespace estafette::dns
