// lib/auth/sender_login_map: Postfix smtpd_sender_login_maps (hash:) semantics as tables: which
// login owns which sender (address before @domain, case folding, several owners, continuation
// lines), which files are refused with file:line, and the loader on a real file.
#include "lib/auth/sender_login_map.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "tests/unit/queue/queue_test_util.h"

namespace estafette::auth {
namespace {

const char* const kMap =
    "# who may send as whom\n"
    "\n"
    "alice@example.com    alice\n"
    "Sales@Example.COM    alice, bob\n"
    "@example.org         carol\n"
    "info@example.org     dave,\n"
    "  erin\n"
    "   # a comment does not end the entry\n"
    "\tfrank\n"
    "shared@example.net   gina,hank ivan\r\n"
    "user@sub.example.com  j@k.example\n";

struct OwnCase {
  const char* login;
  const char* sender;
  bool owned;
  bool listed;
};

void PrintTo(const OwnCase& c, std::ostream* os) {
  *os << c.login << " / " << c.sender;
}

class SenderLoginMapOwns : public testing::TestWithParam<OwnCase> {};

TEST_P(SenderLoginMapOwns, AsPostfixHashTable) {
  std::string error;
  auto map = SenderLoginMap::parse(kMap, "map", &error);
  ASSERT_TRUE(map) << error;
  const auto& c = GetParam();
  EXPECT_EQ(map->owns(c.login, c.sender), c.owned) << c.login << " " << c.sender;
  EXPECT_EQ(map->lists(c.sender), c.listed) << c.sender;
}

INSTANTIATE_TEST_SUITE_P(
    Table, SenderLoginMapOwns,
    testing::Values(
        OwnCase{"alice", "alice@example.com", true, true},
        OwnCase{"alice", "ALICE@Example.Com", true, true},   // addresses fold as hash: keys
        OwnCase{"Alice", "alice@example.com", false, true},  // logins are exact
        OwnCase{"bob", "alice@example.com", false, true},
        OwnCase{"alice", "sales@example.com", true, true},  // a key written in capitals
        OwnCase{"bob", "SALES@example.com", true, true},
        OwnCase{"carol", "sales@example.com", false, true},
        OwnCase{"alice", "other@example.com", false, false},  // no @example.com line
        OwnCase{"carol", "anyone@example.org", true, true},   // @domain: every address in it
        OwnCase{"carol", "x@EXAMPLE.ORG", true, true},
        OwnCase{"carol", "info@example.org", false, true},  // the address's line wins
        OwnCase{"dave", "info@example.org", true, true},
        OwnCase{"erin", "info@example.org", true, true},      // continuation line
        OwnCase{"frank", "info@example.org", true, true},     // ... after a comment
        OwnCase{"carol", "x@sub.example.org", false, false},  // @domain is not subdomains
        OwnCase{"gina", "shared@example.net", true, true},
        OwnCase{"hank", "shared@example.net", true, true},
        OwnCase{"ivan", "shared@example.net", true, true},
        OwnCase{"j@k.example", "user@sub.example.com", true, true},  // a login with '@'
        OwnCase{"alice", "alice", false, false},  // no domain: only the whole string
        OwnCase{"alice", "", false, false},       // the null sender: never listed
        OwnCase{"", "alice@example.com", false, true},
        OwnCase{"carol", "@example.org", true, true},  // the key itself, as a sender
        OwnCase{"alice", "alice@example.com.", false, false}));

struct BadCase {
  const char* text;
  const char* error;
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << testing::PrintToString(c.text);
}

class SenderLoginMapRefuses : public testing::TestWithParam<BadCase> {};

TEST_P(SenderLoginMapRefuses, WithFileAndLine) {
  std::string error;
  EXPECT_FALSE(SenderLoginMap::parse(GetParam().text, "/etc/estafette/senders", &error));
  EXPECT_EQ(error, GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SenderLoginMapRefuses,
    testing::Values(
        BadCase{"# ok\nalice alice\n",
                "/etc/estafette/senders:2: a key is user@domain or @domain (a local part alone "
                "is not supported)"},
        BadCase{"alice@ alice\n", "/etc/estafette/senders:1: no domain after '@'"},
        BadCase{"@ alice\n", "/etc/estafette/senders:1: no domain after '@'"},
        BadCase{"a@x.test a\nA@X.test b\n", "/etc/estafette/senders:2: key listed twice: A@X.test"},
        BadCase{"  alice\n",
                "/etc/estafette/senders:1: a continuation line (white space first) "
                "with no entry above"},
        BadCase{"a@x.test a\x01z\n", "/etc/estafette/senders:1: control character"},
        BadCase{"a@x.test a\nb@x.test\n", "/etc/estafette/senders: no login for b@x.test"},
        BadCase{"b@x.test ,,  \n", "/etc/estafette/senders: no login for b@x.test"}));

TEST(SenderLoginMap, EmptyAndCommentOnlyFilesListNothing) {
  std::string error;
  for (const char* text : {"", "\n\n", "# nothing yet\n  # indented comment\n"}) {
    auto map = SenderLoginMap::parse(text, "m", &error);
    ASSERT_TRUE(map) << error;
    EXPECT_EQ(map->size(), 0u);
    EXPECT_FALSE(map->lists("a@b.test"));
  }
  auto map = SenderLoginMap::parse("a@b.test x", "m", &error);  // no final newline
  ASSERT_TRUE(map) << error;
  EXPECT_TRUE(map->owns("x", "a@b.test"));
}

TEST(SenderLoginMap, LoadsAFileAndNamesItInErrors) {
  queue::testing::TempDir dir;
  const std::string path = dir.path() + "/senders";
  std::string error;
  EXPECT_FALSE(load_sender_login_map(path, &error));
  EXPECT_EQ(error, path + ": No such file or directory");
  {
    std::ofstream out(path);
    out << kMap;
  }
  auto map = load_sender_login_map(path, &error);
  ASSERT_TRUE(map) << error;
  EXPECT_TRUE(map->owns("erin", "info@example.org"));
  {
    std::ofstream out(path, std::ios::app);
    out << "broken\n";
  }
  EXPECT_FALSE(load_sender_login_map(path, &error));
  EXPECT_EQ(error.rfind(path + ":12: a key is", 0), 0u) << error;
  EXPECT_FALSE(load_sender_login_map(dir.path(), &error));  // a directory
  EXPECT_EQ(error, dir.path() + ": not a regular file");
}

}  // namespace
}  // namespace estafette::auth
