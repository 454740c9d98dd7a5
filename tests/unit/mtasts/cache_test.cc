// lib/mtasts/cache.h on a real directory: a stored policy reads back; files that are corrupt,
// oversized, filed under another domain or symlinks are ignored with a reason; the number of
// entries is bounded (expired first, then the oldest); temporary files do not linger.
#include "lib/mtasts/cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>

#include "tests/unit/queue/queue_test_util.h"  // TempDir

namespace estafette::mtasts {
namespace {

using queue::testing::TempDir;

CachedPolicy entry(const std::string& domain, std::int64_t fetched, std::uint32_t max_age = 86400) {
  CachedPolicy e;
  e.domain = domain;
  e.id = "id1";
  e.policy.mode = Mode::Enforce;
  e.policy.max_age = max_age;
  e.policy.mx = {"mx.example.test", "*.example.test"};
  e.fetched = fetched;
  return e;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::size_t files_in(const std::string& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& f : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(PolicyCache, StoresAndLoads) {
  TempDir dir;
  PolicyCache cache(dir.path(), 10);
  std::string why;
  EXPECT_FALSE(cache.load("example.test", &why));
  EXPECT_EQ(why, "");  // none is not a problem
  ASSERT_TRUE(cache.store(entry("example.test", 1000), &why)) << why;
  auto e = cache.load("example.test", &why);
  ASSERT_TRUE(e) << why;
  EXPECT_EQ(e->id, "id1");
  EXPECT_EQ(e->policy.mode, Mode::Enforce);
  EXPECT_EQ(e->policy.mx, (std::vector<std::string>{"mx.example.test", "*.example.test"}));
  EXPECT_EQ(e->fetched, 1000);
  EXPECT_EQ(e->expires(), 1000 + 86400);
  EXPECT_EQ(files_in(dir.path()), 1u);  // no temporary file left
  // Replaced whole.
  auto newer = entry("example.test", 2000);
  newer.id = "id2";
  newer.policy.mode = Mode::Testing;
  ASSERT_TRUE(cache.store(newer, &why)) << why;
  EXPECT_EQ(cache.load("example.test", &why)->id, "id2");
  EXPECT_EQ(files_in(dir.path()), 1u);
}

TEST(PolicyCache, MakesItsDirectoryButNotItsParents) {
  TempDir dir;
  PolicyCache cache(dir.sub("mta-sts"), 10);
  std::string why;
  ASSERT_TRUE(cache.store(entry("example.test", 1000), &why)) << why;
  EXPECT_TRUE(cache.load("example.test", &why)) << why;
  struct stat st;
  ASSERT_EQ(::stat(dir.sub("mta-sts").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  PolicyCache deeper(dir.sub("a/b"), 10);
  EXPECT_FALSE(deeper.store(entry("example.test", 1000), &why));
  EXPECT_NE(why.find("No such file"), std::string::npos) << why;
}

TEST(PolicyCache, RefusesNamesThatAreNotDomains) {
  TempDir dir;
  PolicyCache cache(dir.path(), 10);
  std::string why;
  EXPECT_FALSE(cache.store(entry("../escape", 1), &why));
  EXPECT_FALSE(cache.store(entry("Upper.Test", 1), &why));  // callers normalize first
  EXPECT_EQ(files_in(dir.path()), 0u);
}

TEST(PolicyCache, IgnoresBadFiles) {
  TempDir dir;
  PolicyCache cache(dir.path(), 10);
  std::string good = format_entry(entry("example.test", 1000));
  std::string why;
  struct Bad {
    std::string text;
    std::string reason;
  };
  std::string huge = good + "x: " + std::string(kMaxFileSize, 'a') + "\n";
  for (const Bad& b :
       {Bad{"", "not an estafette"}, Bad{"garbage\n", "not an estafette"},
        Bad{good.substr(0, good.size() - 15), "policy"},
        Bad{format_entry(entry("other.test", 1)), "not the policy of"}, Bad{huge, "larger than"}}) {
    write(dir.sub("example.test"), b.text);
    EXPECT_FALSE(cache.load("example.test", &why)) << b.reason;
    EXPECT_NE(why.find(b.reason), std::string::npos) << why;
  }
  // A symlink to a good file elsewhere is not followed.
  write(dir.sub("elsewhere"), good);
  ::unlink(dir.sub("example.test").c_str());
  ASSERT_EQ(::symlink(dir.sub("elsewhere").c_str(), dir.sub("example.test").c_str()), 0);
  EXPECT_FALSE(cache.load("example.test", &why));
  EXPECT_FALSE(why.empty());
  // A corrupt file is replaced by the next store.
  ::unlink(dir.sub("example.test").c_str());
  write(dir.sub("example.test"), "junk");
  ASSERT_TRUE(cache.store(entry("example.test", 5), &why)) << why;
  EXPECT_TRUE(cache.load("example.test", &why));
}

TEST(PolicyCache, BoundedExpiredFirstThenOldest) {
  TempDir dir;
  PolicyCache cache(dir.path(), 3);
  std::time_t now = std::time(nullptr);
  std::string why;
  ASSERT_TRUE(cache.store(entry("a.test", now), &why));
  ASSERT_TRUE(cache.store(entry("b.test", now - 100000, 10), &why));  // expired
  ASSERT_TRUE(cache.store(entry("c.test", now), &why));
  // mtimes: a oldest among the unexpired.
  struct timespec old[2] = {{now - 50, 0}, {now - 50, 0}};
  ::utimensat(AT_FDCWD, dir.sub("a.test").c_str(), old, 0);
  ASSERT_TRUE(cache.store(entry("d.test", now), &why));
  EXPECT_EQ(files_in(dir.path()), 3u);
  EXPECT_FALSE(cache.load("b.test", &why));  // the expired one went first
  EXPECT_TRUE(cache.load("a.test", &why));
  ASSERT_TRUE(cache.store(entry("e.test", now), &why));
  EXPECT_EQ(files_in(dir.path()), 3u);
  EXPECT_FALSE(cache.load("a.test", &why));  // then the oldest
  EXPECT_TRUE(cache.load("c.test", &why));
  EXPECT_TRUE(cache.load("d.test", &why));
  EXPECT_TRUE(cache.load("e.test", &why));
}

TEST(PolicyCache, OldTemporaryFilesGo) {
  TempDir dir;
  PolicyCache cache(dir.path(), 10);
  write(dir.sub(".a.test.1.2.tmp"), "half");
  std::time_t now = std::time(nullptr);
  struct timespec old[2] = {{now - 7200, 0}, {now - 7200, 0}};
  ::utimensat(AT_FDCWD, dir.sub(".a.test.1.2.tmp").c_str(), old, 0);
  write(dir.sub(".b.test.1.2.tmp"), "being written now");
  std::string why;
  ASSERT_TRUE(cache.store(entry("a.test", now), &why));
  EXPECT_FALSE(std::filesystem::exists(dir.sub(".a.test.1.2.tmp")));
  EXPECT_TRUE(std::filesystem::exists(dir.sub(".b.test.1.2.tmp")));
}

}  // namespace
}  // namespace estafette::mtasts
