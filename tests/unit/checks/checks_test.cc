// ConnectionChecks against real servers: the project's DNS fixture (tests/rig/fixture.py dns:
// dnsmasq + rbldnsd with the records of bench/kit/orchestrate/rig.py, on free ports), a dnsmasq
// of our own where the fixture's records do not have the case (no PTR at all, several PTR
// names), the IDENT fixture's oidentd on 127.0.0.1:113 (needs root; an oidentd already running
// there is used as it is), and sockets of the test for what no real server does on purpose (a
// dead DNS server, one that never answers, an identd that accepts and says nothing, an identd
// reply over the length limit).
#include "lib/checks/checks.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/test_servers.h"

namespace estafette::checks {

inline void PrintTo(RdnsStatus s, std::ostream* os) {
  *os << to_string(s);
}
inline void PrintTo(IdentStatus s, std::ostream* os) {
  *os << to_string(s);
}

namespace {

using namespace std::chrono_literals;
using estafette::testing::run_until;

DnsList list(const std::string& zone, int weight, const std::string& reply = "",
             const std::string& filter = "") {
  auto f = AnswerFilter::parse(filter);
  EXPECT_TRUE(f) << filter;
  return DnsList{zone, f.value_or(AnswerFilter{}), weight, reply};
}

Settings only_rdns() {
  Settings s;
  s.ident = false;
  return s;
}

Settings only_dnsbl(std::vector<DnsList> lists) {
  Settings s;
  s.rdns = false;
  s.ident = false;
  s.dnsbl = std::move(lists);
  return s;
}

Settings only_ident(std::uint16_t port = 113, std::chrono::milliseconds timeout = 2000ms) {
  Settings s;
  s.rdns = false;
  s.ident = true;
  s.ident_port = port;
  s.ident_timeout = timeout;
  return s;
}

int open_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (d && ::readdir(d)) ++n;
  if (d) ::closedir(d);
  return n;
}

class ChecksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/estafette-checks-test.XXXXXX";
    if (!::mkdtemp(tmpl)) return;
    state_ = tmpl;
    ::chmod(tmpl, 0755);  // rbldnsd started as root reads its zones as its own user
    // The project's DNS fixture: dnsmasq on rig_port_, rbldnsd on rig_port_ + 1.
    rig_port_ = estafette::testing::free_port();
    rig_dns_.start({"dns", state_ + "/dns", std::to_string(rig_port_)}, state_ + "/dns.log");
    // Our own dnsmasq: the fixture's records that matter here, plus an authoritative reverse
    // zone (the fixture's dnsmasq refuses reverse names it has no record for) with several PTR
    // names.
    own_port_ = estafette::testing::free_port();
    auto args = estafette::testing::dnsmasq_args(
        own_port_,
        {"--host-record=client.test,127.0.0.1", "--host-record=multi-b.test,127.0.0.4",
         "--host-record=multi-a.test,127.0.0.8", "--ptr-record=4.0.0.127.in-addr.arpa,multi-a.test",
         "--ptr-record=4.0.0.127.in-addr.arpa,multi-b.test",
         "--ptr-record=6.0.0.127.in-addr.arpa,gone.test"});
    if (::access(args[0].c_str(), X_OK) == 0 && own_dns_.start(args) &&
        !estafette::testing::wait_tcp(own_port_))
      own_dns_.stop();
    // oidentd on 127.0.0.1:113 (root only): ours, or one that already runs there.
    if (::geteuid() == 0) identd_.start({"identd"}, state_ + "/identd.log");
  }
  static void TearDownTestSuite() {
    own_dns_.stop();
    rig_dns_.stop();
    identd_.stop();
    if (!state_.empty()) estafette::testing::run_command("rm -rf '" + state_ + "'");
  }

  void SetUp() override {
    ASSERT_FALSE(state_.empty()) << "mkdtemp failed";
    ASSERT_TRUE(rig_dns_.running()) << "the DNS fixture: " << rig_dns_.error();
  }

  dns::Resolver& rig_resolver() {
    if (!rig_resolver_) rig_resolver_.emplace(loop_, options(rig_port_));
    return *rig_resolver_;
  }
  dns::Resolver& own_resolver() {
    if (!own_dns_.running()) ADD_FAILURE() << "own dnsmasq did not start";
    if (!own_resolver_) own_resolver_.emplace(loop_, options(own_port_));
    return *own_resolver_;
  }
  static dns::ResolverOptions options(int port, std::chrono::milliseconds timeout = 1000ms,
                                      int tries = 2) {
    dns::ResolverOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(port)};
    o.timeout = timeout;
    o.tries = tries;
    return o;
  }

  // Runs one set of checks to the end; fails the test when done is not called within 10 s.
  Results run(dns::Resolver& resolver, const Settings& settings, Endpoints endpoints) {
    int calls = 0;
    ConnectionChecks checks(loop_, resolver, settings, std::move(endpoints), [&] { ++calls; });
    checks.start();
    EXPECT_EQ(calls, 0) << "done inside start()";
    EXPECT_FALSE(checks.finished());
    EXPECT_TRUE(run_until(loop_, [&] { return calls > 0; }));
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(checks.finished());
    return checks.results();
  }
  Results run_rig(const Settings& settings, const std::string& client_ip) {
    return run(rig_resolver(), settings, Endpoints{client_ip, 40000, "127.0.0.1", 25});
  }

  static inline std::string state_;
  static inline estafette::testing::RigFixture rig_dns_;
  static inline int rig_port_ = 0;
  static inline estafette::testing::ChildProcess own_dns_;
  static inline int own_port_ = 0;
  static inline estafette::testing::RigFixture identd_;
  event::Loop loop_;
  std::optional<dns::Resolver> rig_resolver_, own_resolver_;
};

