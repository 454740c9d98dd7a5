// estafette check-config: a good config and its files pass; each kind of error is reported as
// file:line: reason, several at once where esmtpd's start checks find several.
#include "admin/check_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace estafette::admin {
namespace {

namespace fs = std::filesystem;

struct Case {
  const char* name;
  std::string config;                        // "DIR" stands for the case's directory
  std::map<std::string, std::string> files;  // other files in that directory
  std::vector<std::string> errors;           // each a substring of one error, in order ("DIR"
                                             // as above); empty: OK
};

std::string replace_dir(std::string text, const std::string& dir) {
  for (auto at = text.find("DIR"); at != std::string::npos; at = text.find("DIR", at + dir.size()))
    text.replace(at, 3, dir);
  return text;
}

class CheckConfig : public ::testing::TestWithParam<Case> {};

TEST_P(CheckConfig, ReportsEveryErrorWithFileAndLine) {
  const Case& c = GetParam();
  fs::path dir = fs::temp_directory_path() / ("estafette-check-config-" + std::string(c.name) +
                                              "-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const auto& [name, text] : c.files) std::ofstream(dir / name) << text;
  std::string conf = (dir / "estafette.conf").string();
  std::ofstream(conf) << replace_dir(c.config, dir.string());
  auto r = check_config(conf);
  EXPECT_EQ(r.source, conf);
  ASSERT_EQ(r.errors.size(), c.errors.size()) << (r.errors.empty() ? "" : r.errors[0]);
  for (std::size_t i = 0; i < c.errors.size(); ++i)
    EXPECT_NE(r.errors[i].find(replace_dir(c.errors[i], dir.string())), std::string::npos)
        << r.errors[i] << " lacks " << c.errors[i];
  fs::remove_all(dir);
}

const std::string kBadAbi =
    std::string(ESTAFETTE_TEST_BUILDDIR) + "/tests/unit/filters/modules/bad_abi.so";

INSTANTIATE_TEST_SUITE_P(
    Table, CheckConfig,
    ::testing::Values(
        Case{"Good",
             "state_dir = DIR/state\nesmtproutes = DIR/routes\ndnsbl = DIR/dnsbl\n"
             "smtpaccess = DIR/access\nfilters = milter:inet:8891@127.0.0.1\n",
             {{"routes", "dead.test: 127.0.0.1,9\n"},
              {"dnsbl", "bl1.test 127.0.0.[2..11] 1\n"},
              {"access", "127.0.0.0/8 allow,RELAYCLIENT\n"}},
             {}},
        Case{"LogDirectoryMissing",
             "state_dir = DIR/state\nlog_file = DIR/no/such/dir/estafette.log\n",
             {},
             {"DIR/estafette.conf:2: log_file: no directory DIR/no/such/dir"}},
        Case{"LogFileInAnExistingDirectory",
             "state_dir = DIR/state\nlog_file = DIR/estafette.log\n",
             {},
             {}},
        Case{"BadKey",
             "state_dir = DIR/state\n# a comment\nMAXHOST = many\n",
             {},
             {"DIR/estafette.conf:3: MAXHOST"}},
        Case{"BadRoute",
             "esmtproutes = DIR/routes\n",
             {{"routes", "ok.test: 127.0.0.1,9\n!!: x\n"}},
             {"DIR/routes:2:"}},
        Case{"BadAccessLine",
             "smtpaccess = DIR/access\n",
             {{"access", "127.0.0.0/8 allow\n10.0.0.0/99 deny\n"}},
             {"DIR/access:2:"}},
        Case{"TwoBadAnswerFilters",
             "dnsbl = DIR/dnsbl\n",
             {{"dnsbl", "bl1.test 127.0.0.2 1\nbl2.test 127.0.0.[x] 1\n# c\nbl3.test 300.1 2\n"}},
             {"DIR/dnsbl:2: bad answer filter '127.0.0.[x]'", "DIR/dnsbl:4: bad answer filter"}},
        Case{"BadMilterAndMissingModule",
             "dnsbl = DIR/dnsbl\nfilters = milter:nonsense:8891, module:DIR/missing.so\n",
             {{"dnsbl", "bl1.test bad 1\n"}},
             {"DIR/dnsbl:1: bad answer filter", "DIR/estafette.conf:2: filters: milter 'nonsense",
              "DIR/estafette.conf:2: filters:"}},
        Case{"GoodSenderLoginMap",
             "sender_login_map = DIR/senders\n",
             {{"senders", "# who sends as whom\nalice@x.test alice\n@y.test bob, carol\n"}},
             {}},
        Case{"BadSenderLoginMap",
             "sender_login_map = DIR/senders\n",
             {{"senders", "alice@x.test alice\nalice bob\n"}},
             {"DIR/senders:2: a key is user@domain or @domain"}},
        Case{"GoodPasswdFileWithScram",
             "auth_backend = file:DIR/passwd\n",
             {{"passwd",
               "sc:{SCRAM-SHA-256}4096,QW7KavEx8BfYhBmI9aerLA==,Blp1CJC+nY9hLV7Ly785bfDzlQyw+"
               "GxUULydK6tY2gE=,syfkt2vS8YTjbFsDyibdvVN2vHP0N1EFVCu6gBpLMSg=\n"}},
             {}},
        Case{"ScramIterationsTooLow",  // the line named, the secret not echoed
             "auth_backend = file:DIR/passwd\n",
             {{"passwd",
               "# users\nsc:{SCRAM-SHA-256}1000,QW7KavEx8BfYhBmI9aerLA==,Blp1CJC+nY9hLV7Ly785bf"
               "DzlQyw+GxUULydK6tY2gE=,syfkt2vS8YTjbFsDyibdvVN2vHP0N1EFVCu6gBpLMSg=\n"}},
             {"auth_backend: DIR/passwd: line 2: SCRAM-SHA-256 iteration count below 4096"}},
        Case{"MissingSenderLoginMap",
             "sender_login_map = DIR/nothing\n",
             {},
             {"DIR/nothing: No such file or directory"}},
        Case{"MissingUserNamesItsLine",
             "state_dir = DIR/state\n# the unprivileged user\nuser = no-such-user-estafette\n",
             {},
             {"DIR/estafette.conf:3: user: no such user 'no-such-user-estafette'"}},
        Case{"HostedMailboxNotHosted",
             "hosteddomains = DIR/hd\nhosted_mailboxes = DIR/hm\n",
             {{"hd", "hosted.test\n"}, {"hm", "a@hosted.test: a\nb@other.test: b\n"}},
             {"DIR/hm:2: 'b@other.test': other.test is not in hosteddomains"}},
        Case{"RelayClientsHostBits",
             "relay_clients = 127.0.0.1/8\n",
             {},
             {"DIR/estafette.conf:1: relay_clients: host bits set in '127.0.0.1/8'"}},
        Case{"RouteWithoutColon",
             "esmtproutes = DIR/routes\n",
             {{"routes", "deferred.test 127.0.0.1:3399\n"}},
             {"DIR/routes:1: expected 'domain: host[,port]' (no ':' after 'deferred.test')"}},
        Case{"ModuleThatDoesNotLoad",
             "filters = module:" + kBadAbi + "\n",
             {},
             {"DIR/estafette.conf:1: filters:"}}),
    [](const auto& info) { return std::string(info.param.name); });

// Warnings: always what was accepted but not as written (a setting given twice); with strict,
// also what has no effect (settings, alias targets without a mailbox, ignored lines).
TEST(CheckConfigWarnings, StrictAddsWhatHasNoEffect) {
  fs::path dir =
      fs::temp_directory_path() / ("estafette-check-config-strict-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "aliases") << "postmaster: root\n";
  std::string conf = (dir / "estafette.conf").string();
  std::ofstream(conf) << "state_dir = " << (dir / "state").string()
                      << "\nlocal_domains = local.test\nlocal_mailboxes = system\n"
                         "aliases = aliases\nMAXDELS = 10\nMAXDELS = 20\nprogram_user = mail\n";
  auto plain = check_config(conf);
  EXPECT_TRUE(plain.errors.empty());
  EXPECT_EQ(plain.warnings,
            (std::vector<std::string>{conf + ":6: MAXDELS given again (the value at " + conf +
                                      ":5 is ignored)"}));
  auto strict = check_config(conf, true);
  EXPECT_TRUE(strict.errors.empty());
  EXPECT_EQ(strict.warnings,
            (std::vector<std::string>{
                conf + ":6: MAXDELS given again (the value at " + conf + ":5 is ignored)",
                conf + ":7: program_user: ignored: allow_program_delivery = no",
                (dir / "aliases").string() +
                    ":1: postmaster: root@local.test has no mailbox (local_mailboxes = system: no "
                    "such user, or root, which never has one)"}));
  fs::remove_all(dir);
}

// esmtproutes' own smarthost line (": host") loses to the smarthost setting: a warning.
TEST(CheckConfigWarnings, SmarthostOverridesTheRoutesLine) {
  fs::path dir = fs::temp_directory_path() /
                 ("estafette-check-config-smarthost-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "routes") << "a.test: 127.0.0.1:2600\n: 127.0.0.1:2601\n";
  std::string conf = (dir / "estafette.conf").string();
  std::ofstream(conf) << "state_dir = " << (dir / "state").string()
                      << "\nesmtproutes = routes\nsmarthost = 127.0.0.1:2602\n";
  auto r = check_config(conf);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.warnings, (std::vector<std::string>{
                            conf + ":3: smarthost overrides the route for all other domains in " +
                            (dir / "routes").string()}));
  fs::remove_all(dir);
}

TEST(CheckConfigDefault, EmbeddedDefaultIsGood) {
  auto r = check_config("");
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.source, "(embedded default)");
}

TEST(CheckConfigDefault, MissingFileIsAnError) {
  auto r = check_config("/nonexistent/estafette.conf");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("/nonexistent/estafette.conf"), std::string::npos) << r.errors[0];
}

}  // namespace
}  // namespace estafette::admin
