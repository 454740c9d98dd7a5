// The destinations file: per-destination concurrency, rate and max_rcpt; errors with file:line;
// the `destinations` setting in estafette.conf and its check against MAXDELS.
#include "lib/config/destinations.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <string>

#include "lib/config/config.h"

namespace estafette::config {
namespace {

using namespace std::chrono_literals;

struct RateCase {
  std::string text;
  long long interval_ms;  // -1: invalid
};
class DestinationsRate : public ::testing::TestWithParam<RateCase> {};
TEST_P(DestinationsRate, Parses) {
  auto r = parse_rate(GetParam().text);
  if (GetParam().interval_ms < 0) {
    EXPECT_FALSE(r) << GetParam().text;
  } else {
    ASSERT_TRUE(r) << GetParam().text;
    EXPECT_EQ(r->count(), GetParam().interval_ms) << GetParam().text;
  }
}
INSTANTIATE_TEST_SUITE_P(
    Table, DestinationsRate,
    ::testing::Values(RateCase{"2/s", 500}, RateCase{"1/s", 1000}, RateCase{"1000/s", 1},
                      RateCase{"30/m", 2000}, RateCase{"1/m", 60000}, RateCase{"3/s", 333},
                      RateCase{"100/h", 36000}, RateCase{"1/h", 3600000}, RateCase{"0/s", -1},
                      RateCase{"1001/s", -1}, RateCase{"5", -1}, RateCase{"5/d", -1},
                      RateCase{"/s", -1}, RateCase{"-1/s", -1}, RateCase{"1.5/s", -1},
                      RateCase{"2/ s", -1}, RateCase{"", -1}));

TEST(Destinations, ParsesDomainsAndRoutes) {
  auto t = parse_destinations(
      "# destination  settings\n"
      "\n"
      "Example.COM   concurrency=2 rate=30/m max_rcpt=50   # the example site\n"
      "[192.0.2.10]:25\tconcurrency=1\n"
      "relay.example.net:587 rate=10/s\n"
      "[Smart.Example.net] max_rcpt=7\n"
      "[2001:db8::1]:2525 concurrency=3\n",
      "destinations");
  ASSERT_EQ(t.domains.size(), 1u);
  ASSERT_NE(t.for_domain("example.com"), nullptr);
  EXPECT_EQ(*t.for_domain("example.com"), (DestinationLimits{2, 2000ms, 50}));
  EXPECT_EQ(t.for_domain("Example.COM"), nullptr);  // callers pass lower-case domains
  EXPECT_EQ(t.where.at("example.com"), "destinations:3");
  ASSERT_EQ(t.routes.size(), 4u);
  // Keys as HostPort::to_string() gives a route, lower-cased.
  ASSERT_NE(t.for_route("192.0.2.10:25"), nullptr);
  EXPECT_EQ(*t.for_route("192.0.2.10:25"), (DestinationLimits{1, 0ms, 0}));
  EXPECT_EQ(*t.for_route("relay.example.net:587"), (DestinationLimits{0, 100ms, 0}));
  EXPECT_EQ(*t.for_route("smart.example.net:25"), (DestinationLimits{0, 0ms, 7}));
  EXPECT_EQ(*t.for_route("[2001:db8::1]:2525"), (DestinationLimits{3, 0ms, 0}));
  EXPECT_EQ(t.for_route("example.com:25"), nullptr);
  EXPECT_TRUE(parse_destinations("# nothing\n\n", "d").empty());
}

struct ErrorCase {
  std::string text;
  std::string error;  // expected in the message, with file:line
};
class DestinationsErrors : public ::testing::TestWithParam<ErrorCase> {};
TEST_P(DestinationsErrors, NameTheLine) {
  try {
    parse_destinations(GetParam().text, "dests");
    FAIL() << "accepted: " << GetParam().text;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().error), std::string::npos) << e.what();
  }
}
INSTANTIATE_TEST_SUITE_P(
    Table, DestinationsErrors,
    ::testing::Values(
        ErrorCase{"example.com\n", "dests:1: expected 'destination setting=value...'"},
        ErrorCase{"\n\nexample.com concurrency=0\n", "dests:3: concurrency: expected a positive"},
        ErrorCase{"example.com concurrency=two\n", "dests:1: concurrency: expected"},
        ErrorCase{"example.com rate=10\n", "dests:1: rate: expected N/s, N/m or N/h"},
        ErrorCase{"example.com rate=5000/s\n", "dests:1: rate:"},
        ErrorCase{"example.com max_rcpt=\n", "dests:1: max_rcpt: expected a positive"},
        ErrorCase{"example.com speed=3\n", "dests:1: unknown setting 'speed=3'"},
        ErrorCase{"example.com concurrency\n",
                  "dests:1: expected setting=value, not 'concurrency'"},
        ErrorCase{"exa/mple.com rate=1/s\n", "dests:1: bad domain 'exa/mple.com'"},
        ErrorCase{".example.com rate=1/s\n", "dests:1: bad domain '.example.com'"},
        ErrorCase{"[relay.test:25 rate=1/s\n", "dests:1: bad destination '[relay.test:25'"},
        ErrorCase{"relay.test:0 rate=1/s\n", "dests:1: bad destination"},
        ErrorCase{"a.test rate=1/s\nA.TEST concurrency=1\n",
                  "dests:2: duplicate destination 'a.test' (first at dests:1)"},
        ErrorCase{"[relay.test]:25 rate=1/s\nrelay.test:25 concurrency=1\n",
                  "dests:2: duplicate destination 'relay.test:25' (first at dests:1)"},
        ErrorCase{"a.test tls=DANE\n", "dests:1: tls: expected none, may, dane, encrypt"},
        ErrorCase{"a.test tls=\n", "dests:1: tls: expected"},
        ErrorCase{"a.test tls_match=\n", "dests:1: tls_match: expected NAME"},
        ErrorCase{"a.test tls_match=a.test,,b.test\n", "dests:1: tls_match: bad name ''"},
        ErrorCase{"a.test tls_match=a/b.test\n", "dests:1: tls_match: bad name 'a/b.test'"},
        ErrorCase{"a.test implicit_tls=1\n", "dests:1: implicit_tls: expected yes or no"}));

