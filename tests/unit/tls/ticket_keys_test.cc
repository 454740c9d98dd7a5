// shared_ticket_keys(): one set of keys for every caller, renewed when old, and the file
// refused when a local user could have planted or read it (a real file system).
#include "lib/tls/ticket_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "lib/tls/context.h"
#include "tests/unit/queue/queue_test_util.h"  // TempDir

namespace estafette::tls {
namespace {

using std::chrono::seconds;

class TicketKeysTest : public ::testing::Test {
 protected:
  void age_file(int by_seconds) {
    struct timeval times[2] = {{::time(nullptr) - by_seconds, 0},
                               {::time(nullptr) - by_seconds, 0}};
    ASSERT_EQ(::utimes(path_.c_str(), times), 0);
  }
  queue::testing::TempDir tmp_;
  std::string dir_ = tmp_.path(), path_ = tmp_.sub("tls-ticket-keys");
};

TEST_F(TicketKeysTest, EveryCallerGetsTheSameKeysUntilTheyAreOld) {
  TicketKeys first = shared_ticket_keys(path_, seconds(3600));
  TicketKeys again = shared_ticket_keys(path_, seconds(3600));
  EXPECT_EQ(first, again);
  EXPECT_NE(first, TicketKeys{});
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, static_cast<off_t>(kTicketKeyBytes));
  age_file(1700);  // less than half of the hour: kept
  EXPECT_EQ(shared_ticket_keys(path_, seconds(3600)), first);
  age_file(1900);  // more: renewed, and the new keys are what the next caller gets
  TicketKeys renewed = shared_ticket_keys(path_, seconds(3600));
  EXPECT_NE(renewed, first);
  EXPECT_EQ(shared_ticket_keys(path_, seconds(3600)), renewed);
}

// A file written a moment ago can carry an mtime a little ahead of time() (fine-grained file
// timestamps against the coarse clock): still fresh. Far in the future: not trusted, renewed.
TEST_F(TicketKeysTest, AnMtimeJustAheadOfTheClockIsFresh) {
  TicketKeys keys = shared_ticket_keys(path_, seconds(3600));
  age_file(-1);
  EXPECT_EQ(shared_ticket_keys(path_, seconds(3600)), keys);
  age_file(-600);
  EXPECT_NE(shared_ticket_keys(path_, seconds(3600)), keys);
}

TEST_F(TicketKeysTest, AShortFileIsReplaced) {
  std::ofstream(path_) << "short";
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  TicketKeys keys = shared_ticket_keys(path_, seconds(3600));
  EXPECT_EQ(shared_ticket_keys(path_, seconds(3600)), keys);
}

TEST_F(TicketKeysTest, RefusesASymlinkAHardLinkAndAReadableFile) {
  std::string target = dir_ + "/target";
  std::ofstream(target) << std::string(kTicketKeyBytes, 'k');
  ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
  ASSERT_EQ(::symlink(target.c_str(), path_.c_str()), 0);
  EXPECT_THROW(shared_ticket_keys(path_, seconds(3600)), Error);  // O_NOFOLLOW
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  ASSERT_EQ(::link(target.c_str(), path_.c_str()), 0);
  EXPECT_THROW(shared_ticket_keys(path_, seconds(3600)), Error);  // two links
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  std::ifstream in(target);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, std::string(kTicketKeyBytes, 'k'));  // never written through either
  std::ofstream(path_) << std::string(kTicketKeyBytes, 'k');
  ASSERT_EQ(::chmod(path_.c_str(), 0640), 0);
  EXPECT_THROW(shared_ticket_keys(path_, seconds(3600)), Error);  // group may read it
}

TEST_F(TicketKeysTest, RootGivesTheFileToTheUserAndRefusesAnotherUsersFile) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  shared_ticket_keys(path_, seconds(3600), FileOwner{65534, 65534});
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  // Root without that owner in mind, or for someone else: not root's file, refused.
  EXPECT_THROW(shared_ticket_keys(path_, seconds(3600)), Error);
  EXPECT_THROW(shared_ticket_keys(path_, seconds(3600), FileOwner{1, 1}), Error);
}

}  // namespace
}  // namespace estafette::tls
