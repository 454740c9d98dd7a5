// Table tests for the config parsers: values, whole files, errors with file:line.
#include "lib/config/config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::config {
namespace {

struct DurationCase {
  std::string text;
  long long ms;  // -1: invalid
};
class ConfigDuration : public ::testing::TestWithParam<DurationCase> {};
TEST_P(ConfigDuration, Parses) {
  auto d = parse_duration(GetParam().text);
  if (GetParam().ms < 0) {
    EXPECT_FALSE(d) << GetParam().text;
  } else {
    ASSERT_TRUE(d) << GetParam().text;
    EXPECT_EQ(d->count(), GetParam().ms);
  }
}
INSTANTIATE_TEST_SUITE_P(
    Table, ConfigDuration,
    ::testing::Values(DurationCase{"30", 30000}, DurationCase{"30s", 30000},
                      DurationCase{"250ms", 250}, DurationCase{"5m", 300000},
                      DurationCase{"2h", 7200000}, DurationCase{"5d", 432000000},
                      DurationCase{"", -1}, DurationCase{"s", -1}, DurationCase{"5x", -1},
                      DurationCase{"-5s", -1}, DurationCase{"5 m", -1},
                      // Overflows of int64 milliseconds (found by fuzzing).
                      DurationCase{"9223372036854775807ms", 9223372036854775807LL},
                      DurationCase{"9223372036854776s", -1}, DurationCase{"876950927440754910", -1},
                      DurationCase{"106751991167301d", -1}));

struct SizeCase {
  std::string text;
  long long bytes;
};
class ConfigSize : public ::testing::TestWithParam<SizeCase> {};
TEST_P(ConfigSize, Parses) {
  auto s = parse_size(GetParam().text);
  if (GetParam().bytes < 0) {
    EXPECT_FALSE(s) << GetParam().text;
  } else {
    ASSERT_TRUE(s) << GetParam().text;
    EXPECT_EQ(static_cast<long long>(*s), GetParam().bytes);
  }
}
INSTANTIATE_TEST_SUITE_P(Table, ConfigSize,
                         ::testing::Values(SizeCase{"1000", 1000}, SizeCase{"64K", 65536},
                                           SizeCase{"10M", 10485760}, SizeCase{"1g", 1073741824},
                                           SizeCase{"K", -1}, SizeCase{"12Q", -1}, SizeCase{"", -1},
                                           // Sizes that do not fit in size_t (wrapped to 0).
                                           SizeCase{"8589934591G", 9223372035781033984LL},
                                           SizeCase{"17179869184G", -1},
                                           SizeCase{"18014398509481984K", -1}));

struct HostPortCase {
  std::string text;
  std::string host;  // empty: invalid
  int port;
};
class ConfigHostPort : public ::testing::TestWithParam<HostPortCase> {};
TEST_P(ConfigHostPort, Parses) {
  auto hp = parse_host_port(GetParam().text, 25);
  if (GetParam().host.empty()) {
    EXPECT_FALSE(hp) << GetParam().text;
    return;
  }
  ASSERT_TRUE(hp) << GetParam().text;
  EXPECT_EQ(hp->host, GetParam().host);
  EXPECT_EQ(hp->port, GetParam().port);
}
INSTANTIATE_TEST_SUITE_P(
    Table, ConfigHostPort,
    ::testing::Values(HostPortCase{"127.0.0.1:2525", "127.0.0.1", 2525},
                      HostPortCase{"mx.example", "mx.example", 25},
                      HostPortCase{"mx.example,587", "mx.example", 587},
                      HostPortCase{"[::1]:26", "::1", 26}, HostPortCase{"::1", "::1", 25},
                      HostPortCase{"[::1]", "::1", 25}, HostPortCase{"host:0", "", 0},
                      HostPortCase{"host:70000", "", 0}, HostPortCase{"host:", "", 0},
                      HostPortCase{"", "", 0}, HostPortCase{"[::1", "", 0}));

TEST(ConfigFile, EmbeddedDefaultIsValid) {
  auto c = load_config("");
  EXPECT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(c.listen[0].port, 2525);
  EXPECT_TRUE(c.is_local_domain("estafette.test"));
  EXPECT_TRUE(c.relay_clients.empty());  // the default relays nothing
  EXPECT_EQ(c.state_dir.front(), '/');
  EXPECT_EQ(c.maildir_root, c.state_dir + "/maildir");
  EXPECT_FALSE(c.routes.smarthost);
}

TEST(ConfigFile, SysconfTemplateParses) {
  // The shipped template, with its inline comments, is a valid configuration.
  auto c = load_config(std::string(ESTAFETTE_TEST_SRCDIR) + "/sysconf/estafette.conf");
  EXPECT_EQ(c.state_dir, "/var/spool/estafette");
  EXPECT_EQ(c.listen[0].port, 25);
  EXPECT_TRUE(c.is_local_domain("localhost"));
}

TEST(ConfigFile, ParsesSettings) {
  auto c = parse_config(
      "# comment\n"
      "hostname = mx.example.org\n"
      "state_dir = /var/spool/x\n"
      "listen = 127.0.0.1:55125, [::1]:55126\n"
      "local_domains = Example.ORG, .Sub.Example.NET\n"
      "relay_domains = domain1.grey domain2.grey\n"
      "MAXDELS = 250\nMAXHOST = 250\nMAXRCPT = 50\ninitial_host_concurrency = 8\n"
      "retry_base = 200ms\nqueue_lifetime = 1h\n"
      "smarthost = [127.0.0.1]:2527\n"
      "max_message_size = 64M\n"
      "esmtpd_processes = 4\nesmtpclient_processes = auto  # one per CPU\n",
      "test.conf", "/etc");
  EXPECT_EQ(c.hostname, "mx.example.org");
  EXPECT_EQ(c.state_dir, "/var/spool/x");
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[1].host, "::1");
  EXPECT_TRUE(c.is_local_domain("example.org"));
  EXPECT_FALSE(c.is_local_domain("x.example.org"));
  EXPECT_TRUE(c.is_local_domain("h1.foo.sub.example.net"));
  EXPECT_FALSE(c.is_local_domain("sub.example.net"));
  EXPECT_EQ(c.relay_domains.size(), 2u);
  EXPECT_EQ(c.max_deliveries, 250u);
  EXPECT_EQ(c.max_rcpt, 50u);
  EXPECT_EQ(c.initial_host_concurrency, 8u);
  EXPECT_EQ(c.retry_base.count(), 200);
  EXPECT_EQ(c.queue_lifetime.count(), 3600);
  ASSERT_TRUE(c.routes.smarthost);
  EXPECT_EQ(c.routes.smarthost->port, 2527);
  EXPECT_EQ(c.max_message_size, 64u << 20);
  EXPECT_EQ(c.esmtpd_processes, 4u);
  EXPECT_EQ(c.esmtpclient_processes, kAutoProcesses);
}