TEST(Destinations, TlsSettings) {
  auto t = parse_destinations(
      "bank.example tls=verify\n"
      "sts.example tls=mta-sts\n"
      "partner.example tls=secure tls_match=.Partner.example,mx.hoster.example\n"
      "smtp.example.net:465 implicit_tls=no tls=encrypt\n"
      "old.example concurrency=2\n",
      "dests");
  EXPECT_EQ(t.for_domain("bank.example")->tls, TlsLevel::Verify);
  EXPECT_EQ(t.for_domain("sts.example")->tls, TlsLevel::MtaSts);
  EXPECT_TRUE(t.for_domain("bank.example")->tls_match.empty());
  const auto* p = t.for_domain("partner.example");
  EXPECT_EQ(p->tls, TlsLevel::Secure);
  EXPECT_EQ(p->tls_match, (std::vector<std::string>{".partner.example", "mx.hoster.example"}));
  const auto* r = t.for_route("smtp.example.net:465");
  EXPECT_EQ(r->implicit_tls, false);
  EXPECT_EQ(r->tls, TlsLevel::Encrypt);
  EXPECT_FALSE(t.for_domain("old.example")->tls);  // tls_policy applies
  EXPECT_FALSE(t.for_domain("old.example")->implicit_tls);
}

TEST(Destinations, StrictestTlsIsTheStrongerLevel) {
  DestinationLimits may, verify, none;
  may.tls = TlsLevel::May;
  verify.tls = TlsLevel::Verify;
  EXPECT_EQ(strictest(may, verify).tls, TlsLevel::Verify);
  EXPECT_EQ(strictest(verify, may).tls, TlsLevel::Verify);
  EXPECT_EQ(strictest(none, may).tls, TlsLevel::May);
  EXPECT_FALSE(strictest(none, none).tls);
}

TEST(Destinations, TlsLevelNamesRoundTrip) {
  for (auto level : {TlsLevel::None, TlsLevel::May, TlsLevel::Dane, TlsLevel::Encrypt,
                     TlsLevel::DaneOnly, TlsLevel::Verify, TlsLevel::Secure, TlsLevel::MtaSts})
    EXPECT_EQ(parse_tls_level(to_string(level)), level);
  EXPECT_FALSE(parse_tls_level("MAY"));
  EXPECT_FALSE(parse_tls_level("dane_only"));
}

TEST(Destinations, StrictestOfTwo) {
  DestinationLimits a{2, 1000ms, 0}, b{0, 500ms, 10}, c{5, 0ms, 20};
  EXPECT_EQ(strictest(a, b), (DestinationLimits{2, 1000ms, 10}));
  EXPECT_EQ(strictest(b, c), (DestinationLimits{5, 500ms, 10}));
  EXPECT_EQ(strictest(a, DestinationLimits{}), a);
}

TEST(Destinations, ConfigSettingReadsTheFile) {
  char dir[] = "/tmp/estafette-dests-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::ofstream(std::string(dir) + "/destinations") << "a.test concurrency=3 rate=2/s\n";
  auto c = parse_config("MAXDELS = 20\ndestinations = destinations\n", "t.conf", dir);
  ASSERT_NE(c.destinations.for_domain("a.test"), nullptr);
  EXPECT_EQ(c.destinations.for_domain("a.test")->concurrency, 3u);
  EXPECT_TRUE(parse_config("", "t.conf", dir).destinations.empty());
  // A missing file: the setting's line; a bad line: the file's own line.
  try {
    parse_config("\ndestinations = nowhere\n", "t.conf", dir);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.conf:2: destinations"), std::string::npos) << e.what();
  }
  std::ofstream(std::string(dir) + "/destinations") << "a.test rate=2/s\nb.test concurrency=30\n";
  try {
    parse_config("MAXDELS = 20\ndestinations = destinations\n", "t.conf", dir);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/destinations:2: concurrency (30) exceeds MAXDELS (20)"),
              std::string::npos)
        << e.what();
  }
  std::string cleanup = std::string("rm -rf ") + dir;
  EXPECT_EQ(std::system(cleanup.c_str()), 0);
}

TEST(Destinations, TemplateExamplesParse) {
  std::ifstream in(std::string(ESTAFETTE_TEST_SRCDIR) + "/sysconf/destinations");
  ASSERT_TRUE(in) << "sysconf/destinations";
  std::string line, examples;
  while (std::getline(in, line))  // "#example.com  ..." is an example; "# text" a comment
    if (line.size() > 1 && line[0] == '#' && line[1] != ' ') examples += line.substr(1) + "\n";
  auto t = parse_destinations(examples, "sysconf/destinations");
  EXPECT_EQ(t.domains.size(), 2u);
  EXPECT_EQ(t.routes.size(), 2u);
  ASSERT_NE(t.for_domain("gmail.com"), nullptr);
  EXPECT_EQ(t.for_domain("gmail.com")->interval, 1000ms);
}

}  // namespace
}  // namespace estafette::config
