// The readiness report of a daemon to its starter (lib/daemon/readiness.h): the pure parser
// as a table (including what a broken or hostile child may write), and the writer over a pipe.
#include "lib/daemon/readiness.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace estafette::daemon {
namespace {

using State = ReadyReport::State;

struct ReportCase {
  std::string bytes;
  bool eof;
  State state;
  std::string error;
};
class ReadyReportTable : public ::testing::TestWithParam<ReportCase> {};
TEST_P(ReadyReportTable, Parses) {
  const auto& c = GetParam();
  auto r = parse_ready_report(c.bytes, c.eof);
  EXPECT_EQ(r.state, c.state) << c.bytes;
  EXPECT_EQ(r.error, c.error) << c.bytes;
}
INSTANTIATE_TEST_SUITE_P(
    Table, ReadyReportTable,
    ::testing::Values(ReportCase{"", false, State::Waiting, ""},
                      ReportCase{"rea", false, State::Waiting, ""},
                      ReportCase{"ready\n", false, State::Ready, ""},
                      ReportCase{"ready\n", true, State::Ready, ""},
                      ReportCase{"error x.conf:3: MAXHOST: not a number\n", true, State::Failed,
                                 "x.conf:3: MAXHOST: not a number"},
                      // Closed without a word: failed, the exit status says the rest.
                      ReportCase{"", true, State::Failed, ""},
                      ReportCase{"error cut sho", true, State::Failed, "cut sho"},
                      // Neither form, or terminal escapes: failed, shown harmless.
                      ReportCase{"readyish\n", false, State::Failed,
                                 "unreadable start-up report: readyish"},
                      ReportCase{"error \x1b[2Jboom\n", false, State::Failed, "?[2Jboom"},
                      ReportCase{std::string(2000, 'a'), false, State::Failed,
                                 "unreadable start-up report: " + std::string(80, 'a')}));

TEST(ReadyReporter, WritesOneLineOnce) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ReadyReporter r(fds[1]);
  EXPECT_TRUE(r.pending());
  r.failed("bad\nthing " + std::string(3000, 'x'));
  r.ready();  // too late: the pipe is closed
  EXPECT_FALSE(r.pending());
  std::string got;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, n);
  ::close(fds[0]);
  EXPECT_LE(got.size(), kMaxReadyReport);
  auto report = parse_ready_report(got, true);
  EXPECT_EQ(report.state, State::Failed);
  EXPECT_TRUE(report.error.starts_with("bad?thing xxx")) << report.error;
}

TEST(ReadyReporter, NobodyToTell) {
  ReadyReporter r;
  EXPECT_FALSE(r.pending());
  r.ready();  // nothing happens
}

}  // namespace
}  // namespace estafette::daemon