struct ErrorCase {
  std::string text;
  std::string expected;  // substring of the error, including file:line
};
class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};
TEST_P(ConfigErrors, ReportFileLineAndReason) {
  try {
    parse_config(GetParam().text, "bad.conf", "/tmp");
    FAIL() << "no error for: " << GetParam().text;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().expected), std::string::npos) << e.what();
  }
}
INSTANTIATE_TEST_SUITE_P(
    Table, ConfigErrors,
    ::testing::Values(ErrorCase{"listen = 127.0.0.1:99999\n", "bad.conf:1: listen"},
                      ErrorCase{"\n\nMAXDELS = lots\n", "bad.conf:3: MAXDELS"},
                      ErrorCase{"no equals sign\n", "bad.conf:1: expected 'key = value'"},
                      ErrorCase{"colour = blue\n", "bad.conf:1: unknown setting 'colour'"},
                      ErrorCase{"relay_clients = 10.0.0.0/33\n", "bad.conf:1: relay_clients"},
                      ErrorCase{"local_domains = bad/domain\n", "bad.conf:1: local_domains"},
                      ErrorCase{"retry_base = soon\n", "bad.conf:1: retry_base"},
                      ErrorCase{"queue_backend = rocksdb\n",
                                "bad.conf:1: queue_backend: expected segment or file"},
                      ErrorCase{"MAXDELS = 5\nMAXHOST = 10\n", "MAXHOST (10) exceeds MAXDELS"},
                      ErrorCase{"esmtproutes = /nonexistent/routes\n", "bad.conf:1: esmtproutes"},
                      ErrorCase{"syslog = maybe\n", "bad.conf:1: syslog"},
                      ErrorCase{"esmtpd_processes = 0\n", "bad.conf:1: esmtpd_processes"},
                      ErrorCase{"\nesmtpd_processes = many\n", "bad.conf:2: esmtpd_processes"},
                      ErrorCase{"esmtpd_processes = 257\n", "bad.conf:1: esmtpd_processes"},
                      ErrorCase{"esmtpd_processes = -1\n", "bad.conf:1: esmtpd_processes"},
                      ErrorCase{"esmtpclient_processes = 2x\n",
                                "bad.conf:1: esmtpclient_processes"},
                      ErrorCase{"user = a b\n", "bad.conf:1: user: bad user name 'a b'"},
                      ErrorCase{"\nuser = -x\n", "bad.conf:2: user: bad user name"},
                      ErrorCase{"user = x/y\n", "bad.conf:1: user: bad user name"},
                      ErrorCase{"\nwarntime = later\n", "bad.conf:2: warntime"},
                      ErrorCase{"queuetime = 0\n", "bad.conf:1: queuetime"},
                      // Issue 16: what check-config used to pass or explain badly.
                      ErrorCase{"relay_clients = 127.0.0.1/8\n",
                                "bad.conf:1: relay_clients: host bits set in '127.0.0.1/8' (the "
                                "network is 127.0.0.0/8)"},
                      ErrorCase{"relay_clients = ::1, 2001:db8::1/32\n",
                                "bad.conf:1: relay_clients: host bits set in '2001:db8::1/32' "
                                "(the network is 2001:db8::/32)"},
                      ErrorCase{"listen = [::1]:25, [0:0::1]:25\n",
                                "bad.conf:1: listen: address [0:0::1]:25 listed twice (as "
                                "[::1]:25)"},
                      ErrorCase{"listen = Mail.Test:25 mx, mail.test submission\n",
                                "bad.conf:1: listen: address mail.test:25 listed twice"},
                      ErrorCase{"log_level = loud\n",
                                "bad.conf:1: log_level: expected one of fatal, critical, error, "
                                "warning, notice, information, debug, trace"}));

