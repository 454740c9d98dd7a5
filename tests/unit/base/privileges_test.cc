// Table tests for the pure parts of lib/base/paths (is the program installed?) and
// lib/base/privileges (account lookup). Dropping privileges itself is tested with real
// processes as root: tests/integration/privileges_test.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "lib/base/paths.h"
#include "lib/base/privileges.h"

namespace estafette::base {
namespace {

struct InstallCase {
  std::string exe_dir;
  bool installed;
};

class IsInstallDir : public ::testing::TestWithParam<InstallCase> {};

TEST_P(IsInstallDir, Table) {
  const std::vector<std::string> dirs = {"/usr/local/bin", "/usr/local/sbin",
                                         "/usr/local/libexec/estafette"};
  EXPECT_EQ(is_install_dir(GetParam().exe_dir, dirs), GetParam().installed) << GetParam().exe_dir;
}

INSTANTIATE_TEST_SUITE_P(
    Paths, IsInstallDir,
    ::testing::Values(InstallCase{"/usr/local/sbin", true}, InstallCase{"/usr/local/bin", true},
                      InstallCase{"/usr/local/libexec/estafette", true},
                      InstallCase{"/tmp/build-x", false},              // the build tree
                      InstallCase{"/tmp/dest/usr/local/sbin", false},  // a DESTDIR copy
                      InstallCase{"/usr/local/sbin/", false}, InstallCase{"/usr/local", false},
                      InstallCase{"", false}));

TEST(IsInstallDir, EmptyDirsNeverMatch) {
  EXPECT_FALSE(is_install_dir("", {""}));
}

TEST(RunningInstalled, NotFromTheBuildTree) {
  EXPECT_FALSE(running_installed());
}

TEST(FindAccount, RootAndMissing) {
  auto root = find_account("root");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->name, "root");
  EXPECT_FALSE(find_account("no-such-user-estafette-test"));
}

TEST(RequireAccount, NamesTheUserAndWhere) {
  try {
    require_account("no-such-user-estafette-test", "/etc/x.conf");
    FAIL() << "no exception";
  } catch (const PrivilegeError& e) {
    EXPECT_NE(std::string(e.what()).find("user 'no-such-user-estafette-test' (/etc/x.conf)"),
              std::string::npos)
        << e.what();
  }
}

TEST(DropPrivileges, NotRootFailsClearly) {
  if (::geteuid() == 0) GTEST_SKIP() << "runs as root: tests/integration/privileges_test.py";
  Account other{"other", ::getuid() + 1, ::getgid()};
  EXPECT_THROW(drop_privileges(other), PrivilegeError);
}

}  // namespace
}  // namespace estafette::base
