// lib/auth/passwd_file: the `file:` auth backend's parser (table of good and bad lines, never
// echoing a line's content) and libcrypt verification of yescrypt, SHA-512-crypt and bcrypt.
#include "lib/auth/passwd_file.h"

#include <crypt.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>

#include "tests/unit/queue/queue_test_util.h"

namespace estafette::auth {
namespace {

// A hash made with a given setting ("$6$salt$", "$2b$05$<22 chars>"), as an admin's tools would.
std::string crypt_with(const std::string& password, const std::string& setting) {
  auto data = std::make_unique<crypt_data>();
  const char* out = ::crypt_rn(password.c_str(), setting.c_str(), data.get(), sizeof *data);
  return out ? std::string(out) : std::string();
}

TEST(PasswdFile, ParsesUsersHashesCommentsAndExtraFields) {
  const std::string yes = hash_password("yes-pw");
  const std::string sha = crypt_with("sha-pw", "$6$saltsaltsalt$");
  const std::string bf = crypt_with("bf-pw", "$2b$05$abcdefghijklmnopqrstuu");
  ASSERT_EQ(yes.substr(0, 3), "$y$");
  ASSERT_EQ(sha.substr(0, 3), "$6$");
  ASSERT_EQ(bf.substr(0, 4), "$2b$");
  std::string error;
  auto file = PasswdFile::parse("# users\n\n   \nalice:" + yes + "\r\nbob:{SHA512-CRYPT}" + sha +
                                    ":1000:1000::/home/bob::\ncarol:{CRYPT}" + bf + "\n",
                                &error);
  ASSERT_TRUE(file) << error;
  EXPECT_EQ(file->size(), 3u);
  ASSERT_TRUE(file->hash_of("alice"));
  EXPECT_EQ(*file->hash_of("alice"), yes);
  EXPECT_EQ(*file->hash_of("bob"), sha);  // without the scheme and the extra fields
  EXPECT_EQ(*file->hash_of("carol"), bf);
  EXPECT_EQ(file->hash_of("dave"), nullptr);
  EXPECT_EQ(file->hash_of("Alice"), nullptr);  // user names are exact
  EXPECT_TRUE(file->legacy_lines().empty());

  EXPECT_TRUE(verify_password("yes-pw", yes));
  EXPECT_TRUE(verify_password("sha-pw", sha));
  EXPECT_TRUE(verify_password("bf-pw", bf));
  EXPECT_FALSE(verify_password("yes-pW", yes));
  EXPECT_FALSE(verify_password("", yes));
  EXPECT_FALSE(verify_password("sha-pw", yes));
}

TEST(PasswdFile, LegacyHashesAreAcceptedAndListed) {
  const std::string md5 = crypt_with("old", "$1$saltsalt$");
  ASSERT_EQ(md5.substr(0, 3), "$1$");
  std::string error;
  auto file = PasswdFile::parse("new:" + hash_password("x") + "\nold:" + md5 + "\n", &error);
  ASSERT_TRUE(file) << error;
  EXPECT_EQ(file->legacy_lines(), std::vector<std::size_t>{2});
  EXPECT_TRUE(verify_password("old", md5));
}

struct BadFile {
  std::string text;
  std::string error;  // the message
};

void PrintTo(const BadFile& c, std::ostream* os) {
  *os << ::testing::PrintToString(c.text);
}

class PasswdFileRefused : public ::testing::TestWithParam<BadFile> {};

TEST_P(PasswdFileRefused, NamesTheLineNeverItsContent) {
  std::string error;
  EXPECT_FALSE(PasswdFile::parse(GetParam().text, &error));
  EXPECT_EQ(error, GetParam().error);
  EXPECT_EQ(error.find("hunter2"), std::string::npos);
}

const std::string kGood = "ok:$6$saltsaltsalt$" + std::string(86, 'a');

INSTANTIATE_TEST_SUITE_P(
    Table, PasswdFileRefused,
    ::testing::Values(
        BadFile{"alice hunter2\n", "line 1: expected user:hash"},
        BadFile{"alice:{PLAIN}hunter2\n",
                "line 1: not a crypt(3) scheme (plaintext passwords are not accepted)"},
        BadFile{"alice:{CLEAR}hunter2\n",
                "line 1: not a crypt(3) scheme (plaintext passwords are not accepted)"},
        BadFile{"# c\nalice:{CRYPT\n",
                "line 2: not a crypt(3) scheme (plaintext passwords are not accepted)"},
        BadFile{"alice:hunter2\n", "line 1: not a crypt(3) hash this system can check"},
        BadFile{"alice:\n", "line 1: not a crypt(3) hash this system can check"},
        BadFile{"alice:$9$hunter2\n", "line 1: not a crypt(3) hash this system can check"},
        BadFile{":$6$x$y\n", "line 1: user name empty, too long or with spaces or controls"},
        BadFile{"al ice:$6$x$y\n", "line 1: user name empty, too long or with spaces or controls"},
        BadFile{"al\x01ice:$6$x$y\n",
                "line 1: user name empty, too long or with spaces or controls"},
        BadFile{std::string(256, 'u') + ":$6$x$y\n",
                "line 1: user name empty, too long or with spaces or controls"}));

TEST(PasswdFile, UserListedTwiceIsRefused) {
  std::string error;
  std::string hash = crypt_with("a", "$6$saltsaltsalt$");
  EXPECT_FALSE(PasswdFile::parse("a:" + hash + "\nb:" + hash + "\na:" + hash + "\n", &error));
  EXPECT_EQ(error, "line 3: user listed twice");
}

TEST(PasswdFile, LockedAndUnusableHashesNeverVerify) {
  EXPECT_FALSE(verify_password("", ""));
  EXPECT_FALSE(verify_password("x", "*"));
  EXPECT_FALSE(verify_password("x", "!" + hash_password("x")));
  EXPECT_FALSE(verify_password("x", "x"));
}

TEST(PasswdFile, DummyHashIsAYescryptHashNobodyKnows) {
  const std::string& dummy = dummy_hash();
  EXPECT_EQ(dummy.substr(0, 3), "$y$");
  EXPECT_EQ(&dummy, &dummy_hash());  // made once
  EXPECT_FALSE(verify_password("", dummy));
  EXPECT_FALSE(verify_password("password", dummy));
}

TEST(PasswdFile, HashPasswordSaltsEachHash) {
  EXPECT_NE(hash_password("same"), hash_password("same"));
  EXPECT_THROW(hash_password(std::string("a\0b", 3)), std::invalid_argument);
}

class PasswdFileLoad : public ::testing::Test {
 protected:
  queue::testing::TempDir tmp_;
  const std::string& dir_ = tmp_.path();
};

TEST_F(PasswdFileLoad, ReadsAFileAndRefusesWhatIsNotOne) {
  std::string path = dir_ + "/passwd";
  std::ofstream(path) << "alice:" << hash_password("pw") << "\n";
  std::string error;
  auto file = PasswdFile::load(path, &error);
  ASSERT_TRUE(file) << error;
  EXPECT_TRUE(verify_password("pw", *file->hash_of("alice")));

  EXPECT_FALSE(PasswdFile::load(dir_ + "/missing", &error));
  EXPECT_EQ(error, dir_ + "/missing: No such file or directory");
  EXPECT_FALSE(PasswdFile::load(dir_, &error));
  EXPECT_EQ(error, dir_ + ": not a regular file");
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(PasswdFile::load(fifo, &error));  // and does not block
  EXPECT_EQ(error, fifo + ": not a regular file");
  std::string big = dir_ + "/big";
  std::ofstream(big).close();
  ASSERT_EQ(::truncate(big.c_str(), 16 * 1024 * 1024 + 1), 0);
  EXPECT_FALSE(PasswdFile::load(big, &error));
  EXPECT_EQ(error, big + ": larger than 16 MiB");
  std::ofstream(path) << "alice:{PLAIN}pw\n";
  EXPECT_FALSE(PasswdFile::load(path, &error));
  EXPECT_EQ(error, path + ": line 1: not a crypt(3) scheme (plaintext passwords are not accepted)");
}

// Dovecot's SCRAM-SHA-256 entries (a line doveadm printed for "pencil"): loaded, offered, and
// out-of-bounds iteration counts refused naming the line, never echoing the secret.
TEST(PasswdFile, ScramEntries) {
  const std::string doveadm =
      "{SCRAM-SHA-256}4096,QW7KavEx8BfYhBmI9aerLA==,"
      "Blp1CJC+nY9hLV7Ly785bfDzlQyw+GxUULydK6tY2gE=,syfkt2vS8YTjbFsDyibdvVN2vHP0N1EFVCu6gBpLMSg=";
  std::string error;
  auto crypt_only = PasswdFile::parse("alice:" + hash_password("x") + "\n", &error);
  ASSERT_TRUE(crypt_only) << error;
  EXPECT_FALSE(crypt_only->has_scram());
  auto file =
      PasswdFile::parse("alice:" + hash_password("x") + "\nuser:" + doveadm +
                            ":1000:1000::/home/user::\nother:" + hash_scram_password("y") + "\n",
                        &error);
  ASSERT_TRUE(file) << error;
  EXPECT_TRUE(file->has_scram());
  EXPECT_EQ(file->usual_scram_iterations(), 4096u);
  EXPECT_EQ(file->hash_of("user"), nullptr);  // not a crypt(3) hash
  const PasswdEntry* entry = file->entry_of("user");
  ASSERT_TRUE(entry && entry->scram);
  EXPECT_TRUE(verify_scram_password("pencil", *entry->scram));
  ASSERT_TRUE(file->entry_of("alice"));
  EXPECT_FALSE(file->entry_of("alice")->scram);
  // The fake-secret key: 32 bytes, the same for the same text (every esmtpd process), not for
  // another.
  EXPECT_EQ(file->fake_scram_key().size(), 32u);
  EXPECT_EQ(PasswdFile::parse("user:" + doveadm + "\n", &error)->fake_scram_key(),
            PasswdFile::parse("user:" + doveadm + "\n", &error)->fake_scram_key());
  EXPECT_NE(PasswdFile::parse("user:" + doveadm + "\n", &error)->fake_scram_key(),
            PasswdFile::parse("user:" + doveadm + "\n\n", &error)->fake_scram_key());

  std::string low = doveadm;
  low.replace(low.find("4096"), 4, "1000");
  EXPECT_FALSE(PasswdFile::parse("a:" + hash_password("x") + "\nb:" + low + "\n", &error));
  EXPECT_EQ(error, "line 2: SCRAM-SHA-256 iteration count below 4096");
  std::string high = doveadm;
  high.replace(high.find("4096"), 4, "50000000");
  EXPECT_FALSE(PasswdFile::parse("b:" + high + "\n", &error));
  EXPECT_EQ(error, "line 1: SCRAM-SHA-256 iteration count above 1000000");
  EXPECT_FALSE(PasswdFile::parse("b:{SCRAM-SHA-256}4096,QW7KavEx8BfYhBmI9aerLA==\n", &error));
  EXPECT_EQ(error.find("QW7K"), std::string::npos) << error;
  EXPECT_NE(error.find("line 1"), std::string::npos) << error;
  EXPECT_FALSE(PasswdFile::parse("b:" + doveadm + "\nb:" + doveadm + "\n", &error));
  EXPECT_EQ(error, "line 2: user listed twice");
}

}  // namespace
}  // namespace estafette::auth