// A setting given twice: the last one wins, with a warning naming both lines (Postfix's
// "overriding earlier entry"), also when the two lines use the setting's two names.
struct TwiceCase {
  std::string text;
  std::vector<std::string> warnings;
};
class ConfigGivenTwice : public ::testing::TestWithParam<TwiceCase> {};
TEST_P(ConfigGivenTwice, LastWinsWithAWarning) {
  auto c = parse_config(GetParam().text, "t.conf", "/tmp");
  EXPECT_EQ(c.warnings, GetParam().warnings);
}
INSTANTIATE_TEST_SUITE_P(
    Table, ConfigGivenTwice,
    ::testing::Values(
        TwiceCase{"MAXDELS = 10\nMAXHOST = 5\n", {}},
        TwiceCase{"MAXDELS = 10\n\n# c\nMAXDELS = 20\n",
                  {"t.conf:4: MAXDELS given again (the value at t.conf:1 is ignored)"}},
        TwiceCase{"queuetime = 1d\nqueue_lifetime = 2d\n",
                  {"t.conf:2: queue_lifetime given again (the value at t.conf:1 is ignored)"}},
        TwiceCase{"listen = 127.0.0.1:25\nlisten = 127.0.0.1:587\nlisten = 127.0.0.1:26\n",
                  {"t.conf:2: listen given again (the value at t.conf:1 is ignored)",
                   "t.conf:3: listen given again (the value at t.conf:2 is ignored)"}}));

TEST(ConfigGivenTwice, TheLastValueWins) {
  auto c = parse_config("MAXDELS = 10\nMAXDELS = 20\nuser = \n\nuser = nobody\n", "t.conf", "");
  EXPECT_EQ(c.max_deliveries, 20u);
  EXPECT_EQ(c.user, "nobody");
  EXPECT_EQ(c.given.at("user"), "t.conf:5");
  EXPECT_EQ(c.given.at("MAXDELS"), "t.conf:2");
  EXPECT_EQ(c.given.count("MAXHOST"), 0u);
}

