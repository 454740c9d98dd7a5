// Table tests for the pure parts of lib/checks: parse_ident_reply (RFC 1413 replies),
// AnswerFilter (postscreen reply filters) and dnsbl_filter_error, dnsbl_query_name,
// DnsblResult::reply_text, parse_ip.
#include <gtest/gtest.h>

#include <string>

#include "lib/checks/checks.h"
#include "lib/checks/ip.h"

namespace estafette::checks {

inline void PrintTo(IdentStatus s, std::ostream* os) {
  *os << to_string(s);
}

namespace {

// --- IDENT replies

struct IdentCase {
  std::string line;
  std::uint16_t client_port;
  std::uint16_t server_port;
  IdentStatus status;
  std::string user = {};
  std::string os = {};
};

std::ostream& operator<<(std::ostream& os, const IdentCase& c) {
  return os << '"' << c.line.substr(0, 80) << '"';
}

class IdentReply : public ::testing::TestWithParam<IdentCase> {};

TEST_P(IdentReply, Parses) {
  const IdentCase& c = GetParam();
  IdentResult r = parse_ident_reply(c.line, c.client_port, c.server_port);
  EXPECT_EQ(r.status, c.status);
  EXPECT_EQ(r.user, c.user);
  EXPECT_EQ(r.os, c.os);
  EXPECT_LE(r.user.size(), 64u);
  for (char ch : r.user) EXPECT_TRUE(ch > ' ' && ch < 0x7f) << int(ch);
}

const std::string k1000(1000, 'x');

INSTANTIATE_TEST_SUITE_P(
    Rfc1413, IdentReply,
    ::testing::Values(
        // RFC 1413 examples (section 7), with our ports
        IdentCase{"6193, 23 : USERID : UNIX : stjohns", 6193, 23, IdentStatus::Ok, "stjohns",
                  "UNIX"},
        IdentCase{"6195, 23 : ERROR : NO-USER", 6195, 23, IdentStatus::NoUser},
        IdentCase{"6195, 23 : ERROR : HIDDEN-USER", 6195, 23, IdentStatus::NoUser},
        IdentCase{"6195, 23 : ERROR : INVALID-PORT", 6195, 23, IdentStatus::NoUser},
        IdentCase{"6195, 23 : ERROR : UNKNOWN-ERROR", 6195, 23, IdentStatus::NoUser},
        // whitespace variants (oidentd writes no spaces)
        IdentCase{"55170,2600:USERID:UNIX:nobody", 55170, 2600, IdentStatus::Ok, "nobody", "UNIX"},
        IdentCase{"  55170 ,\t2600 :  USERID\t:UNIX :\t nobody \t", 55170, 2600, IdentStatus::Ok,
                  "nobody", "UNIX"},
        IdentCase{"1,2:ERROR:NO-USER", 1, 2, IdentStatus::NoUser},
        IdentCase{"1,2 : userid : unix : joe", 1, 2, IdentStatus::Ok, "joe", "unix"},
        // charset after the opsys; colons inside the user id are part of it
        IdentCase{"1,2 : USERID : UNIX , US-ASCII : joe", 1, 2, IdentStatus::Ok, "joe", "UNIX"},
        IdentCase{"1,2 : USERID : OTHER : a:b:c", 1, 2, IdentStatus::Ok, "a:b:c", "OTHER"},
        // sanitised: nothing that breaks a Received header comment or an address
        IdentCase{"1,2 : USERID : UNIX : jo e(x)<y>[z]\"q'@h\\", 1, 2, IdentStatus::Ok,
                  "jo?e?x??y??z??q??h?", "UNIX"},
        IdentCase{"1,2 : USERID : UNIX : j\x01\x7f\xc3\xa9", 1, 2, IdentStatus::Ok, "j????",
                  "UNIX"},
        IdentCase{"1,2 : USERID : UNIX : " + std::string(100, 'u'), 1, 2, IdentStatus::Ok,
                  std::string(64, 'u'), "UNIX"},
        // wrong ports
        IdentCase{"6193, 24 : USERID : UNIX : joe", 6193, 23, IdentStatus::Error},
        IdentCase{"23, 6193 : USERID : UNIX : joe", 6193, 23, IdentStatus::Error},
        IdentCase{"6193, 23 : ERROR : NO-USER", 6194, 23, IdentStatus::Error},
        IdentCase{"71729, 23 : USERID : UNIX : joe", 6193, 23, IdentStatus::Error},
        IdentCase{"+6193, 23 : USERID : UNIX : joe", 6193, 23, IdentStatus::Error},
        IdentCase{"006193, 23 : USERID : UNIX : joe", 6193, 23, IdentStatus::Error},
        // garbage and truncation
        IdentCase{"", 1, 2, IdentStatus::Error}, IdentCase{"hello", 1, 2, IdentStatus::Error},
        IdentCase{"1,2", 1, 2, IdentStatus::Error},
        IdentCase{"1 2 : ERROR : X", 1, 2, IdentStatus::Error},
        IdentCase{"1,2 : USERID", 1, 2, IdentStatus::Error},
        IdentCase{"1,2 : USERID : UNIX", 1, 2, IdentStatus::Error},
        IdentCase{"1,2 : USERID : UNIX :   ", 1, 2, IdentStatus::Error},
        IdentCase{"1,2 : USERID :  : joe", 1, 2, IdentStatus::Error},
        IdentCase{"1,2 : ERROR :", 1, 2, IdentStatus::Error},
        IdentCase{"1,2 : OK : UNIX : joe", 1, 2, IdentStatus::Error},
        IdentCase{"x,2 : USERID : UNIX : joe", 1, 2, IdentStatus::Error},
        IdentCase{",2 : USERID : UNIX : joe", 1, 2, IdentStatus::Error},
        IdentCase{"1, : USERID : UNIX : joe", 1, 2, IdentStatus::Error},
        // over-long: a 1000-byte line is the most we take
        IdentCase{"1,2:USERID:UNIX:" + k1000.substr(16), 1, 2, IdentStatus::Ok,
                  std::string(64, 'x'), "UNIX"},
        IdentCase{"1,2:USERID:UNIX:" + k1000, 1, 2, IdentStatus::Error}));

// --- answer filters

struct FilterCase {
  std::string filter;
  bool valid;
  std::vector<std::string> match = {};
  std::vector<std::string> no_match = {};
};

std::ostream& operator<<(std::ostream& os, const FilterCase& c) {
  return os << '"' << c.filter << '"';
}

class AnswerFilterParse : public ::testing::TestWithParam<FilterCase> {};

TEST_P(AnswerFilterParse, ParsesAndMatches) {
  const FilterCase& c = GetParam();
  auto f = AnswerFilter::parse(c.filter);
  ASSERT_EQ(f.has_value(), c.valid);
  if (!f) return;
  EXPECT_EQ(f->text(), c.filter);
  EXPECT_EQ(f->empty(), c.filter.empty());
  for (const auto& ip : c.match) EXPECT_TRUE(f->matches(ip)) << ip;
  for (const auto& ip : c.no_match) EXPECT_FALSE(f->matches(ip)) << ip;
}

INSTANTIATE_TEST_SUITE_P(
    Postscreen, AnswerFilterParse,
    ::testing::Values(
        FilterCase{"", true, {"127.0.0.2", "10.1.2.3"}, {"", "::1", "bogus", "127.0.0"}},
        FilterCase{"127.0.0.2", true, {"127.0.0.2"}, {"127.0.0.3", "127.0.0.20", "", "x"}},
        FilterCase{"127.0.0.[2..11]",
                   true,
                   {"127.0.0.2", "127.0.0.7", "127.0.0.11"},
                   {"127.0.0.1", "127.0.0.12", "127.0.1.2"}},
        FilterCase{"127.0.[0..255].[1;3;5]",
                   true,
                   {"127.0.0.1", "127.0.255.3", "127.0.9.5"},
                   {"127.0.0.2", "127.1.0.1", "127.0.0.4"}},
        FilterCase{"127.0.0.[1..2;4;8..9]",
                   true,
                   {"127.0.0.1", "127.0.0.4", "127.0.0.9"},
                   {"127.0.0.3", "127.0.0.5", "127.0.0.10"}},
        FilterCase{"[0..255].[0..255].[0..255].[0..255]",
                   true,
                   {"0.0.0.0", "255.255.255.255"},
                   {"::ffff:1.2.3.4"}},
        FilterCase{"127.0.0.[4]", true, {"127.0.0.4"}, {"127.0.0.3"}}, FilterCase{"127.0.0", false},
        FilterCase{"127.0.0.2.", false}, FilterCase{"127.0.0.2.1", false},
        FilterCase{"127.0.0.256", false}, FilterCase{"127.0.0.1000", false},
        FilterCase{"127.0.0.-1", false}, FilterCase{"127.0.0.x", false},
        FilterCase{" 127.0.0.2", false}, FilterCase{"127.0.0.2 ", false},
        FilterCase{"127.0.0.[2..1]", false}, FilterCase{"127.0.0.[2..]", false},
        FilterCase{"127.0.0.[..2]", false}, FilterCase{"127.0.0.[2;]", false},
        FilterCase{"127.0.0.[]", false}, FilterCase{"127.0.0.[2", false},
        FilterCase{"127.0.0.[2.3]", false}, FilterCase{"127.0.0.[2...3]", false},
        FilterCase{"127.0.0.[2..300]", false}, FilterCase{"127..0.2", false},
        FilterCase{".127.0.0.2", false}, FilterCase{"::1", false}));

// What esmtpd stops on at start and `estafette check-config` reports: the same verdict as
// AnswerFilter::parse, with the place the filter was configured.
TEST_P(AnswerFilterParse, ErrorTextFollowsTheParser) {
  const FilterCase& c = GetParam();
  std::string error = dnsbl_filter_error("/etc/dnsbl:3", c.filter);
  if (c.valid) {
    EXPECT_EQ(error, "");
  } else {
    EXPECT_EQ(error, "/etc/dnsbl:3: bad answer filter '" + c.filter +
                         "' (expected e.g. 127.0.0.2 or 127.0.0.[2..11])");
  }
}

// --- DNS-list query names

struct QueryNameCase {
  std::string ip;
  std::string zone;
  std::string name;
};

std::ostream& operator<<(std::ostream& os, const QueryNameCase& c) {
  return os << c.ip << " " << c.zone;
}

class DnsblQueryName : public ::testing::TestWithParam<QueryNameCase> {};

TEST_P(DnsblQueryName, Builds) {
  EXPECT_EQ(dnsbl_query_name(GetParam().ip, GetParam().zone), GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(
    Names, DnsblQueryName,
    ::testing::Values(
        QueryNameCase{"127.0.0.2", "bl1.test", "2.0.0.127.bl1.test"},
        QueryNameCase{"192.0.2.99", "zen.example.", "99.2.0.192.zen.example"},
        QueryNameCase{"::ffff:127.0.0.2", "bl1.test", "2.0.0.127.bl1.test"},
        QueryNameCase{"::1", "bl.test",
                      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test"},
        QueryNameCase{"2001:db8:1:2::abcd", "bl.test",
                      "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test"},
        QueryNameCase{"2001:DB8::ABCD", "bl.test",
                      "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"},
        QueryNameCase{"127.0.0", "bl.test", ""}, QueryNameCase{"127.0.0.256", "bl.test", ""},
        QueryNameCase{"", "bl.test", ""}, QueryNameCase{"fe80::1%eth0", "bl.test", ""},
        QueryNameCase{"127.0.0.2", "", ""}, QueryNameCase{"127.0.0.2", ".", ""},
        QueryNameCase{"127.0.0.2", ".bl.test", ""}));

TEST(DnsblResult, ReplyTextOfTheLargestPositiveWeight) {
  DnsblResult r;
  EXPECT_EQ(r.reply_text(), "");
  r.hits = {{"allow.test", -5, {"127.0.0.2"}, "allowed"}};
  EXPECT_EQ(r.reply_text(), "");
  r.hits.push_back({"a.test", 2, {"127.0.0.2"}, "a"});
  r.hits.push_back({"b.test", 3, {"127.0.0.2"}, "b"});
  r.hits.push_back({"c.test", 3, {"127.0.0.2"}, "c"});
  EXPECT_EQ(r.reply_text(), "b");
  r.score = 3;
  EXPECT_TRUE(r.blocked(3));
  EXPECT_FALSE(r.blocked(4));
  EXPECT_FALSE(r.blocked(0));  // threshold 0: lists are only logged
}

TEST(CheckIp, NormalisedForms) {
  auto a = parse_ip("127.0.0.1"), b = parse_ip("::ffff:127.0.0.1"), c = parse_ip("::1");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(b->length, 4);
  EXPECT_EQ(b->text(), "127.0.0.1");
  EXPECT_EQ(c->length, 16);
  EXPECT_EQ(c->text(), "::1");
  EXPECT_EQ(*parse_ip("0:0:0:0:0:0:0:1"), *c);
  EXPECT_FALSE(parse_ip("127.1"));
  EXPECT_FALSE(parse_ip(""));
  EXPECT_FALSE(parse_ip(std::string(100, '1')));
}

TEST(CheckNames, StatusTexts) {
  EXPECT_STREQ(to_string(RdnsStatus::Confirmed), "confirmed");
  EXPECT_STREQ(to_string(RdnsStatus::NoPtr), "no-ptr");
  EXPECT_STREQ(to_string(IdentStatus::Refused), "refused");
  EXPECT_STREQ(to_string(IdentStatus::Timeout), "timeout");
}

}  // namespace
}  // namespace estafette::checks
