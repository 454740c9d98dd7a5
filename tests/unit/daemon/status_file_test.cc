// The status file estafetted writes for `estafette status`: format, parse, round trip, and lines
// that do not parse are skipped.
#include "lib/daemon/status_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace estafette::daemon {
namespace {

const std::vector<ChildStatus> kChildren = {
    {"estafette-courierd", 1, 1, 100, ""},
    {"estafette-esmtpd", 1, 2, 101, ""},
    {"estafette-esmtpd", 2, 2, 0, "killed by signal 9; restarting in 500ms", ChildState::Down},
    {"estafette-esmtpd", 1, 2, 102, "", ChildState::Starting},
    {"estafette-esmtpd", 2, 2, 103, "", ChildState::Draining},
};

TEST(StatusFile, Formats) {
  EXPECT_EQ(format_status(kChildren),
            "estafette-courierd 1/1 100 running\n"
            "estafette-esmtpd 1/2 101 running\n"
            "estafette-esmtpd 2/2 0 down killed by signal 9; restarting in 500ms\n"
            "estafette-esmtpd 1/2 102 starting\n"
            "estafette-esmtpd 2/2 103 draining\n");
}

TEST(StatusFile, RoundTrips) {
  EXPECT_EQ(parse_status(format_status(kChildren)), kChildren);
  EXPECT_TRUE(parse_status("").empty());
}

TEST(StatusFile, NotesStayOnOneLine) {
  std::vector<ChildStatus> c = {{"estafette-esmtpd", 1, 1, 0, "exited\nwith status 1"}};
  auto parsed = parse_status(format_status(c));
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].note, "exited with status 1");
}

struct BadLine {
  std::string line;
};
class StatusFileBadLines : public ::testing::TestWithParam<BadLine> {};
TEST_P(StatusFileBadLines, AreSkipped) {
  auto parsed = parse_status(GetParam().line + "\nestafette-esmtpd 1/1 7 running\n");
  ASSERT_EQ(parsed.size(), 1u) << GetParam().line;
  EXPECT_EQ(parsed[0].pid, 7);
}
INSTANTIATE_TEST_SUITE_P(
    Table, StatusFileBadLines,
    ::testing::Values(BadLine{"garbage"}, BadLine{"prog 1 7 running"},
                      BadLine{"prog x/1 7 running"}, BadLine{"prog 1/1 -3 running"},
                      BadLine{"prog 1/1 7 down"}, BadLine{"prog 1/1 0 running"},
                      BadLine{"prog 1/1 0 starting"}, BadLine{"prog 1/1 0 draining"},
                      BadLine{"prog 1/1 7 sleeping"}, BadLine{"prog 1/1 seven running"},
                      BadLine{""}));

TEST(StatusFile, WritesAtomically) {
  char dir[] = "/tmp/estafette-status-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  std::string path = std::string(dir) + "/estafetted.children";
  ASSERT_TRUE(write_status_file(path, kChildren));
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  EXPECT_EQ(parse_status(text.str()), kChildren);
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);  // renamed into place
  EXPECT_FALSE(write_status_file(std::string(dir) + "/missing/dir/file", kChildren));
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace estafette::daemon

namespace estafette::daemon {
namespace {

TEST(ReloadResult, RoundTripsAndRefusesGarbage) {
  ReloadResult ok{42, 3, true, ""};
  EXPECT_EQ(format_reload(ok), "42 3 ok\n");
  EXPECT_EQ(parse_reload(format_reload(ok)), ok);
  ReloadResult failed{42, 4, false, "estafette-esmtpd 1/1: aliases:2: alias loop\nx"};
  EXPECT_EQ(format_reload(failed), "42 4 failed estafette-esmtpd 1/1: aliases:2: alias loop x\n");
  auto parsed = parse_reload(format_reload(failed));
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->ok);
  EXPECT_EQ(parsed->error, "estafette-esmtpd 1/1: aliases:2: alias loop x");
  for (const char* bad : {"", "42", "42 3", "42 3 maybe", "0 3 ok", "-1 3 ok", "x 3 ok", "42 y ok"})
    EXPECT_FALSE(parse_reload(bad)) << bad;
}

}  // namespace
}  // namespace estafette::daemon
