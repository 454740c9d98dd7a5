#include "lib/queue/queue_id.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "lib/queue/checksum.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

// [0-9A-Z]{9}-[0-9A-Z]{5,}-[0-9A-Z]{8,} (pid and key), or with "i[0-9A-Z]{7,}" (an instance)
// in the middle
bool has_id_format(const std::string& id) {
  auto upper36 = [](std::string_view s) {
    return s.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string_view::npos;
  };
  auto first = id.find('-'), last = id.rfind('-');
  if (first != 9 || last == first || id.size() - last - 1 < 8 || last - first - 1 < 5) return false;
  std::string_view v = id;
  std::string_view middle = v.substr(first + 1, last - first - 1);
  if (middle.front() == 'i') {
    middle.remove_prefix(1);
    if (middle.size() < 7) return false;
  }
  return upper36(v.substr(0, first)) && upper36(middle) && upper36(v.substr(last + 1));
}

// Runs body in a forked child (claims change this process's ids: the tests keep them out of the
// test process); the child's exit status is body's result.
bool in_child(const std::function<bool()>& body) {
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    bool ok = false;
    try {
      ok = body();
    } catch (...) {
    }
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
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

// Collision-free by construction: each process of a queue claims an instance number the queue's
// instance file gives no other process, concurrent claims included (flock), and its ids carry it.
TEST(QueueId, ConcurrentProcessesClaimDistinctInstances) {
  testing::TempDir dir;
  constexpr int kChildren = 8, kPerChild = 2000;
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      bool ok = true;
      try {
        claim_queue_id_instance(dir.path());
      } catch (...) {
        ok = false;
      }
      std::ofstream out(dir.sub("ids" + std::to_string(c)));
      out << queue_id_instance() << '\n';
      for (int i = 0; i < kPerChild; ++i) out << make_queue_id() << '\n';
      out.close();
      ::_exit(ok && out ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::set<std::string> instances, ids;
  for (int c = 0; c < kChildren; ++c) {
    std::ifstream in(dir.sub("ids" + std::to_string(c)));
    std::string instance;
    std::getline(in, instance);
    instances.insert(instance);
    for (std::string line; std::getline(in, line);) {
      EXPECT_TRUE(has_id_format(line)) << line;
      EXPECT_NE(line.find("-i"), std::string::npos) << line;
      ids.insert(line);
    }
  }
  std::set<std::string> expected;
  for (int i = 1; i <= kChildren; ++i) expected.insert(std::to_string(i));
  EXPECT_EQ(instances, expected);  // 1..8, each once
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kChildren * kPerChild));
  EXPECT_EQ(testing::read_file(dir.sub("instance")), std::to_string(kChildren) + "\n");
  struct stat st {};
  ASSERT_EQ(::stat(dir.sub("instance").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

// Two processes with the same pid (reused), the same millisecond (a clock step back) and the
// same counter still differ: the ids hold only the time, the instance and the counter.
TEST(QueueId, IdsDependOnTheInstanceNotThePid) {
  testing::TempDir dir;
  auto middle = [](const QueueId& id) {
    auto first = id.find('-'), last = id.rfind('-');
    return id.substr(first + 1, last - first - 1);
  };
  EXPECT_TRUE(in_child([&] {
    claim_queue_id_instance(dir.path());
    QueueId a = make_queue_id();
    claim_queue_id_instance(dir.path());  // a restart, as far as the queue is concerned
    QueueId b = make_queue_id();
    return middle(a) == "i0000001" && middle(b) == "i0000002" && has_id_format(a);
  }));
}

// A fork()ed child of a process that claimed an instance claims its own on its first id.
TEST(QueueId, ForkedChildClaimsAgain) {
  testing::TempDir dir;
  EXPECT_TRUE(in_child([&] {
    claim_queue_id_instance(dir.path());
    std::string parent = make_queue_id();
    return in_child([&] {
             std::string child = make_queue_id();
             return child.find("-i0000002-") != std::string::npos && queue_id_instance() == 2;
           }) &&
           parent.find("-i0000001-") != std::string::npos;
  }));
  EXPECT_EQ(testing::read_file(dir.sub("instance")), "2\n");
}

// A damaged file (not a number) restarts above any number it can have handed out: the time in
// milliseconds. A planted symlink or a directory is refused, its target untouched.
TEST(QueueId, DamagedOrPlantedInstanceFile) {
  testing::TempDir dir;
  testing::write_file(dir.sub("instance"), "12x\n");
  const std::uint64_t before_ms = static_cast<std::uint64_t>(::time(nullptr)) * 1000;
  EXPECT_TRUE(in_child([&] {
    claim_queue_id_instance(dir.path());
    return queue_id_instance() > before_ms;
  }));
  testing::write_file(dir.sub("instance"), std::string(40, '9'));  // too long for a number
  EXPECT_TRUE(in_child([&] {
    claim_queue_id_instance(dir.path());
    return queue_id_instance() > before_ms;
  }));

  testing::TempDir planted;
  testing::write_file(planted.sub("target"), "41\n");
  ASSERT_EQ(::symlink(planted.sub("target").c_str(), planted.sub("instance").c_str()), 0);
  EXPECT_TRUE(in_child([&] {
    try {
      claim_queue_id_instance(planted.path());
    } catch (const std::system_error&) {
      // Refused; the ids fall back to pid and key.
      return queue_id_instance() == 0 && has_id_format(make_queue_id());
    }
    return false;
  }));
  EXPECT_EQ(testing::read_file(planted.sub("target")), "41\n");
  ASSERT_EQ(::unlink(planted.sub("instance").c_str()), 0);
  ASSERT_EQ(::mkdir(planted.sub("instance").c_str(), 0700), 0);
  EXPECT_TRUE(in_child([&] {
    try {
      claim_queue_id_instance(planted.path());
    } catch (const std::system_error&) {
      return true;
    }
    return false;
  }));
}

// The daemons' way in: open_queue() opens the backend and claims; a queue dir where the claim
// fails still opens (ids fall back, logged).
TEST(QueueId, OpenQueueClaims) {
  testing::TempDir dir;
  EXPECT_TRUE(in_child([&] {
    auto backend = open_queue("segment", dir.path());
    return backend && queue_id_instance() == 1;
  }));
  testing::TempDir planted;
  ASSERT_EQ(::symlink("/dev/null", planted.sub("instance").c_str()), 0);
  EXPECT_TRUE(in_child([&] {
    auto backend = open_queue("file", planted.path());
    return backend && queue_id_instance() == 0 && has_id_format(make_queue_id());
  }));
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
