// SessionTable: counts shared between tables (as between esmtpd processes), released by RAII,
// and a dead table's row swept.
#include "esmtpd/session_table.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
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

// A key under which the addresses below fall into different buckets (the default key is random).
constexpr base::SipKey kKey = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

TEST_F(SessionTableTest, CountsAddressesAndNetworksAcrossTables) {
  // Two open file descriptions: two rows, as two processes; IPv6 per address here.
  SessionTable a(path_, 128, &kKey), b(path_, 128);
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

TEST_F(SessionTableTest, IPv6CountsPerPrefixByDefault) {
  SessionTable table(path_, 64, &kKey);
  auto s1 = table.add("2001:db8:0:1::1");
  auto s2 = table.add("2001:db8:0:1:ffff:ffff:ffff:ffff");  // the same /64: one client
  EXPECT_EQ(table.counts("2001:db8:0:1::1").address, 2u);
  EXPECT_EQ(table.counts("2001:db8:0:1:1234::").address, 2u);
  EXPECT_EQ(table.counts("2001:db8:0:2::1").address, 0u);  // the next /64
  EXPECT_EQ(table.counts("192.0.2.1").address, 0u);
  auto s3 = table.add("192.0.2.1");
  EXPECT_EQ(table.counts("192.0.2.2").address, 0u);  // IPv4 stays per address
}

TEST_F(SessionTableTest, PrefixLengthIsConfigurable) {
  SessionTable table(path_, 48, &kKey);
  auto s1 = table.add("2001:db8:1:1::1");
  EXPECT_EQ(table.counts("2001:db8:1:ffff::9").address, 1u);  // same /48
  EXPECT_EQ(table.counts("2001:db8:2::1").address, 0u);
}

// Two IPv4 addresses sharing an address bucket under the table's key: found by trying
// (a birthday search, about 100 tries for 4096 buckets). Empty strings if none.
std::pair<std::string, std::string> colliding_pair(SessionTable& table, int salt) {
  std::vector<std::string> tried;
  std::vector<SessionTable::Slot> slots;
  for (int i = 0; i < 2000; ++i) {
    std::string ip = "10." + std::to_string(salt) + "." + std::to_string(i / 250) + "." +
                     std::to_string(i % 250 + 1);
    if (table.counts(ip).address > 0) {
      for (const auto& other : tried) {
        slots.clear();  // release all, then test one against the other
        slots.push_back(table.add(other));
        if (table.counts(ip).address == 1) return {other, ip};
      }
    }
    tried.push_back(ip);
    slots.push_back(table.add(ip));
  }
  return {};
}

TEST_F(SessionTableTest, BucketsDependOnARandomKeyDrawnAtEachFreshStart) {
  std::vector<std::pair<std::string, std::string>> pairs;
  {
    SessionTable first(path_);
    for (int salt = 0; salt < 3; ++salt) {
      pairs.push_back(colliding_pair(first, salt));
      ASSERT_FALSE(pairs.back().first.empty());
    }
    SessionTable joined(path_);  // a second process while the first lives: the same key
    for (const auto& [x, y] : pairs) {
      auto slot = joined.add(x);
      EXPECT_EQ(first.counts(y).address, 1u) << x << " " << y;
    }
  }
  // Every table closed: the next start draws another key, and the pairs (almost surely: the
  // chance that all three still collide is 4096^-3) fall apart.
  SessionTable second(path_);
  std::size_t still = 0;
  for (const auto& [x, y] : pairs) {
    auto slot = second.add(x);
    still += second.counts(y).address;
  }
  EXPECT_LT(still, pairs.size());
}

TEST_F(SessionTableTest, EveryRowTaken) {
  std::vector<std::unique_ptr<SessionTable>> tables;
  for (std::size_t i = 0; i < SessionTable::kRows; ++i)
    tables.push_back(std::make_unique<SessionTable>(path_));
  EXPECT_THROW(SessionTable extra(path_), std::runtime_error);
  tables.pop_back();
  EXPECT_NO_THROW(SessionTable again(path_));
}

TEST_F(SessionTableTest, AuthFailuresAddUpAcrossTablesWithinTheWindow) {
  SessionTable a(path_, 64, &kKey), b(path_, 64);
  constexpr std::uint32_t kWindow = 600, kT0 = 1'000'000;
  a.add_auth_failure("192.0.2.1", kT0, kWindow);
  b.add_auth_failure("192.0.2.1", kT0 + 10, kWindow);
  b.add_auth_failure("192.0.2.1", kT0 + 20, kWindow);
  EXPECT_EQ(a.auth_failures("192.0.2.1", kT0 + 30, kWindow), 3u);
  EXPECT_EQ(b.auth_failures("::ffff:192.0.2.1", kT0 + 30, kWindow), 3u);
  EXPECT_EQ(a.auth_failures("192.0.2.2", kT0 + 30, kWindow), 0u);
  // IPv6: one /64 is one client.
  a.add_auth_failure("2001:db8::1", kT0, kWindow);
  EXPECT_EQ(b.auth_failures("2001:db8::ffff", kT0 + 1, kWindow), 1u);
  EXPECT_EQ(b.auth_failures("2001:db8:0:1::1", kT0 + 1, kWindow), 0u);
  // a's window (from kT0) is over at kT0 + 600; b's (from kT0 + 10) ten seconds later.
  EXPECT_EQ(a.auth_failures("192.0.2.1", kT0 + kWindow, kWindow), 2u);
  EXPECT_EQ(a.auth_failures("192.0.2.1", kT0 + kWindow + 10, kWindow), 0u);
  // A failure after the window starts a new one.
  a.add_auth_failure("192.0.2.1", kT0 + 2 * kWindow, kWindow);
  EXPECT_EQ(b.auth_failures("192.0.2.1", kT0 + 2 * kWindow, kWindow), 1u);
  EXPECT_EQ(a.auth_failures("bogus", kT0, kWindow), 0u);
}

TEST_F(SessionTableTest, AuthFailuresOfADeadProcessAreSwept) {
  SessionTable a(path_, 64, &kKey);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SessionTable child(path_, 64);
    child.add_auth_failure("192.0.2.9", 5000, 600);
    ::_exit(child.auth_failures("192.0.2.9", 5001, 600) == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(a.auth_failures("192.0.2.9", 5001, 600), 1u);  // until its row is swept
  a.sweep();
  EXPECT_EQ(a.auth_failures("192.0.2.9", 5001, 600), 0u);
}

}  // namespace
}  // namespace estafette::esmtpd