// check-config --strict: settings that the other settings make pointless.
struct IgnoredCase {
  std::string text;
  std::vector<std::string> ignored;
};
class ConfigIgnoredSettings : public ::testing::TestWithParam<IgnoredCase> {};
TEST_P(ConfigIgnoredSettings, NamesTheLine) {
  EXPECT_EQ(ignored_settings(parse_config(GetParam().text, "t.conf", "/tmp")), GetParam().ignored);
}
INSTANTIATE_TEST_SUITE_P(
    Table, ConfigIgnoredSettings,
    ::testing::Values(
        IgnoredCase{"MAXDELS = 10\n", {}},
        IgnoredCase{"program_user = mail\n",
                    {"t.conf:1: program_user: ignored: allow_program_delivery = no"}},
        IgnoredCase{"program_user = mail\nallow_program_delivery = yes\n", {}},
        IgnoredCase{"milter_command_timeout = 5s\nprogram_timeout = 5s\n",
                    {"t.conf:1: milter_command_timeout: ignored: no milter in filters",
                     "t.conf:2: program_timeout: ignored: allow_program_delivery = no"}},
        IgnoredCase{"filters = milter:inet:8891@127.0.0.1\nmilter_command_timeout = 5s\n", {}},
        IgnoredCase{"filter_callback_warn_time = 1s\n",
                    {"t.conf:1: filter_callback_warn_time: ignored: no module in filters"}},
        IgnoredCase{"filters = module:/x.so\nfilter_callback_warn_time = 0\n", {}},
        IgnoredCase{"ident_timeout = 5s\n", {"t.conf:1: ident_timeout: ignored: ident_check = no"}},
        IgnoredCase{"ident_timeout = 5s\nident_check = yes\n", {}},
        IgnoredCase{"auth_fail_limit = 3\n",
                    {"t.conf:1: auth_fail_limit: ignored: no auth_backend"}},
        IgnoredCase{"\ndnsbl_threshold = 2\n",
                    {"t.conf:2: dnsbl_threshold: ignored: no dnsbl file (or an empty one)"}},
        IgnoredCase{"tls_report_contact = pm@example.org\n",
                    {"t.conf:1: tls_report_contact: ignored: tls_reporting = no"}},
        IgnoredCase{"mta_sts = no\nmta_sts_timeout = 10s\n",
                    {"t.conf:2: mta_sts_timeout: ignored: mta_sts = no"}},
        IgnoredCase{"hosted_mailboxes = /etc/hm\n",
                    {"t.conf:1: hosted_mailboxes: ignored: no hosteddomains"}},
        IgnoredCase{"local_mailboxes = system\nmaildir_root = /var/mail\n",
                    {"t.conf:2: maildir_root: ignored: local_mailboxes = system (~user/Maildir) "
                     "and no hosted_mailboxes"}},
        IgnoredCase{"local_mailboxes = existing\nmaildir_root = /var/mail\n", {}}));

TEST(ConfigUser, DefaultNoneAndSet) {
  EXPECT_EQ(load_config("").user, "");  // the embedded default stays as started
  EXPECT_EQ(parse_config("user = estafette\n", "x.conf", "/tmp").user, "estafette");
  EXPECT_EQ(parse_config("user = estafette\nuser =\n", "x.conf", "/tmp").user, "");
  // The installed template runs as the dedicated user.
  auto c = load_config(std::string(ESTAFETTE_TEST_SRCDIR) + "/sysconf/estafette.conf");
  EXPECT_EQ(c.user, "estafette");
}

TEST(ConfigDefaultPath, BuildTreeUsesTheEmbeddedDefault) {
  // Run from the build tree, never the installed config (scripts/run depends on it).
  EXPECT_EQ(default_config_path(), "");
}

TEST(ConfigFile, CourierNamesForDsnTimes) {
  auto c = parse_config("queuetime = 2d\nwarntime = 90m\n", "t.conf", "/tmp");
  EXPECT_EQ(c.queue_lifetime.count(), 2 * 86400);
  EXPECT_EQ(c.warn_time.count(), 90 * 60 * 1000);
  c = parse_config("warntime = 0\n", "t.conf", "/tmp");
  EXPECT_EQ(c.warn_time.count(), 0);  // never
  EXPECT_EQ(parse_config("", "t.conf", "/tmp").warn_time, std::chrono::hours(4));
}

