// lib/base/safe_dir: the no-follow directory walk on a real file system. A symlink planted at
// any level stops the walk and nothing is created through it; a directory of another user or
// writable by others (without the sticky bit) is refused. Cases needing a second uid run as
// root only (they chown a directory to nobody).
#include "lib/base/safe_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

namespace estafette::base {
namespace {

class SafeDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/estafette-safedir-XXXXXX";
    ASSERT_TRUE(::mkdtemp(tmpl));
    top_ = tmpl;
    ::chmod(top_.c_str(), 0700);
  }
  void TearDown() override {
    [[maybe_unused]] int rc = ::system(("rm -rf '" + top_ + "'").c_str());
  }
  bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
  }
  std::string top_;
};

TEST(UntrustedDir, Table) {
  EXPECT_EQ(untrusted_dir(0, S_IFDIR | 0755, 0), "");
  EXPECT_EQ(untrusted_dir(1000, S_IFDIR | 0700, 1000), "");  // our own, not root
  EXPECT_EQ(untrusted_dir(0, S_IFDIR | 01777, 1000), "");    // /tmp
  EXPECT_EQ(untrusted_dir(1000, S_IFDIR | 0700, 0), "owned by uid 1000");
  EXPECT_EQ(untrusted_dir(0, S_IFDIR | 0775, 0), "writable by group or others (no sticky bit)");
  EXPECT_EQ(untrusted_dir(0, S_IFDIR | 0757, 0), "writable by group or others (no sticky bit)");
}

TEST_F(SafeDir, CreatesAndOpens) {
  std::string why;
  UniqueFd fd = open_dir(top_ + "/a/b/c", {.create = true}, &why);
  ASSERT_TRUE(fd) << why;
  EXPECT_TRUE(exists(top_ + "/a/b/c"));
  struct stat st {};
  ASSERT_EQ(::stat((top_ + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  // Opened again without create; a missing one is ENOENT.
  EXPECT_TRUE(open_dir(top_ + "/a/b/c", {}));
  EXPECT_FALSE(open_dir(top_ + "/a/x", {}));
  EXPECT_EQ(errno, ENOENT);
  UniqueFd b = open_dir(top_ + "/a/b", {});
  ASSERT_TRUE(b);
  EXPECT_TRUE(open_dir_at(b.get(), top_ + "/a/b", "c", {}));
  EXPECT_FALSE(open_dir_at(b.get(), top_ + "/a/b", "../b", {}, &why));
  EXPECT_EQ(errno, EINVAL);
}

// The attack of issue 13 item 9: alice/new -> /some/dir (here a directory of the test's).
TEST_F(SafeDir, NeverFollowsASymlinkAtAnyLevel) {
  const std::string target = top_ + "/target";
  ASSERT_EQ(::mkdir(target.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((top_ + "/maildir").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((top_ + "/maildir/alice").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(target.c_str(), (top_ + "/maildir/alice/new").c_str()), 0);
  std::string why;
  EXPECT_FALSE(open_dir(top_ + "/maildir/alice/new", {.create = true}, &why));
  EXPECT_EQ(errno, ELOOP);
  EXPECT_NE(why.find("alice/new: a symbolic link, not followed"), std::string::npos) << why;
  // A symlink higher up, with more below it to create: nothing is made in the target.
  ASSERT_EQ(::symlink(target.c_str(), (top_ + "/maildir/bob").c_str()), 0);
  EXPECT_FALSE(open_dir(top_ + "/maildir/bob/tmp", {.create = true}, &why));
  EXPECT_FALSE(exists(target + "/tmp"));
  UniqueFd maildir = open_dir(top_ + "/maildir", {});
  ASSERT_TRUE(maildir);
  EXPECT_FALSE(open_dir_at(maildir.get(), "maildir", "bob/new", {.create = true}, &why));
  EXPECT_FALSE(exists(target + "/new"));
}

TEST_F(SafeDir, RefusesDirectoriesOthersControl) {
  std::string why;
  ASSERT_EQ(::mkdir((top_ + "/open").c_str(), 0777), 0);
  ASSERT_EQ(::chmod((top_ + "/open").c_str(), 0777), 0);
  EXPECT_FALSE(open_dir(top_ + "/open/x", {.create = true}, &why));
  EXPECT_EQ(errno, EPERM);
  EXPECT_FALSE(exists(top_ + "/open/x"));
  // Not checked when asked not to, and the sticky bit makes it safe.
  EXPECT_TRUE(open_dir(top_ + "/open", {.trusted = false}));
  ASSERT_EQ(::chmod((top_ + "/open").c_str(), 01777), 0);
  EXPECT_TRUE(open_dir(top_ + "/open/x", {.create = true}, &why)) << why;
  if (::geteuid() != 0) GTEST_SKIP() << "a directory of another user needs root";
  ASSERT_EQ(::mkdir((top_ + "/theirs").c_str(), 0700), 0);
  ASSERT_EQ(::chown((top_ + "/theirs").c_str(), 65534, 65534), 0);
  EXPECT_FALSE(open_dir(top_ + "/theirs/alice", {.create = true}, &why));
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(why.find("owned by uid 65534"), std::string::npos) << why;
  EXPECT_FALSE(exists(top_ + "/theirs/alice"));
}

}  // namespace
}  // namespace estafette::base
