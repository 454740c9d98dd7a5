// SessionTable: counts shared between tables (as between esmtpd processes), released by RAII,
// and a dead table's row swept.
#include "esmtpd/session_table.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace estafette::esmtpd {
namespace {

class SessionTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/estafette-sessions-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/esmtpd.sessions";
  }
  void TearDown() override {
    std::string cmd = "rm -rf " + dir_;
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string dir_, path_;
};

TEST_F(SessionTableTest, CountsAddressesAndNetworksAcrossTables) {
  SessionTable a(path_), b(path_);  // two open file descriptions: two rows, as two processes
  EXPECT_NE(a.row(), b.row());
  auto s1 = a.add("192.0.2.1");
  auto s2 = b.add("192.0.2.1");
  auto s3 = b.add("192.0.2.77");
  auto s4 = a.add("2001:db8::1");
  EXPECT_EQ(a.counts("192.0.2.1").address, 2u);
  EXPECT_EQ(b.counts("192.0.2.1").network, 3u);
  EXPECT_EQ(a.counts("::ffff:192.0.2.1").address, 2u);  // mapped form is the same client
  EXPECT_EQ(a.counts("192.0.2.77").address, 1u);
  EXPECT_EQ(a.counts("198.51.100.1").address, 0u);
  EXPECT_EQ(a.counts("2001:db8::2").network, 1u);  // same /64
  EXPECT_EQ(a.counts("2001:db8::2").address, 0u);
  EXPECT_EQ(a.counts("bogus").address, 0u);
  s2.release();
  EXPECT_EQ(a.counts("192.0.2.1").address, 1u);
  {
    auto moved = std::move(s1);
    EXPECT_EQ(a.counts("192.0.2.1").address, 1u);
  }
  EXPECT_EQ(a.counts("192.0.2.1").address, 0u);
  EXPECT_EQ(a.counts("192.0.2.1").network, 1u);  // s3 still there
}

TEST_F(SessionTableTest, ADeadProcessRowIsSweptAndReused) {
  SessionTable live(path_);
  // A child process counts sessions and dies without releasing them (like a crash).
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SessionTable child(path_);
    auto* leak = new SessionTable::Slot(child.add("203.0.113.9"));
    (void)leak;
    ::_exit(child.counts("203.0.113.9").address == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(live.counts("203.0.113.9").address, 1u);  // stale until swept
  live.sweep();
  EXPECT_EQ(live.counts("203.0.113.9").address, 0u);
  // A held row is not swept.
  SessionTable other(path_);
  auto slot = other.add("203.0.113.10");
  live.sweep();
  EXPECT_EQ(live.counts("203.0.113.10").address, 1u);
}

TEST_F(SessionTableTest, EveryRowTaken) {
  std::vector<std::unique_ptr<SessionTable>> tables;
  for (std::size_t i = 0; i < SessionTable::kRows; ++i)
    tables.push_back(std::make_unique<SessionTable>(path_));
  EXPECT_THROW(SessionTable extra(path_), std::runtime_error);
  tables.pop_back();
  EXPECT_NO_THROW(SessionTable again(path_));
}

}  // namespace
}  // namespace estafette::esmtpd