struct ProcessesCase {
  std::string value;
  std::size_t configured;  // what parse_config stores (kAutoProcesses for auto)
  std::size_t on_1_cpu;    // what resolve_processes makes of it with 1 and 8 usable CPUs
  std::size_t on_8_cpus;
};
class ConfigProcesses : public ::testing::TestWithParam<ProcessesCase> {};
TEST_P(ConfigProcesses, ParsesAndResolves) {
  for (const char* key : {"esmtpd_processes", "esmtpclient_processes"}) {
    auto c = parse_config(std::string(key) + " = " + GetParam().value + "\n", "p.conf", "/tmp");
    auto configured =
        std::string(key) == "esmtpd_processes" ? c.esmtpd_processes : c.esmtpclient_processes;
    EXPECT_EQ(configured, GetParam().configured) << key << " = " << GetParam().value;
    EXPECT_EQ(resolve_processes(configured, 1), GetParam().on_1_cpu);
    EXPECT_EQ(resolve_processes(configured, 8), GetParam().on_8_cpus);
  }
}
INSTANTIATE_TEST_SUITE_P(Table, ConfigProcesses,
                         ::testing::Values(ProcessesCase{"auto", kAutoProcesses, 1, 8},
                                           ProcessesCase{"AUTO", kAutoProcesses, 1, 8},
                                           ProcessesCase{"1", 1, 1, 1}, ProcessesCase{"2", 2, 2, 2},
                                           ProcessesCase{"256", 256, 256, 256}));

TEST(ConfigProcesses, DefaultIsAuto) {
  auto c = load_config("");
  EXPECT_EQ(c.esmtpd_processes, kAutoProcesses);
  EXPECT_EQ(c.esmtpclient_processes, kAutoProcesses);
  EXPECT_EQ(resolve_processes(kAutoProcesses, 0), 1u);  // no CPU count: one process
  EXPECT_EQ(resolve_processes(kAutoProcesses, 1000), kMaxProcesses);
}

// estafette-local waits on fsync: auto is 4 per CPU, 4 to 32; a number is taken as it is.
TEST(ConfigProcesses, LocalAutoIsFourPerCpuFromFourToThirtyTwo) {
  auto c = load_config("");
  EXPECT_EQ(c.local_processes, kAutoProcesses);
  EXPECT_EQ(resolve_local_processes(kAutoProcesses, 0), 4u);
  EXPECT_EQ(resolve_local_processes(kAutoProcesses, 1), 4u);
  EXPECT_EQ(resolve_local_processes(kAutoProcesses, 2), 8u);
  EXPECT_EQ(resolve_local_processes(kAutoProcesses, 8), 32u);
  EXPECT_EQ(resolve_local_processes(kAutoProcesses, 64), 32u);
  c = parse_config("local_processes = 3\n", "p.conf", "/tmp");
  EXPECT_EQ(resolve_local_processes(c.local_processes, 2), 3u);
}

struct ShareCase {
  std::size_t max_sessions;
  std::size_t processes;
  std::size_t share;
};
class ConfigSessionShare : public ::testing::TestWithParam<ShareCase> {};
TEST_P(ConfigSessionShare, NeverExceedsTheTotal) {
  const auto& p = GetParam();
  EXPECT_EQ(session_share(p.max_sessions, p.processes), p.share);
  if (p.max_sessions >= p.processes) {
    EXPECT_LE(p.share * p.processes, p.max_sessions);
  }
}
INSTANTIATE_TEST_SUITE_P(Table, ConfigSessionShare,
                         ::testing::Values(ShareCase{2000, 1, 2000}, ShareCase{2000, 2, 1000},
                                           ShareCase{1001, 2, 500}, ShareCase{10, 3, 3},
                                           ShareCase{1, 4, 1}, ShareCase{5, 0, 5}));

TEST(ConfigRoutes, LookupOrder) {
  Routes r;
  parse_routes(
      "example.com: mx1.example.net\n"
      ".example.com: [127.0.0.1]:2600\n"
      "# comment\n"
      "domain1.grey: 127.0.0.1,55225\n"
      ": smarthost.example:587\n",
      "routes", r);
  EXPECT_EQ(r.lookup("example.com")->host, "mx1.example.net");
  EXPECT_EQ(r.lookup("a.b.example.com")->port, 2600);
  EXPECT_EQ(r.lookup("domain1.grey")->port, 55225);
  EXPECT_EQ(r.lookup("other.org")->host, "smarthost.example");
  EXPECT_EQ(r.lookup("other.org")->port, 587);
}

