// config::parse_transport: local_transport and `transport=` values, and their canonical text
// (courierd's destination key).
#include "lib/config/transport.h"

#include <gtest/gtest.h>

#include <string>

namespace estafette::config {
namespace {

struct Row {
  std::string text;
  std::string canonical;  // "" when refused
  std::string why;        // the reason when refused
};

const Row kRows[] = {
    {"maildir", "maildir", ""},
    {"lmtp:unix:/run/dovecot/lmtp", "lmtp:unix:/run/dovecot/lmtp", ""},
    {"lmtp:inet:127.0.0.1:24", "lmtp:inet:127.0.0.1:24", ""},
    {"lmtp:inet:mail.example:2424", "lmtp:inet:mail.example:2424", ""},
    {"lmtp:inet:[::1]:24", "lmtp:inet:[::1]:24", ""},
    {"lmtp:unix:" + std::string(106, 'a'), "", "the LMTP socket must be an absolute path"},
    {"lmtp:unix:/" + std::string(106, 'a'), "lmtp:unix:/" + std::string(106, 'a'), ""},
    {"lmtp:unix:/" + std::string(107, 'a'), "", "longer than 107 bytes"},
    {"lmtp:unix:", "", "absolute path"},
    {"lmtp:unix:/a b", "", "blank or control character"},
    {"lmtp:inet:127.0.0.1", "", "expected lmtp:inet:host:port"},
    {"lmtp:inet:::1:24", "", "expected lmtp:inet:host:port"},
    {"lmtp:inet:[::1]", "", "expected lmtp:inet:[address]:port"},
    {"lmtp:inet:[::1]24", "", "expected lmtp:inet:[address]:port"},
    {"lmtp:inet::24", "", "bad LMTP host ''"},
    {"lmtp:inet:h:0", "", "bad LMTP port '0'"},
    {"lmtp:inet:h:65536", "", "bad LMTP port '65536'"},
    {"lmtp:inet:h:24x", "", "bad LMTP port '24x'"},
    {"lmtp:inet:h:", "", "bad LMTP port ''"},
    {"lmtp:tcp:h:24", "", "expected maildir, lmtp:unix:/path or lmtp:inet:host:port"},
    {"Maildir", "", "expected maildir"},
    {"", "", "expected maildir"},
};

class TransportTest : public ::testing::TestWithParam<Row> {};

TEST_P(TransportTest, Parses) {
  const Row& row = GetParam();
  std::string why;
  auto t = parse_transport(row.text, &why);
  if (row.canonical.empty()) {
    EXPECT_FALSE(t.has_value()) << row.text;
    EXPECT_NE(why.find(row.why), std::string::npos) << why;
    return;
  }
  ASSERT_TRUE(t.has_value()) << row.text << ": " << why;
  EXPECT_EQ(t->to_string(), row.canonical);
  EXPECT_EQ(t->lmtp(), row.canonical != "maildir");
  // The canonical text reads back as the same transport (it is courierd's destination key).
  EXPECT_EQ(parse_transport(t->to_string()), t);
}

INSTANTIATE_TEST_SUITE_P(Table, TransportTest, ::testing::ValuesIn(kRows));

TEST(Transport, DefaultIsMaildir) {
  EXPECT_FALSE(Transport{}.lmtp());
  EXPECT_EQ(Transport{}.to_string(), "maildir");
}

}  // namespace
}  // namespace estafette::config
