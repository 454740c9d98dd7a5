// Table tests for the smtpaccess rules, the dnsbl file and the connection-check settings.
#include "lib/config/access.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "lib/config/config.h"

namespace estafette::config {
namespace {

const char* kRules =
    "# network action\n"
    "127.0.0.0/8        allow,RELAYCLIENT\n"
    "127.0.0.2          deny   You are listed here\n"
    "127.0.0.3/32       deny\n"
    "10.1               allow,dnsbl=off,ident=off\n"
    "10.1.2             allow,rdns=off,BOFHCHECKDNS=on\n"
    "2001:db8::/32      allow,RELAYCLIENT,ident=on\n";

struct LookupCase {
  std::string ip;
  std::string expect;  // "none", or allow/deny + flags
};
class AccessLookup : public ::testing::TestWithParam<LookupCase> {};

std::string Describe(const AccessRule* r) {
  if (!r) return "none";
  std::string out = r->allow ? "allow" : "deny";
  if (r->relay_client) out += ",RELAYCLIENT";
  auto flag = [&](const char* name, const std::optional<bool>& v) {
    if (v) out += std::string(",") + name + (*v ? "=on" : "=off");
  };
  flag("rdns", r->rdns);
  flag("dnsbl", r->dnsbl);
  flag("ident", r->ident);
  flag("BOFHCHECKDNS", r->sender_dns);
  if (!r->reply.empty()) out += " " + r->reply;
  return out;
}

TEST_P(AccessLookup, MostSpecificRuleWins) {
  auto rules = AccessRules::parse(kRules, "smtpaccess");
  EXPECT_EQ(rules.size(), 6u);
  EXPECT_EQ(Describe(rules.lookup(GetParam().ip)), GetParam().expect) << GetParam().ip;
}
INSTANTIATE_TEST_SUITE_P(Table, AccessLookup,
                         ::testing::Values(LookupCase{"127.0.0.1", "allow,RELAYCLIENT"},
                                           LookupCase{"127.0.0.2", "deny You are listed here"},
                                           LookupCase{"127.0.0.3", "deny"},
                                           LookupCase{"::ffff:127.0.0.3", "deny"},
                                           LookupCase{"10.1.9.9", "allow,dnsbl=off,ident=off"},
                                           LookupCase{"10.1.2.3", "allow,rdns=off,BOFHCHECKDNS=on"},
                                           LookupCase{"10.2.0.1", "none"},
                                           LookupCase{"2001:db8::25", "allow,RELAYCLIENT,ident=on"},
                                           LookupCase{"2001:db9::1", "none"},
                                           LookupCase{"not-an-ip", "none"}));

struct BadRule {
  std::string text;
  std::string expected;
};
class AccessErrors : public ::testing::TestWithParam<BadRule> {};
TEST_P(AccessErrors, NameTheLine) {
  try {
    AccessRules::parse(GetParam().text, "smtpaccess");
    FAIL() << "no error for: " << GetParam().text;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().expected), std::string::npos) << e.what();
  }
}
INSTANTIATE_TEST_SUITE_P(
    Table, AccessErrors,
    ::testing::Values(BadRule{"127.0.0.1\n", "smtpaccess:1: expected 'network action"},
                      BadRule{"\n300.0.0.1 allow\n", "smtpaccess:2: bad network '300.0.0.1'"},
                      BadRule{"10.0.0.0/33 allow\n", "smtpaccess:1: bad network"},
                      BadRule{"10.0.0.1/8 allow\n",
                              "smtpaccess:1: host bits set in '10.0.0.1/8' (the network is "
                              "10.0.0.0/8)"},
                      BadRule{"10.0.0.1 permit\n", "smtpaccess:1: expected allow or deny"},
                      BadRule{"10.0.0.1 allow,NOSPAM\n", "smtpaccess:1: unknown option 'NOSPAM'"},
                      BadRule{"10.0.0.1 allow,dnsbl=maybe\n", "expected dnsbl=on or =off"},
                      BadRule{"10.0.0.1 allow,dnsbl\n", "expected dnsbl=on or =off"},
                      BadRule{"10.0.0.1 allow Welcome\n", "a reply text is only for deny"}));