// --- FCrDNS

TEST_F(ChecksTest, RdnsConfirmed) {
  Results r = run_rig(only_rdns(), "127.0.0.1");
  EXPECT_EQ(r.rdns.status, RdnsStatus::Confirmed);
  EXPECT_EQ(r.rdns.name, "client.test");
  EXPECT_EQ(r.rdns.ptr_names, std::vector<std::string>{"client.test"});
  EXPECT_EQ(r.ident.status, IdentStatus::Off);
  EXPECT_EQ(r.dnsbl.score, 0);
}

TEST_F(ChecksTest, RdnsConfirmedForAnIpv4MappedAddress) {
  Results r = run_rig(only_rdns(), "::ffff:127.0.0.1");
  EXPECT_EQ(r.rdns.status, RdnsStatus::Confirmed);
  EXPECT_EQ(r.rdns.name, "client.test");
}

TEST_F(ChecksTest, RdnsUnconfirmed) {
  Results r = run_rig(only_rdns(), "127.0.0.2");  // PTR spammer.test, A spammer.test 127.0.0.9
  EXPECT_EQ(r.rdns.status, RdnsStatus::Unconfirmed);
  EXPECT_EQ(r.rdns.name, "unknown");
  EXPECT_EQ(r.rdns.ptr_names, std::vector<std::string>{"spammer.test"});
}

TEST_F(ChecksTest, RdnsRefusedIsTempFail) {
  // The fixture's dnsmasq answers REFUSED for reverse names it has no record for: not "no PTR".
  Results r = run_rig(only_rdns(), "127.0.0.3");
  EXPECT_EQ(r.rdns.status, RdnsStatus::TempFail);
  EXPECT_TRUE(r.rdns.ptr_names.empty());
}

TEST_F(ChecksTest, RdnsNoPtr) {
  Results r = run(own_resolver(), only_rdns(), Endpoints{"127.0.0.3", 40000, "127.0.0.1", 25});
  EXPECT_EQ(r.rdns.status, RdnsStatus::NoPtr);
  EXPECT_EQ(r.rdns.name, "unknown");
}

TEST_F(ChecksTest, RdnsPtrNameWithoutAddressIsUnconfirmed) {
  Results r = run(own_resolver(), only_rdns(), Endpoints{"127.0.0.6", 40000, "127.0.0.1", 25});
  EXPECT_EQ(r.rdns.status, RdnsStatus::Unconfirmed);  // gone.test: NXDOMAIN
  EXPECT_EQ(r.rdns.ptr_names, std::vector<std::string>{"gone.test"});
}