TEST(ConfigRoutes, MissingColonIsNamed) {
  // The colon of "host:port" must not pass for the one after the domain.
  struct Case {
    std::string text, error;
  } cases[] = {
      {"deferred.test 127.0.0.1:3399\n",
       "esmtproutes:1: expected 'domain: host[,port]' (no ':' after 'deferred.test')"},
      {"ok.test: host\n.sub.test\t127.0.0.1:25\n",
       "esmtproutes:2: expected 'domain: host[,port]' (no ':' after '.sub.test')"},
      {"deferred.test 127.0.0.1\n", "esmtproutes:1: expected 'domain: host[,port]'"},
  };
  for (const auto& c : cases) {
    Routes r;
    try {
      parse_routes(c.text, "esmtproutes", r);
      ADD_FAILURE() << c.text;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.what(), c.error);
    }
  }
}

TEST(ConfigRoutes, DomainGivenTwiceWarns) {
  Routes r;
  std::vector<std::string> warnings;
  parse_routes("a.test: h1\n: s1\nA.test: h2\n.a.test: h3\n: s2\n", "esmtproutes", r, &warnings);
  EXPECT_EQ(r.lookup("a.test")->host, "h2");
  EXPECT_EQ(r.smarthost->host, "s2");
  EXPECT_EQ(warnings,
            (std::vector<std::string>{
                "esmtproutes:3: 'a.test' given again (the route at esmtproutes:1 is ignored)",
                "esmtproutes:5: '' given again (the route at esmtproutes:2 is ignored)"}));
}

TEST(ConfigRoutes, ErrorsNameTheLine) {
  Routes r;
  try {
    parse_routes("ok.example: host\nbroken line\n", "esmtproutes", r);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("esmtproutes:2:"), std::string::npos) << e.what();
  }
}

struct CidrCase {
  std::string net;
  std::string ip;
  bool match;
};
class ConfigCidr : public ::testing::TestWithParam<CidrCase> {};
TEST_P(ConfigCidr, Matches) {
  auto n = Cidr::parse(GetParam().net);
  ASSERT_TRUE(n) << GetParam().net;
  EXPECT_EQ(n->contains(GetParam().ip), GetParam().match) << GetParam().net << " " << GetParam().ip;
}
INSTANTIATE_TEST_SUITE_P(Table, ConfigCidr,
                         ::testing::Values(CidrCase{"127.0.0.0/8", "127.0.0.2", true},
                                           CidrCase{"127.0.0.0/8", "128.0.0.1", false},
                                           CidrCase{"10.1.2.0/23", "10.1.3.255", true},
                                           CidrCase{"10.1.2.0/23", "10.1.4.0", false},
                                           CidrCase{"0.0.0.0/0", "8.8.8.8", true},
                                           CidrCase{"::1", "::1", true},
                                           CidrCase{"::1", "::2", false},
                                           CidrCase{"2001:db8::/32", "2001:db8:1::5", true},
                                           CidrCase{"127.0.0.0/8", "::ffff:127.0.0.1", true},
                                           CidrCase{"127.0.0.0/8", "not-an-ip", false},
                                           CidrCase{"192.168.1.7", "192.168.1.7", true}));

struct HostBitsCase {
  std::string net;
  std::string network;  // Cidr::network()
  bool host_bits;
};
class ConfigCidrHostBits : public ::testing::TestWithParam<HostBitsCase> {};
TEST_P(ConfigCidrHostBits, NetworkClearsThem) {
  auto n = Cidr::parse(GetParam().net);
  ASSERT_TRUE(n) << GetParam().net;
  EXPECT_EQ(n->network().to_string(), GetParam().network);
  EXPECT_EQ(n->has_host_bits(), GetParam().host_bits);
  EXPECT_EQ(host_bits_error(*n, GetParam().net).empty(), !GetParam().host_bits);
}
INSTANTIATE_TEST_SUITE_P(
    Table, ConfigCidrHostBits,
    ::testing::Values(HostBitsCase{"127.0.0.0/8", "127.0.0.0/8", false},
                      HostBitsCase{"127.0.0.1/8", "127.0.0.0/8", true},
                      HostBitsCase{"10.1.3.0/23", "10.1.2.0/23", true},
                      HostBitsCase{"10.1.2.0/23", "10.1.2.0/23", false},
                      HostBitsCase{"192.168.1.7", "192.168.1.7/32", false},
                      HostBitsCase{"1.2.3.4/0", "0.0.0.0/0", true},
                      HostBitsCase{"::1", "::1/128", false}, HostBitsCase{"::1/64", "::/64", true},
                      HostBitsCase{"2001:db8::/32", "2001:db8::/32", false},
                      HostBitsCase{"2001:db8:0:1::/63", "2001:db8::/63", true}));