TEST(ConfigDnsbl, ParsesListsWithFiltersWeightsAndReplies) {
  auto lists = parse_dnsbl(
      "# zone filter weight reply\n"
      "bl1.test  127.0.0.2        2  *\n"
      "BL2.test  -                1  Listed by bl2, see http://bl2.test/\n"
      "allow.test 127.0.[0..255].[1..3] -3\n",
      "dnsbl");
  ASSERT_EQ(lists.size(), 3u);
  EXPECT_EQ(lists[0].zone, "bl1.test");
  EXPECT_EQ(lists[0].filter, "127.0.0.2");
  EXPECT_EQ(lists[0].weight, 2);
  EXPECT_EQ(lists[0].reply, "*");
  EXPECT_EQ(lists[1].zone, "bl2.test");
  EXPECT_EQ(lists[1].filter, "");
  EXPECT_EQ(lists[1].reply, "Listed by bl2, see http://bl2.test/");
  EXPECT_EQ(lists[2].weight, -3);
  EXPECT_EQ(lists[2].reply, "");
  EXPECT_EQ(lists[2].where, "dnsbl:4");
}

TEST(ConfigDnsbl, ErrorsNameTheLine) {
  EXPECT_THROW(parse_dnsbl("bl1.test 127.0.0.2\n", "dnsbl"), ConfigError);
  try {
    parse_dnsbl("\nbl1.test - heavy\n", "dnsbl");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("dnsbl:2: bad weight 'heavy'"), std::string::npos);
  }
  EXPECT_THROW(parse_dnsbl("bl/1 - 1\n", "dnsbl"), ConfigError);
  EXPECT_THROW(parse_dnsbl("bl1.test - 0\n", "dnsbl"), ConfigError);
}

TEST(ConfigChecks, SettingsAndFiles) {
  char dir[] = "/tmp/estafette-access-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::ofstream(std::string(dir) + "/dnsbl") << "bl1.test 127.0.0.2 1 *\nbl2.test - 1\n";
  std::ofstream(std::string(dir) + "/smtpaccess") << "127.0.0.2 deny\n";
  auto c = parse_config(
      "rdns_check = no\ndnsbl = dnsbl\ndnsbl_threshold = 2\ndnsbl_action = reject_greeting\n"
      "ident_check = yes\nident_timeout = 3s\ngreet_wait = 500ms\nBOFHCHECKDNS = no\n"
      "smtpaccess = smtpaccess\nMAXDAEMONS = 300\nMAXPERIP = 4\nMAXPERC = 0\n"
      "dns_cache_size = 0\n",
      "t.conf", dir);
  EXPECT_FALSE(c.rdns_check);
  ASSERT_EQ(c.dnsbl.size(), 2u);
  EXPECT_EQ(c.dnsbl[1].where, std::string(dir) + "/dnsbl:2");
  EXPECT_EQ(c.dnsbl_threshold, 2);
  EXPECT_EQ(c.dnsbl_action, DnsblAction::RejectGreeting);
  EXPECT_TRUE(c.ident_check);
  EXPECT_EQ(c.ident_timeout.count(), 3000);
  EXPECT_EQ(c.greet_wait.count(), 500);
  EXPECT_FALSE(c.sender_dns_check);
  ASSERT_NE(c.access.lookup("127.0.0.2"), nullptr);
  EXPECT_FALSE(c.access.lookup("127.0.0.2")->allow);
  EXPECT_EQ(c.max_sessions, 300u);
  EXPECT_EQ(c.max_per_ip, 4u);
  EXPECT_EQ(c.max_per_c, 0u);
  EXPECT_EQ(c.dns_cache_size, 0u);
  // A missing file is named with the line of the setting; a bad line inside with its own.
  try {
    parse_config("\nsmtpaccess = nowhere\n", "t.conf", dir);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.conf:2: smtpaccess"), std::string::npos) << e.what();
  }
  std::ofstream(std::string(dir) + "/smtpaccess") << "127.0.0.2 block\n";
  try {
    parse_config("smtpaccess = smtpaccess\n", "t.conf", dir);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/smtpaccess:1: expected allow or deny"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(parse_config("dnsbl_action = drop\n", "t.conf", dir), ConfigError);
  EXPECT_THROW(parse_config("dnsbl_threshold = 0\n", "t.conf", dir), ConfigError);
  std::string cleanup = std::string("rm -rf ") + dir;
  EXPECT_EQ(std::system(cleanup.c_str()), 0);
}

TEST(ConfigChecks, Defaults) {
  Config c;
  EXPECT_TRUE(c.rdns_check);
  EXPECT_FALSE(c.ident_check);
  EXPECT_TRUE(c.sender_dns_check);
  EXPECT_EQ(c.greet_wait.count(), 0);
  EXPECT_EQ(c.dnsbl_action, DnsblAction::RejectRcpt);
  auto embedded = load_config("");
  EXPECT_FALSE(embedded.rdns_check);  // runs on machines without DNS
  EXPECT_FALSE(embedded.sender_dns_check);
}

}  // namespace
}  // namespace estafette::config
