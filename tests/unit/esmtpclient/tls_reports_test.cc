// esmtpclient/tls_reports.h on a real directory: journal files per day and process, counts kept
// when a file cannot be written, at most kMaxDays days in memory; and the daily run time of
// estafetted's report job (supervisor.h).
#include "esmtpclient/tls_reports.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "supervisor/supervisor.h"
#include "tests/unit/queue/queue_test_util.h"  // TempDir

namespace estafette::esmtpclient {
namespace {

using queue::testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const tlsrpt::Policy kPolicy{tlsrpt::PolicyType::NoPolicyFound, "example.net", {}, {}};

std::string journal_path(const std::string& dir, const std::string& day) {
  return dir + "/" + day + "." + std::to_string(::getpid()) + ".journal";
}

TEST(TlsReports, FlushAppendsPerDayAndProcess) {
  TempDir dir;
  event::Loop loop;
  std::int64_t now = 1765065600;  // 2025-12-07T00:00:00Z
  TlsReports reports(loop, dir.path(), std::chrono::seconds(3600), [&] { return now; });
  reports.success(kPolicy);
  reports.failure(kPolicy, {tlsrpt::ResultType::StarttlsNotSupported, "127.0.0.1", "mx.example.net",
                            "127.0.0.2", ""});
  now += 86400;
  reports.success(kPolicy);
  ASSERT_TRUE(reports.flush());
  tlsrpt::Aggregate day1, day2;
  EXPECT_EQ(day1.merge_journal(slurp(journal_path(dir.path(), "2025-12-07"))), 0u);
  EXPECT_EQ(day2.merge_journal(slurp(journal_path(dir.path(), "2025-12-08"))), 0u);
  EXPECT_EQ(day1.policies().at(kPolicy).successes, 1u);
  EXPECT_EQ(day1.policies().at(kPolicy).failures, 1u);
  EXPECT_EQ(day2.policies().at(kPolicy).successes, 1u);
  // A second flush appends only what came after the first.
  reports.success(kPolicy);
  ASSERT_TRUE(reports.flush());
  tlsrpt::Aggregate again;
  again.merge_journal(slurp(journal_path(dir.path(), "2025-12-08")));
  EXPECT_EQ(again.policies().at(kPolicy).successes, 2u);
}

TEST(TlsReports, KeptWhenTheFileCannotBeWrittenAndNeverThroughASymlink) {
  TempDir dir;
  event::Loop loop;
  std::int64_t now = 1765065600;
  const std::string missing = dir.sub("tlsrpt");
  {
    TlsReports reports(loop, missing, std::chrono::seconds(3600), [&] { return now; });
    reports.success(kPolicy);
    EXPECT_FALSE(reports.flush());
    ASSERT_EQ(::mkdir(missing.c_str(), 0700), 0);
    // A link planted where the journal goes is not written through.
    const std::string target = dir.sub("target");
    std::ofstream(target) << "";
    ASSERT_EQ(::symlink(target.c_str(), journal_path(missing, "2025-12-07").c_str()), 0);
    EXPECT_FALSE(reports.flush());
    EXPECT_EQ(slurp(target), "");
    ASSERT_EQ(::unlink(journal_path(missing, "2025-12-07").c_str()), 0);
  }  // the destructor flushes what was kept
  tlsrpt::Aggregate a;
  EXPECT_EQ(a.merge_journal(slurp(journal_path(missing, "2025-12-07"))), 0u);
  EXPECT_EQ(a.policies().at(kPolicy).successes, 1u);
}

TEST(TlsReports, AtMostMaxDaysInMemory) {
  TempDir dir;
  event::Loop loop;
  std::int64_t now = 1765065600;
  const std::string missing = dir.sub("none");
  TlsReports reports(loop, missing, std::chrono::seconds(3600), [&] { return now; });
  for (std::size_t i = 0; i < TlsReports::kMaxDays + 2; ++i) {
    reports.success(kPolicy);
    now += 86400;
  }
  EXPECT_FALSE(reports.flush());
  ASSERT_EQ(::mkdir(missing.c_str(), 0700), 0);
  EXPECT_TRUE(reports.flush());
  std::size_t files = 0;
  for (std::size_t i = 0; i < TlsReports::kMaxDays + 2; ++i)
    files +=
        ::access(journal_path(missing, tlsrpt::utc_day(1765065600 + 86400 * i)).c_str(), F_OK) == 0;
  EXPECT_EQ(files, TlsReports::kMaxDays);
  // The oldest ones went.
  EXPECT_NE(::access(journal_path(missing, "2025-12-07").c_str(), F_OK), 0);
}

TEST(DailyRun, NextMidnightUtcPlusSpread) {
  EXPECT_EQ(supervisor::next_daily_run(1765065600, 0), 1765065600 + 86400);
  EXPECT_EQ(supervisor::next_daily_run(1765065600 + 86399, 120), 1765065600 + 86400 + 120);
  EXPECT_EQ(supervisor::next_daily_run(1765065600 + 5, 3600), 1765065600 + 86400 + 3600);
}

}  // namespace
}  // namespace estafette::esmtpclient
