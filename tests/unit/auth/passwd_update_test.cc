// lib/auth/passwd_update: `estafette passwd`'s edit of the passwd file. The pure edit as a table
// (other lines, comments and extra fields kept byte for byte), and the file on a real file
// system: the new entry verifies with PasswdFile::load + verify_password, the mode and the other
// lines of an existing file are kept, a new file is 0640, a symlink at the path is refused and
// its target untouched, no temporary file is left behind.
#include "lib/auth/passwd_update.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "lib/auth/passwd_file.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::auth {
namespace {

struct EditCase {
  const char* text;
  const char* user;
  const char* hash;  // nullptr: delete
  const char* expected;
  PasswdChange change;
};

void PrintTo(const EditCase& c, std::ostream* os) {
  *os << testing::PrintToString(c.text) << " " << c.user;
}

class PasswdEdit : public testing::TestWithParam<EditCase> {};

TEST_P(PasswdEdit, KeepsEverythingElse) {
  const auto& c = GetParam();
  std::string hash = c.hash ? c.hash : "";
  PasswdChange change{};
  EXPECT_EQ(edit_passwd_text(c.text, c.user, c.hash ? &hash : nullptr, &change), c.expected);
  EXPECT_EQ(change, c.change);
}

INSTANTIATE_TEST_SUITE_P(
    Table, PasswdEdit,
    testing::Values(
        EditCase{"", "alice", "$y$new", "alice:$y$new\n", PasswdChange::Added},
        EditCase{"# users\n", "alice", "$y$new", "# users\nalice:$y$new\n", PasswdChange::Added},
        EditCase{"bob:$6$b", "alice", "$y$new", "bob:$6$b\nalice:$y$new\n", PasswdChange::Added},
        EditCase{"# c\nalice:$6$old\n\nbob:$6$b\n", "alice", "$y$new",
                 "# c\nalice:$y$new\n\nbob:$6$b\n", PasswdChange::Replaced},
        // Dovecot's extra fields and a CRLF line ending stay; a scheme prefix goes.
        EditCase{"alice:{SHA512-CRYPT}$6$old:1000:1000::/home/alice::\r\nbob:x\n", "alice",
                 "$y$new", "alice:$y$new:1000:1000::/home/alice::\r\nbob:x\n",
                 PasswdChange::Replaced},
        EditCase{"alice:$6$old", "alice", "$y$new", "alice:$y$new", PasswdChange::Replaced},
        EditCase{"alice:$6$old\r\n", "alice", "$y$new", "alice:$y$new\r\n", PasswdChange::Replaced},
        // Only the exact name: not a longer one, a comment or a prefix.
        EditCase{"alicex:$6$a\n#alice:$6$c\nalic:$6$d\n", "alice", "$y$new",
                 "alicex:$6$a\n#alice:$6$c\nalic:$6$d\nalice:$y$new\n", PasswdChange::Added},
        EditCase{"# c\nalice:$6$old\nbob:$6$b\n", "alice", nullptr, "# c\nbob:$6$b\n",
                 PasswdChange::Deleted},
        EditCase{"bob:$6$b\nalice:$6$old", "alice", nullptr, "bob:$6$b\n", PasswdChange::Deleted},
        EditCase{"bob:$6$b\n", "alice", nullptr, "bob:$6$b\n", PasswdChange::NotFound}));

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_all(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::size_t entries_in(const std::string& dir) {
  std::size_t n = 0;
  DIR* d = ::opendir(dir.c_str());
  while (dirent* e = ::readdir(d))
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  ::closedir(d);
  return n;
}

bool verifies(const std::string& path, const std::string& user, const std::string& password) {
  std::string error;
  auto file = PasswdFile::load(path, &error);
  EXPECT_TRUE(file) << error;
  if (!file || !file->hash_of(user)) return false;
  return verify_password(password, *file->hash_of(user));
}

TEST(PasswdUpdate, NewFileIs0640AndTheEntryVerifies) {
  queue::testing::TempDir dir;
  const std::string path = dir.path() + "/passwd";
  const std::string hash = hash_password("correct horse");
  EXPECT_EQ(hash.substr(0, 3), "$y$");
  EXPECT_EQ(update_passwd_file(path, "alice", &hash), PasswdChange::Added);
  EXPECT_EQ(mode_of(path), 0640u);
  EXPECT_EQ(read_all(path), "alice:" + hash + "\n");
  EXPECT_TRUE(verifies(path, "alice", "correct horse"));
  EXPECT_FALSE(verifies(path, "alice", "correct horsE"));
  EXPECT_EQ(entries_in(dir.path()), 1u);  // no temporary file left
}

TEST(PasswdUpdate, ReplacesKeepingModeOtherLinesAndComments) {
  queue::testing::TempDir dir;
  const std::string path = dir.path() + "/passwd";
  const std::string bob = hash_password("bob-pw");
  const std::string old = hash_password("old-pw");
  write_all(path, "# Estafette users\n\nbob:" + bob + ":1000:1000::/home/bob::\nalice:" + old +
                      ":extra\n# end\n");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  const std::string now = hash_password("new-pw");
  EXPECT_EQ(update_passwd_file(path, "alice", &now), PasswdChange::Replaced);
  EXPECT_EQ(read_all(path), "# Estafette users\n\nbob:" + bob +
                                ":1000:1000::/home/bob::\nalice:" + now + ":extra\n# end\n");
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_TRUE(verifies(path, "alice", "new-pw"));
  EXPECT_FALSE(verifies(path, "alice", "old-pw"));
  EXPECT_TRUE(verifies(path, "bob", "bob-pw"));

  EXPECT_EQ(update_passwd_file(path, "alice", nullptr), PasswdChange::Deleted);
  EXPECT_EQ(read_all(path), "# Estafette users\n\nbob:" + bob + ":1000:1000::/home/bob::\n# end\n");
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(update_passwd_file(path, "alice", nullptr), PasswdChange::NotFound);
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(PasswdUpdate, RefusesASymlinkAndLeavesItsTarget) {
  queue::testing::TempDir dir;
  const std::string target = dir.path() + "/shadow";
  const std::string link = dir.path() + "/passwd";
  write_all(target, "root:x\n");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  const std::string hash = hash_password("pw");
  try {
    update_passwd_file(link, "alice", &hash);
    ADD_FAILURE() << "a symlink was followed or replaced";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), link + ": is a symbolic link; refusing to replace it");
  }
  EXPECT_EQ(read_all(target), "root:x\n");
  char buf[256] = {};
  EXPECT_GT(::readlink(link.c_str(), buf, sizeof buf - 1), 0);  // still the link
  EXPECT_EQ(entries_in(dir.path()), 2u);
}

TEST(PasswdUpdate, RefusesBadUserNamesAndFilesThatWouldNotLoad) {
  queue::testing::TempDir dir;
  const std::string path = dir.path() + "/passwd";
  const std::string hash = hash_password("pw");
  for (const char* user : {"", "a:b", "a b", "a\tb", "a\nb", "a\x7f", "\x01"}) {
    EXPECT_THROW(update_passwd_file(path, user, &hash), std::runtime_error) << user;
    EXPECT_NE(::access(path.c_str(), F_OK), 0) << "written for " << user;
  }
  write_all(path, "bob:plaintext\n");  // the backend would refuse it: so do we
  try {
    update_passwd_file(path, "alice", &hash);
    ADD_FAILURE() << "wrote a file the backend cannot load";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              path +
                  ": line 1: not a crypt(3) hash this system can check (the file would not "
                  "load; nothing written)");
  }
  EXPECT_EQ(read_all(path), "bob:plaintext\n");
  EXPECT_THROW(update_passwd_file(dir.path(), "alice", &hash), std::runtime_error);  // a dir
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

}  // namespace
}  // namespace estafette::auth
