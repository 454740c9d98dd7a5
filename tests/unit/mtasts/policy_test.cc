// lib/mtasts/policy.h: the TXT record grammar (RFC 8461 3.1), the policy file (3.2) and MX
// pattern matching (4.1), as tables.
#include "lib/mtasts/policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::mtasts {
namespace {

struct TxtCase {
  std::string record;
  bool ok;
  std::string id;  // ok: the id; else a part of the reason
};

class TxtRecordTest : public ::testing::TestWithParam<TxtCase> {};

TEST_P(TxtRecordTest, Parses) {
  const auto& c = GetParam();
  auto r = parse_txt_record(c.record);
  EXPECT_EQ(r.ok, c.ok) << c.record << ": " << r.reason;
  if (c.ok)
    EXPECT_EQ(r.id, c.id);
  else
    EXPECT_NE(r.reason.find(c.id), std::string::npos) << r.reason;
}

INSTANTIATE_TEST_SUITE_P(
    Table, TxtRecordTest,
    ::testing::Values(TxtCase{"v=STSv1; id=20160831085700Z;", true, "20160831085700Z"},
                      TxtCase{"v=STSv1; id=20160831085700Z", true, "20160831085700Z"},
                      TxtCase{"v=STSv1;id=abc", true, "abc"},
                      TxtCase{"v=STSv1 ; id = abc ; ", true, "abc"},
                      TxtCase{"v=STSv1; id=abc; ext.name-1=val_ue", true, "abc"},
                      TxtCase{"v=STSv1; id=first; id=second", true, "first"},
                      TxtCase{"v=STSv1; foo=bar; id=x1", true, "x1"},
                      TxtCase{"v=STSv1; id=" + std::string(32, 'a'), true, std::string(32, 'a')},
                      TxtCase{"v=STSv1; id=" + std::string(33, 'a'), false, "bad id"},
                      TxtCase{"v=STSv1; id=", false, "bad id"},
                      TxtCase{"v=STSv1; id=a-b", false, "bad id"},
                      TxtCase{"v=STSv1;", false, "no id"}, TxtCase{"v=STSv1", false, "no id"},
                      TxtCase{"v=STSv1 id=abc", false, "expected ';'"},
                      TxtCase{"v=STSv1; id=abc; junk", false, "no '='"},
                      TxtCase{"v=STSv1; id=abc; bad name=x", false, "malformed field"},
                      TxtCase{"v=STSv1; id=abc; x=", false, "malformed field"},
                      TxtCase{"v=STSv2; id=abc", false, "not a v=STSv1"},
                      TxtCase{"id=abc; v=STSv1", false, "not a v=STSv1"},
                      TxtCase{"V=STSv1; id=abc", false, "not a v=STSv1"},
                      TxtCase{"v=spf1 -all", false, "not a v=STSv1"}));

TEST(TxtRecords, OthersAreSkippedAndTwoAreNone) {
  auto one = parse_txt_records({"v=spf1 -all", "v=STSv1; id=abc;", "google-site-verification=x"});
  EXPECT_TRUE(one.ok);
  EXPECT_EQ(one.id, "abc");
  auto two = parse_txt_records({"v=STSv1; id=abc;", "v=STSv1; id=def;"});
  EXPECT_FALSE(two.ok);
  EXPECT_NE(two.reason.find("2 v=STSv1"), std::string::npos) << two.reason;
  auto none = parse_txt_records({"v=spf1 -all"});
  EXPECT_FALSE(none.ok);
  EXPECT_FALSE(parse_txt_records({}).ok);
  // One STS record that is malformed: no policy (not "the other one").
  EXPECT_FALSE(parse_txt_records({"v=STSv1; id=a;", "v=STSv1 broken"}).ok);
}

struct PolicyCase {
  std::string body;
  bool ok;
  Mode mode = Mode::None;
  std::uint32_t max_age = 0;
  std::vector<std::string> mx = {};
  std::string reason = {};  // !ok: a part of the reason
};

class PolicyFileTest : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(PolicyFileTest, Parses) {
  const auto& c = GetParam();
  auto r = parse_policy(c.body);
  ASSERT_EQ(r.ok, c.ok) << c.body << ": " << r.reason;
  if (!c.ok) {
    EXPECT_NE(r.reason.find(c.reason), std::string::npos) << r.reason;
    return;
  }
  EXPECT_EQ(r.policy.mode, c.mode);
  EXPECT_EQ(r.policy.max_age, c.max_age);
  EXPECT_EQ(r.policy.mx, c.mx);
  // The canonical form reads back to the same policy.
  auto again = parse_policy(format_policy(r.policy));
  ASSERT_TRUE(again.ok) << again.reason;
  EXPECT_EQ(again.policy.mode, c.mode);
  EXPECT_EQ(again.policy.mx, c.mx);
  EXPECT_EQ(again.policy.max_age, c.max_age);
}

const std::string kGood =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
    "mx: backupmx.example.com\r\nmax_age: 604800\r\n";

INSTANTIATE_TEST_SUITE_P(
    Table, PolicyFileTest,
    ::testing::Values(
        PolicyCase{kGood,
                   true,
                   Mode::Enforce,
                   604800,
                   {"mail.example.com", "*.example.net", "backupmx.example.com"}},
        // LF only, no final newline, whitespace after the colon, upper-case mx lowered
        PolicyCase{"version: STSv1\nmode: testing\nmx:   MX.Example.ORG  \nmax_age: 86400",
                   true,
                   Mode::Testing,
                   86400,
                   {"mx.example.org"}},
        PolicyCase{"version: STSv1\nmode: none\nmax_age: 0\n", true, Mode::None, 0},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557600\n",
                   true,
                   Mode::Enforce,
                   31557600,
                   {"a.test"}},
        // unknown keys ignored; of repeated ones the first counts; a trailing blank line
        PolicyCase{"version: STSv1\nfoo: bar baz\nmode: testing\nmode: enforce\nmx: a.test\n"
                   "max_age: 5\nmax_age: 6\n\n",
                   true,
                   Mode::Testing,
                   5,
                   {"a.test"}},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "max_age"},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "max_age"},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 99999999999\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "max_age"},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: a.test\nmax_age:\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "max_age"},
        PolicyCase{
            "version: STSv1\nmode: enforce\nmax_age: 5\n", false, Mode::None, 0, {}, "no mx"},
        PolicyCase{
            "mode: enforce\nmx: a.test\nmax_age: 5\n", false, Mode::None, 0, {}, "no version"},
        PolicyCase{"version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 5\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "STSv1"},
        PolicyCase{"version: STSv1\nmx: a.test\nmax_age: 5\n", false, Mode::None, 0, {}, "no mode"},
        PolicyCase{"version: STSv1\nmode: Enforce\nmx: a.test\nmax_age: 5\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "mode"},
        PolicyCase{
            "version: STSv1\nmode: enforce\nmx: a.test\n", false, Mode::None, 0, {}, "no max_age"},
        // wildcards only as the whole leftmost label
        PolicyCase{"version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 5\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "mx"},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: *mail.test\nmax_age: 5\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "mx"},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: *.com\nmax_age: 5\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "mx"},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: mail.test.\nmax_age: 5\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "mx"},
        PolicyCase{"version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 5\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "mx"},
        PolicyCase{
            "version: STSv1\nmode: enforce\nmx: \nmax_age: 5\n", false, Mode::None, 0, {}, "mx"},
        PolicyCase{"<html>not found</html>\n", false, Mode::None, 0, {}, "line 1"},
        PolicyCase{"version: STSv1\nmode: enforce\rmx: a.test\nmax_age: 5\n",
                   false,
                   Mode::None,
                   0,
                   {},
                   "control character"},
        PolicyCase{"", false, Mode::None, 0, {}, "no version"}));

TEST(PolicyFile, Bounded) {
  std::string many = "version: STSv1\nmode: enforce\nmax_age: 5\n";
  for (std::size_t i = 0; i < kMaxMxPatterns; ++i) many += "mx: m" + std::to_string(i) + ".test\n";
  EXPECT_TRUE(parse_policy(many).ok);
  auto over = parse_policy(many + "mx: one-more.test\n");
  EXPECT_FALSE(over.ok);
  EXPECT_NE(over.reason.find("more than 100"), std::string::npos) << over.reason;
  std::string big = kGood + "x: " + std::string(kMaxPolicySize, 'a') + "\n";
  auto large = parse_policy(big);
  EXPECT_FALSE(large.ok);
  EXPECT_NE(large.reason.find("64 KiB"), std::string::npos);
  // Exactly at the limit is fine.
  std::string at = kGood + "x: ";
  at += std::string(kMaxPolicySize - at.size() - 1, 'a') + "\n";
  ASSERT_EQ(at.size(), kMaxPolicySize);
  EXPECT_TRUE(parse_policy(at).ok);
}

struct MxCase {
  std::string pattern;
  std::string host;
  bool match;
};

class MxMatchTest : public ::testing::TestWithParam<MxCase> {};

TEST_P(MxMatchTest, Matches) {
  const auto& c = GetParam();
  EXPECT_EQ(mx_matches(c.pattern, c.host), c.match) << c.pattern << " vs " << c.host;
}

INSTANTIATE_TEST_SUITE_P(Table, MxMatchTest,
                         ::testing::Values(MxCase{"mail.example.com", "mail.example.com", true},
                                           MxCase{"mail.example.com", "MAIL.Example.COM.", true},
                                           MxCase{"mail.example.com", "mail.example.com.x", false},
                                           MxCase{"mail.example.com", "xmail.example.com", false},
                                           MxCase{"*.example.net", "mx1.example.net", true},
                                           MxCase{"*.example.net", "MX1.EXAMPLE.NET.", true},
                                           MxCase{"*.example.net", "example.net", false},
                                           MxCase{"*.example.net", "a.b.example.net", false},
                                           MxCase{"*.example.net", ".example.net", false},
                                           MxCase{"*.example.net", "mx1.example.org", false},
                                           MxCase{"*.example.net", "mx1xexample.net", false},
                                           MxCase{"mail.example.com", "", false},
                                           MxCase{"mail.example.com", ".", false}));

TEST(MxMatch, AnyPatternOfThePolicy) {
  auto r = parse_policy(kGood);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(mx_allowed(r.policy, "backupmx.example.com"));
  EXPECT_TRUE(mx_allowed(r.policy, "x.example.net"));
  EXPECT_FALSE(mx_allowed(r.policy, "evil.example.org"));
}

TEST(NormalizeDomain, SafeAsAFileName) {
  EXPECT_EQ(normalize_domain("Example.ORG."), "example.org");
  EXPECT_EQ(normalize_domain("xn--bcher-kva.test"), "xn--bcher-kva.test");
  for (const char* bad :
       {"", ".", "..", "a..b", "../etc", "a/b", ".hidden", "a b", "a.b..", "\xc3\xa9.test"})
    EXPECT_FALSE(normalize_domain(bad)) << bad;
  EXPECT_FALSE(normalize_domain(std::string(64, 'a') + ".test"));
  EXPECT_TRUE(normalize_domain(std::string(63, 'a') + ".test"));
}

}  // namespace
}  // namespace estafette::mtasts