TEST_F(ChecksTest, RdnsAnyOfSeveralNamesConfirms) {
  // PTR 127.0.0.4 -> multi-a.test (A 127.0.0.8) and multi-b.test (A 127.0.0.4).
  Results r = run(own_resolver(), only_rdns(), Endpoints{"127.0.0.4", 40000, "127.0.0.1", 25});
  EXPECT_EQ(r.rdns.status, RdnsStatus::Confirmed);
  EXPECT_EQ(r.rdns.name, "multi-b.test");
  EXPECT_EQ(r.rdns.ptr_names.size(), 2u);
  // With one name looked at, the result follows whichever name came first.
  Settings one = only_rdns();
  one.max_ptr_names = 1;
  r = run(own_resolver(), one, Endpoints{"127.0.0.4", 40000, "127.0.0.1", 25});
  ASSERT_EQ(r.rdns.ptr_names.size(), 1u);
  EXPECT_EQ(r.rdns.status, r.rdns.ptr_names[0] == "multi-b.test" ? RdnsStatus::Confirmed
                                                                 : RdnsStatus::Unconfirmed);
}

// --- DNS lists

TEST_F(ChecksTest, DnsblHitsWithWeightsAndReplies) {
  Results r = run_rig(only_dnsbl({list("bl1.test", 2, "*"), list("bl2.test", 3)}), "127.0.0.2");
  EXPECT_EQ(r.dnsbl.score, 5);
  EXPECT_TRUE(r.dnsbl.tempfailed.empty());
  ASSERT_EQ(r.dnsbl.hits.size(), 2u);
  EXPECT_EQ(r.dnsbl.hits[0].zone, "bl1.test");
  EXPECT_EQ(r.dnsbl.hits[0].weight, 2);
  EXPECT_EQ(r.dnsbl.hits[0].answers, std::vector<std::string>{"127.0.0.2"});
  EXPECT_EQ(r.dnsbl.hits[0].reply, "Listed in bl1.test, see http://bl1.test/127.0.0.2");
  EXPECT_EQ(r.dnsbl.hits[1].zone, "bl2.test");
  EXPECT_EQ(r.dnsbl.hits[1].reply,
            "Service unavailable; client [127.0.0.2] blocked using bl2.test");
  EXPECT_EQ(r.dnsbl.reply_text(), r.dnsbl.hits[1].reply);
  EXPECT_TRUE(r.dnsbl.blocked(5));
  EXPECT_FALSE(r.dnsbl.blocked(6));
  EXPECT_EQ(r.rdns.status, RdnsStatus::Off);
}

TEST_F(ChecksTest, DnsblFixedReplyAndTxtOfTheOtherList) {
  Results r =
      run_rig(only_dnsbl({list("bl1.test", 1, "go away"), list("bl2.test", 1, "*")}), "127.0.0.2");
  ASSERT_EQ(r.dnsbl.hits.size(), 2u);
  EXPECT_EQ(r.dnsbl.hits[0].reply, "go away");
  EXPECT_EQ(r.dnsbl.hits[1].reply, "Listed in bl2.test");
}

TEST_F(ChecksTest, DnsblFilterExcludesOtherCodes) {
  // 3.0.0.127.bl2.test answers 127.0.0.4.
  Results r = run_rig(only_dnsbl({list("bl2.test", 5, "*", "127.0.0.2")}), "127.0.0.3");
  EXPECT_EQ(r.dnsbl.score, 0);
  EXPECT_TRUE(r.dnsbl.hits.empty());
  EXPECT_TRUE(r.dnsbl.tempfailed.empty());
  r = run_rig(only_dnsbl({list("bl2.test", 5, "*", "127.0.0.[2..4]")}), "127.0.0.3");
  EXPECT_EQ(r.dnsbl.score, 5);
  ASSERT_EQ(r.dnsbl.hits.size(), 1u);
  EXPECT_EQ(r.dnsbl.hits[0].answers, std::vector<std::string>{"127.0.0.4"});
  EXPECT_EQ(r.dnsbl.hits[0].reply, "Policy listing in bl2.test");
}

TEST_F(ChecksTest, DnsblAllowListLowersTheScore) {
  Results r = run_rig(only_dnsbl({list("bl1.test", 3), list("bl2.test", -2)}), "127.0.0.2");
  EXPECT_EQ(r.dnsbl.score, 1);
  ASSERT_EQ(r.dnsbl.hits.size(), 2u);
  EXPECT_EQ(r.dnsbl.reply_text(), "Service unavailable; client [127.0.0.2] blocked using bl1.test");
  r = run_rig(only_dnsbl({list("bl1.test", 3), list("bl2.test", -5)}), "127.0.0.2");
  EXPECT_EQ(r.dnsbl.score, -2);
  EXPECT_FALSE(r.dnsbl.blocked(1));
}