TEST(ConfigCidr, RejectsMalformed) {
  for (const char* bad : {"", "300.1.1.1/8", "1.2.3.4/", "1.2.3.4/33", "::1/129", "x/8"})
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
}

// listen: addresses with roles (issue 14), mx when none is given, so older values mean the same.
struct ListenCase {
  std::string value;
  std::string parsed;  // each Listener's to_string() then ";", or "error: <reason part>"
};
class ConfigListen : public ::testing::TestWithParam<ListenCase> {};

TEST_P(ConfigListen, Parses) {
  const auto& p = GetParam();
  std::string got;
  try {
    for (const auto& l : parse_listen(p.value)) got += l.to_string() + ";";
  } catch (const std::invalid_argument& e) {
    got = std::string("error: ") + e.what();
  }
  if (p.parsed.starts_with("error: "))
    EXPECT_TRUE(got.starts_with(p.parsed)) << p.value << " -> " << got;
  else
    EXPECT_EQ(got, p.parsed) << p.value;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigListen,
    ::testing::Values(
        ListenCase{"127.0.0.1:2525", "127.0.0.1:2525 mx;"},
        ListenCase{"127.0.0.1:2525, [::1]:2525", "127.0.0.1:2525 mx;[::1]:2525 mx;"},
        ListenCase{"127.0.0.1", "127.0.0.1:25 mx;"},
        ListenCase{"127.0.0.1:25 mx, [::1]:25 mx, 127.0.0.1:587 submission, "
                   "127.0.0.1:465 submissions",
                   "127.0.0.1:25 mx;[::1]:25 mx;127.0.0.1:587 submission;127.0.0.1:465 "
                   "submissions;"},
        ListenCase{"127.0.0.1:587 submission 127.0.0.1:25",
                   "127.0.0.1:587 submission;127.0.0.1:25 mx;"},
        ListenCase{"  127.0.0.1:465   submissions  ", "127.0.0.1:465 submissions;"},
        ListenCase{"[::1]:465 submissions,[::1]:25", "[::1]:465 submissions;[::1]:25 mx;"},
        ListenCase{"", "error: at least one address"},
        ListenCase{"mx", "error: role 'mx' without an address"},
        ListenCase{"submission 127.0.0.1:587", "error: role 'submission' without"},
        ListenCase{"127.0.0.1:25 mx submission", "error: two roles for 127.0.0.1:25"},
        ListenCase{"127.0.0.1:25 mx mx", "error: two roles"},
        ListenCase{"127.0.0.1:25, 127.0.0.1:25 submission", "error: address 127.0.0.1:25 listed"},
        ListenCase{"127.0.0.1:99999 mx", "error: bad address '127.0.0.1:99999'"},
        // Roles are lower-case words; anything else is an address (a host name), as before.
        ListenCase{"127.0.0.1:25 MX", "127.0.0.1:25 mx;MX:25 mx;"},
        // Options after the role (issue 14): tls_required, auth.
        ListenCase{"127.0.0.1:25 mx tls_required auth, 127.0.0.1:587 submission tls_required",
                   "127.0.0.1:25 mx tls_required auth;127.0.0.1:587 submission tls_required;"},
        ListenCase{"127.0.0.1:25 auth", "127.0.0.1:25 mx auth;"},
        ListenCase{"auth 127.0.0.1:25", "error: option 'auth' without an address"},
        ListenCase{"127.0.0.1:25 auth auth", "error: option 'auth' twice for 127.0.0.1:25"},
        ListenCase{"127.0.0.1:25 auth mx", "error: two roles for 127.0.0.1:25"}));

TEST(ConfigFile, ListenRolesReachTheConfig) {
  auto c =
      parse_config("listen = 127.0.0.1:25, 127.0.0.1:587 submission\nauth_backend = file:passwd\n",
                   "t.conf", "/etc");
  EXPECT_EQ(c.auth_backend, "file:/etc/passwd");
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].role, smtp::ListenerRole::Mx);
  EXPECT_EQ(c.listen[1].role, smtp::ListenerRole::Submission);
  EXPECT_EQ(c.listen[1].port, 587);
}

}  // namespace
}  // namespace estafette::config
