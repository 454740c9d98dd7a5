// client_credentials: the file's lines and errors, and load_client_credentials' refusal of a
// file that others could read or write, a symlink or a non-regular file (real files in a temp
// directory).
#include "lib/config/client_credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "lib/config/config.h"
#include "tests/unit/queue/queue_test_util.h"  // TempDir

namespace estafette::config {
namespace {

TEST(ClientCredentials, ParsesDestinationsUsersAndPasswordsWithSpaces) {
  auto t = parse_client_credentials(
      "# destination user password\n"
      "\n"
      "[Smtp.Example.net]:587   relay@example  s3cret words here \n"
      "mail.example.org:465\tbob\tpa55\n"
      "example.com alice pw\n",
      "creds");
  ASSERT_EQ(t.entries.size(), 3u);
  EXPECT_EQ(*t.find("smtp.example.net:587"), (Credentials{"relay@example", "s3cret words here"}));
  EXPECT_EQ(*t.find("mail.example.org:465"), (Credentials{"bob", "pa55"}));
  EXPECT_EQ(*t.find("example.com"), (Credentials{"alice", "pw"}));
  EXPECT_EQ(t.find("smtp.example.net:25"), nullptr);
}

struct ErrorCase {
  std::string text;
  std::string error;
};
class ClientCredentialsErrors : public ::testing::TestWithParam<ErrorCase> {};
TEST_P(ClientCredentialsErrors, FileLineAndReason) {
  try {
    parse_client_credentials(GetParam().text, "creds");
    FAIL() << "accepted: " << GetParam().text;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().error), std::string::npos) << e.what();
  }
}
INSTANTIATE_TEST_SUITE_P(
    Table, ClientCredentialsErrors,
    ::testing::Values(ErrorCase{"[a.test]:587\n", "creds:1: expected 'destination user password'"},
                      ErrorCase{"\n[a.test]:587 user\n", "creds:2: expected 'destination"},
                      ErrorCase{"[a.test:587 u p\n", "creds:1: bad destination '[a.test:587'"},
                      ErrorCase{"a.test:0 u p\n", "creds:1: bad destination"},
                      ErrorCase{"a.test:25 u p\n[A.test]:25 v q\n",
                                "creds:2: duplicate destination 'a.test:25'"}));

class ClientCredentialsFile : public ::testing::Test {
 protected:
  std::string write(const std::string& name, mode_t mode) {
    std::string path = tmp_.sub(name);
    std::ofstream(path) << "relay.test:587 u p\n";
    ::chmod(path.c_str(), mode);
    return path;
  }
  queue::testing::TempDir tmp_;
};

TEST_F(ClientCredentialsFile, ReadsAnOwnerOnlyFile) {
  auto t = load_client_credentials(write("ok", 0600));
  EXPECT_EQ(*t.find("relay.test:587"), (Credentials{"u", "p"}));
}

TEST_F(ClientCredentialsFile, RefusesAFileOthersMayRead) {
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602}) {
    std::string path = write("open" + std::to_string(mode), mode);
    try {
      load_client_credentials(path);
      FAIL() << "mode " << std::oct << mode << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
    }
  }
}

TEST_F(ClientCredentialsFile, RefusesASymlinkADirectoryAndAMissingFile) {
  std::string target = write("target", 0600);
  std::string link = tmp_.sub("link");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_THROW(load_client_credentials(link), ConfigError);  // O_NOFOLLOW
  std::string dir = tmp_.sub("dir");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  EXPECT_THROW(load_client_credentials(dir), ConfigError);
  EXPECT_THROW(load_client_credentials(tmp_.sub("missing")), ConfigError);
}

TEST_F(ClientCredentialsFile, RefusesAFileOwnedBySomeoneElse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the file away";
  std::string path = write("theirs", 0600);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  try {
    load_client_credentials(path);
    FAIL() << "a file owned by uid 65534 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("owned by uid 65534"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace estafette::config