TEST_F(ChecksTest, DnsblNotListed) {
  Results r = run_rig(only_dnsbl({list("bl1.test", 3), list("bl2.test", 3)}), "127.0.0.1");
  EXPECT_EQ(r.dnsbl.score, 0);
  EXPECT_TRUE(r.dnsbl.hits.empty());
  EXPECT_TRUE(r.dnsbl.tempfailed.empty());  // NXDOMAIN is an answer
}

TEST_F(ChecksTest, DnsblUnknownZoneRefusedIsTempFailed) {
  // Not under .test: the fixture's dnsmasq has no upstream and refuses.
  Results r = run_rig(only_dnsbl({list("bl1.test", 3), list("bl.example", 3)}), "127.0.0.2");
  EXPECT_EQ(r.dnsbl.score, 3);
  EXPECT_EQ(r.dnsbl.tempfailed, std::vector<std::string>{"bl.example"});
}

// --- everything at once, and the cache underneath

TEST_F(ChecksTest, AllChecksTogetherAndCachedTheSecondTime) {
  dns::ResolverOptions o = options(rig_port_);
  o.cache_size = 100;
  dns::Resolver cached(loop_, o);
  Settings s;
  s.ident = false;
  s.dnsbl = {list("bl1.test", 2, "*"), list("bl2.test", 3)};
  Endpoints ep{"127.0.0.2", 40000, "127.0.0.1", 25};
  Results first = run(cached, s, ep);
  EXPECT_EQ(first.rdns.status, RdnsStatus::Unconfirmed);
  EXPECT_EQ(first.dnsbl.score, 5);
  EXPECT_EQ(cached.cache_stats().hits, 0u);
  auto misses = cached.cache_stats().misses;
  EXPECT_EQ(misses, 5u);  // PTR, A spammer.test, A bl1, A bl2, TXT bl1
  Results second = run(cached, s, ep);
  EXPECT_EQ(second.rdns.status, RdnsStatus::Unconfirmed);
  EXPECT_EQ(second.dnsbl.score, 5);
  EXPECT_EQ(second.dnsbl.hits[0].reply, first.dnsbl.hits[0].reply);
  // The fixture's dnsmasq gives its own records TTL 0 (never cached); rbldnsd's list answers it
  // passes on have TTLs: those three come from the cache.
  EXPECT_EQ(cached.cache_stats().hits, 3u);
  EXPECT_EQ(cached.cache_stats().misses, misses + 2);
}

TEST_F(ChecksTest, NothingEnabledStillAnswersLater) {
  Settings s;
  s.rdns = false;
  s.ident = false;
  Results r = run_rig(s, "127.0.0.2");
  EXPECT_EQ(r.rdns.status, RdnsStatus::Off);
  EXPECT_EQ(r.ident.status, IdentStatus::Off);
  EXPECT_LT(r.elapsed, 100ms);
}

