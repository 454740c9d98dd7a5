#include "lib/queue/queue_id.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "lib/queue/checksum.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

// [0-9A-Z]{9}-[0-9A-Z]{5,}-[0-9A-Z]{8}
bool has_id_format(const std::string& id) {
  auto upper36 = [](std::string_view s) {
    return s.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string_view::npos;
  };
  auto first = id.find('-'), last = id.rfind('-');
  if (first != 9 || last == first || id.size() - last - 1 != 8 || last - first - 1 < 5)
    return false;
  std::string_view v = id;
  return upper36(v.substr(0, first)) && upper36(v.substr(first + 1, last - first - 1)) &&
         upper36(v.substr(last + 1));
}

TEST(QueueId, HasTimePidCounterFormat) {
  QueueId id = make_queue_id();
  EXPECT_TRUE(has_id_format(id)) << id;
  EXPECT_TRUE(valid_queue_id(id));
  EXPECT_FALSE(has_id_format("0LWQ3K9ZA-02BXF-00A1K3P"));
  EXPECT_FALSE(has_id_format("0LWQ3K9ZA-02BX-00A1K3P0"));
  EXPECT_FALSE(has_id_format("0LWQ3K9Za-02BXF-00A1K3P0"));
}

TEST(QueueId, SortsByTime) {
  QueueId a = make_queue_id();
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  QueueId b = make_queue_id();
  EXPECT_LT(a.substr(0, 9), b.substr(0, 9));
}

TEST(QueueId, UniqueAcrossThreads) {
  constexpr int kThreads = 4, kPerThread = 20000;
  std::mutex mutex;
  std::set<QueueId> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<QueueId> mine;
      for (int i = 0; i < kPerThread; ++i) mine.push_back(make_queue_id());
      std::lock_guard lock(mutex);
      ids.insert(mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(QueueId, UniqueAcrossForkedProcesses) {
  testing::TempDir dir;
  constexpr int kChildren = 4, kPerChild = 5000;
  make_queue_id();  // the children inherit a used counter
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::ofstream out(dir.sub("ids" + std::to_string(c)));
      for (int i = 0; i < kPerChild; ++i) out << make_queue_id() << '\n';
      out.close();
      ::_exit(out ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::set<QueueId> ids;
  for (int c = 0; c < kChildren; ++c) {
    std::ifstream in(dir.sub("ids" + std::to_string(c)));
    for (std::string line; std::getline(in, line);) ids.insert(line);
  }
  for (int i = 0; i < kPerChild; ++i) ids.insert(make_queue_id());
  EXPECT_EQ(ids.size(), static_cast<std::size_t>((kChildren + 1) * kPerChild));
}

// The part after the pid is a key drawn per process, and again in a fork()ed child: a child
// whose pid an earlier process had gets a key of its own, so it cannot repeat that process's ids
// (a clock step back plus pid reuse made the old 20 random bits collide).
TEST(QueueId, EachProcessHasItsOwnKey) {
  auto key = [](const QueueId& id) {
    auto first = id.find('-'), last = id.rfind('-');
    return id.substr(first + 6, last - first - 6);  // after the 5 pid digits
  };
  QueueId a = make_queue_id(), b = make_queue_id();
  ASSERT_EQ(key(a).size(), 13u) << a;
  EXPECT_EQ(key(a), key(b));  // one process, one key
  EXPECT_NE(a.substr(a.rfind('-')), b.substr(b.rfind('-')));
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string id = make_queue_id();
    ::_exit(::write(pipe_fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  char buf[128];
  ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_GT(n, 0);
  QueueId child(buf, static_cast<std::size_t>(n));
  EXPECT_NE(key(child), key(a)) << child << " " << a;
}

struct IdCase {
  std::string id;
  bool valid;
};

void PrintTo(const IdCase& c, std::ostream* os) {
  *os << ::testing::PrintToString(c.id);
}

class QueueIdValid : public ::testing::TestWithParam<IdCase> {};

TEST_P(QueueIdValid, Classifies) {
  EXPECT_EQ(valid_queue_id(GetParam().id), GetParam().valid);
}

INSTANTIATE_TEST_SUITE_P(Queue, QueueIdValid,
                         ::testing::Values(IdCase{"1KX8ZQ2-00F3A1-0001", true},
                                           IdCase{"abcXYZ-09", true}, IdCase{"a", true},
                                           IdCase{std::string(64, 'a'), true},
                                           IdCase{std::string(65, 'a'), false}, IdCase{"", false},
                                           IdCase{"..", false}, IdCase{"a/b", false},
                                           IdCase{"a b", false}, IdCase{"a\n", false},
                                           IdCase{"a.done", false}, IdCase{"a_b", false},
                                           IdCase{std::string("a\0b", 3), false}));

TEST(QueueChecksum, KnownVectors) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(crc32c_portable(0, "123456789"), 0xE3069283u);
}

// The hardware path (when the CPU has it) and the tables agree at every length and alignment.
TEST(QueueChecksum, FastPathEqualsPortableTables) {
  std::string data = testing::test_body(1000, 3);
  for (std::size_t start = 0; start < 9; ++start) {
    for (std::size_t len = 0; start + len <= data.size(); len += 7) {
      std::string_view v = std::string_view(data).substr(start, len);
      EXPECT_EQ(crc32c_update(0x1234u, v), crc32c_portable(0x1234u, v)) << start << " " << len;
    }
  }
}

TEST(QueueChecksum, IncrementalEqualsOneShotAtEverySplit) {
  std::string data = testing::test_body(301, 7);
  std::uint32_t whole = crc32c(data);
  for (std::size_t split = 0; split <= data.size(); ++split) {
    std::string_view v = data;
    EXPECT_EQ(crc32c_update(crc32c(v.substr(0, split)), v.substr(split)), whole) << split;
  }
}

}  // namespace
}  // namespace estafette::queue