TEST_F(ChecksTest, DestroyingCancelsEverything) {
  int port = 0;
  base::UniqueFd silent = estafette::testing::silent_udp(port);
  dns::Resolver resolver(loop_, options(port, 200ms, 2));
  base::UniqueFd listener = base::UniqueFd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = estafette::testing::loopback("127.0.0.1", 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  Settings s = only_ident(ntohs(a.sin_port), 300ms);
  s.rdns = true;
  s.dnsbl = {list("bl1.test", 1)};
  int before = open_fds();
  bool called = false;
  auto checks = std::make_unique<ConnectionChecks>(
      loop_, resolver, s, Endpoints{"127.0.0.2", 40000, "127.0.0.1", 25}, [&] { called = true; });
  checks->start();
  EXPECT_GT(open_fds(), before);  // the ident socket (and c-ares's)
  run_until(
      loop_, [] { return false; }, 50ms);
  checks.reset();
  run_until(
      loop_, [] { return false; }, 1000ms);  // past every timeout
  EXPECT_FALSE(called);
  EXPECT_EQ(open_fds(), before) << "a socket left open";
}

// --- DNS servers that fail

TEST_F(ChecksTest, DeadDnsServerIsTempFailAtOnce) {
  // Nothing listens on the port: every query is refused (ICMP) at once.
  dns::Resolver dead(loop_, options(estafette::testing::free_port(), 1000ms, 2));
  Settings s = only_rdns();
  s.dnsbl = {list("bl1.test", 1), list("bl2.test", 1)};
  Results r = run(dead, s, Endpoints{"127.0.0.2", 40000, "127.0.0.1", 25});
  EXPECT_EQ(r.rdns.status, RdnsStatus::TempFail);
  EXPECT_EQ(r.dnsbl.score, 0);
  EXPECT_EQ(r.dnsbl.tempfailed, (std::vector<std::string>{"bl1.test", "bl2.test"}));
  EXPECT_LT(r.elapsed, 2000ms);  // within timeout x tries
}

TEST_F(ChecksTest, SilentDnsServerTimesOutWithoutHoldingOthersUp) {
  int port = 0;
  base::UniqueFd silent = estafette::testing::silent_udp(port);
  constexpr auto kTimeout = 400ms;
  dns::Resolver slow(loop_, options(port, kTimeout, 2));
  Settings s = only_rdns();
  s.dnsbl = {list("bl1.test", 1), list("bl2.test", 1)};
  // Both on the same loop, started together: the silent server's and the fixture's.
  int slow_done = 0, healthy_done = 0;
  ConnectionChecks stuck(loop_, slow, s, Endpoints{"127.0.0.2", 40000, "127.0.0.1", 25},
                         [&] { ++slow_done; });
  ConnectionChecks healthy(loop_, rig_resolver(), s, Endpoints{"127.0.0.2", 40001, "127.0.0.1", 25},
                           [&] { ++healthy_done; });
  stuck.start();
  healthy.start();
  ASSERT_TRUE(run_until(loop_, [&] { return healthy_done > 0; }));
  EXPECT_EQ(slow_done, 0);
  EXPECT_EQ(healthy.results().rdns.status, RdnsStatus::Unconfirmed);
  EXPECT_EQ(healthy.results().dnsbl.score, 2);
  EXPECT_LT(healthy.results().elapsed, kTimeout / 2) << "held up by the silent server";
  ASSERT_TRUE(run_until(loop_, [&] { return slow_done > 0; }));
  const Results& r = stuck.results();
  EXPECT_EQ(r.rdns.status, RdnsStatus::TempFail);
  EXPECT_EQ(r.dnsbl.tempfailed, (std::vector<std::string>{"bl1.test", "bl2.test"}));
  // c-ares doubles the timeout on each try: 400 ms + 800 ms.
  EXPECT_GE(r.elapsed, kTimeout);
  EXPECT_LT(r.elapsed, kTimeout + 2 * kTimeout + 500ms);
  EXPECT_EQ(slow_done, 1);
  EXPECT_EQ(healthy_done, 1);
}

// --- IDENT

class IdentTest : public ChecksTest {
 protected:
  void SetUp() override {
    ChecksTest::SetUp();
    if (IsSkipped()) return;
    if (::geteuid() != 0) GTEST_SKIP() << "oidentd needs port 113: run the tests as root";
    ASSERT_TRUE(identd_.running()) << "the IDENT fixture: " << identd_.error();
  }

  // A listening socket on 127.0.0.1 and a free port.
  static base::UniqueFd listener(std::uint16_t& port) {
    base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = estafette::testing::loopback("127.0.0.1", 0);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd.get(), 8), 0);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
  }
  static std::uint16_t local_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }
};

TEST_F(IdentTest, ConnectionOwnedByNobody) {
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  std::uint16_t server_port = 0;
  base::UniqueFd server = listener(server_port);
  int to_parent[2], to_child[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  ASSERT_EQ(::pipe(to_child), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the SMTP client, as nobody: connects, reports its port, waits
    ::close(to_parent[0]);
    ::close(to_child[1]);
    if (::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0) ::_exit(1);
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = estafette::testing::loopback("127.0.0.1", server_port);
    if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ::_exit(2);
    std::uint16_t port = local_port(c);
    if (::write(to_parent[1], &port, sizeof port) != sizeof port) ::_exit(3);
    char x;
    (void)!::read(to_child[0], &x, 1);  // until the parent closes its end
    ::_exit(0);
  }
  ::close(to_parent[1]);
  ::close(to_child[0]);
  std::uint16_t client_port = 0;
  ASSERT_EQ(::read(to_parent[0], &client_port, sizeof client_port),
            static_cast<ssize_t>(sizeof client_port));
  base::UniqueFd accepted(::accept(server.get(), nullptr, nullptr));
  Results r = run(rig_resolver(), only_ident(),
                  Endpoints{"127.0.0.1", client_port, "127.0.0.1", server_port});
  ::close(to_child[1]);
  ::close(to_parent[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(r.ident.status, IdentStatus::Ok);
  EXPECT_EQ(r.ident.user, "nobody");
  EXPECT_EQ(r.ident.os, "UNIX");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(IdentTest, ConnectionOwnedByUs) {
  std::uint16_t server_port = 0;
  base::UniqueFd server = listener(server_port);
  base::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = estafette::testing::loopback("127.0.0.1", server_port);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  base::UniqueFd accepted(::accept(server.get(), nullptr, nullptr));
  Results r = run(rig_resolver(), only_ident(),
                  Endpoints{"127.0.0.1", local_port(client.get()), "127.0.0.1", server_port});
  EXPECT_EQ(r.ident.status, IdentStatus::Ok);
  EXPECT_EQ(r.ident.user, "root");
}

TEST_F(IdentTest, NoSuchConnectionIsNoUser) {
  Results r = run(rig_resolver(), only_ident(), Endpoints{"127.0.0.1", 1, "127.0.0.1", 2});
  EXPECT_EQ(r.ident.status, IdentStatus::NoUser);
  EXPECT_EQ(r.ident.user, "");
}

TEST_F(IdentTest, NoIdentdIsRefusedAtOnce) {
  int port = estafette::testing::free_port();  // nothing listens there
  Results r = run(rig_resolver(), only_ident(static_cast<std::uint16_t>(port), 5000ms),
                  Endpoints{"127.0.0.1", 40000, "127.0.0.1", 25});
  EXPECT_EQ(r.ident.status, IdentStatus::Refused);
  EXPECT_LT(r.elapsed, 500ms);
}

TEST_F(IdentTest, SilentIdentdTimesOut) {
  std::uint16_t port = 0;
  base::UniqueFd mute = listener(port);  // the kernel completes the handshake; nobody answers
  Results r =
      run(rig_resolver(), only_ident(port, 300ms), Endpoints{"127.0.0.1", 40000, "127.0.0.1", 25});
  EXPECT_EQ(r.ident.status, IdentStatus::Timeout);
  EXPECT_GE(r.elapsed, 300ms);
  EXPECT_LT(r.elapsed, 1000ms);
}

// An identd of the test's own that answers a fixed text in pieces (what oidentd never does).
Results scripted_ident(dns::Resolver& resolver, event::Loop& loop, std::vector<std::string> pieces,
                       std::string* query) {
  std::uint16_t port = 0;
  base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = estafette::testing::loopback("127.0.0.1", 0);
  socklen_t len = sizeof a;
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(fd.get(), 1);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  std::thread peer([&] {
    base::UniqueFd c(::accept(fd.get(), nullptr, nullptr));
    char buf[100];
    ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
    if (n > 0) query->assign(buf, static_cast<std::size_t>(n));
    for (const auto& p : pieces) {
      (void)!::send(c.get(), p.data(), p.size(), MSG_NOSIGNAL);
      std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(200ms);
  });
  Results out;
  int calls = 0;
  ConnectionChecks checks(loop, resolver, only_ident(port, 2000ms),
                          Endpoints{"127.0.0.1", 6193, "127.0.0.1", 25}, [&] { ++calls; });
  checks.start();
  run_until(loop, [&] { return calls > 0; });
  peer.join();
  return checks.results();
}

TEST_F(IdentTest, ReplyInPiecesAndOverLongReply) {
  std::string query;
  Results r = scripted_ident(rig_resolver(), loop_,
                             {"6193", " , 25 : USE", "RID : UNIX : jo", "e\r", "\n"}, &query);
  EXPECT_EQ(query, "6193 , 25\r\n");
  EXPECT_EQ(r.ident.status, IdentStatus::Ok);
  EXPECT_EQ(r.ident.user, "joe");
  r = scripted_ident(rig_resolver(), loop_,
                     {"6193 , 25 : USERID : UNIX : ", std::string(980, 'x'), std::string(10, 'x')},
                     &query);
  EXPECT_EQ(r.ident.status, IdentStatus::Error);
  EXPECT_LT(r.elapsed, 1000ms);  // not the timeout: the cap ended it
  r = scripted_ident(rig_resolver(), loop_, {"6193 , 26 : USERID : UNIX : joe\r\n"}, &query);
  EXPECT_EQ(r.ident.status, IdentStatus::Error);  // another port pair
}

}  // namespace
}  // namespace estafette::checks
