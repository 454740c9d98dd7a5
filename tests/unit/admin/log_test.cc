// `estafette log` (admin/log.h): the id= matcher, the notice links it follows, the order of the
// rotated files, and the whole command over plain and gzipped files.
#include "admin/log.h"

#include <Poco/DeflatingStream.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace estafette::admin {
namespace {

struct IdsCase {
  const char* name;
  std::string line;
  std::vector<std::string> ids;
  std::string notice;
};

class LogIds : public ::testing::TestWithParam<IdsCase> {};

TEST_P(LogIds, FindsWholeIdTokens) {
  std::vector<std::string> got;
  for (auto id : ids_in_line(GetParam().line)) got.emplace_back(id);
  EXPECT_EQ(got, GetParam().ids);
  EXPECT_EQ(notification_id(GetParam().line), GetParam().notice);
}

INSTANTIATE_TEST_SUITE_P(
    Table, LogIds,
    ::testing::Values(
        IdsCase{"Accepted",
                "T [1] esmtpd: accepted id=0LWQ-i1-1F client=127.0.0.1",
                {"0LWQ-i1-1F"},
                ""},
        IdsCase{"Attempt",
                "T [2] courierd: id=A-1 to=<b@x> orig_to=<postmaster@x> relay=local delay=0.01 "
                "delays=0.00/0.00/0.00/0.01 dsn=2.0.0 status=sent (250 2.0.0 ok)",
                {"A-1"},
                ""},
        IdsCase{"Removed", "courierd: id=A-1 removed", {"A-1"}, ""},
        IdsCase{"AtTheStart", "id=A-1", {"A-1"}, ""},
        // Other keys that end in "id=" are not queue ids.
        IdsCase{"OtherKeys", "job_id=7 envid=A-1 message_id=A-1 xid=A-1 a.id=A-1", {}, ""},
        IdsCase{"Notice",
                "courierd: id=A-1 sender non-delivery notification: id=B-2 to=<s@x> nrcpt=1",
                {"A-1", "B-2"},
                "B-2"},
        IdsCase{"DelayNotice",
                "courierd: id=A-1 sender delivery status (delayed) notification: id=C-3 to=<s@x>",
                {"A-1", "C-3"},
                "C-3"},
        IdsCase{"Punctuation", "x (id=A-1) id=B-2, id=C_3", {"A-1", "B-2", "C"}, ""},
        IdsCase{"EmptyId", "id= id=", {}, ""},
        IdsCase{"NoIds", "esmtpd: connect from 127.0.0.1", {}, ""}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(LogIds, AtMostSixteenPerLine) {
  std::string line;
  for (int i = 0; i < 100; ++i) line += " id=X" + std::to_string(i);
  EXPECT_EQ(ids_in_line(line).size(), 16u);
}

TEST(LogHistory, FollowsTheNoticesOfGivenIdsOnce) {
  HistoryFilter f({"A"});
  EXPECT_TRUE(f.take("esmtpd: accepted id=A client=1"));
  EXPECT_FALSE(f.take("esmtpd: accepted id=OTHER client=1"));
  EXPECT_FALSE(f.take("courierd: id=B to=<x> status=sent"));  // not linked yet
  EXPECT_TRUE(f.take("courierd: id=A sender non-delivery notification: id=B to=<s>"));
  EXPECT_TRUE(f.take("courierd: id=B to=<s> status=sent"));
  EXPECT_TRUE(f.take("courierd: id=B removed"));
  // B's own notice is not followed, nor is an id some other message links to.
  EXPECT_TRUE(f.take("courierd: id=B sender non-delivery notification: id=C to=<s>"));
  EXPECT_FALSE(f.take("courierd: id=C to=<s> status=sent"));
  EXPECT_FALSE(f.take("courierd: id=OTHER sender non-delivery notification: id=D"));
  EXPECT_FALSE(f.take("courierd: id=D removed"));
  EXPECT_FALSE(f.take("courierd: id=AB removed"));  // a prefix of nothing
}

struct RotationCase {
  const char* name;
  std::string path;
  std::vector<std::string> names;
  std::vector<std::string> order;
};

class LogRotation : public ::testing::TestWithParam<RotationCase> {};

TEST_P(LogRotation, OldestFirst) {
  EXPECT_EQ(rotation_order(GetParam().path, GetParam().names), GetParam().order);
}

INSTANTIATE_TEST_SUITE_P(
    Table, LogRotation,
    ::testing::Values(
        RotationCase{"Alone", "/v/mail.log", {"mail.log", ".", ".."}, {"/v/mail.log"}},
        RotationCase{"Numbered",
                     "/v/mail.log",
                     {"mail.log.1", "mail.log", "mail.log.10.gz", "mail.log.2.gz", "mail.log.3"},
                     {"/v/mail.log.10.gz", "/v/mail.log.3", "/v/mail.log.2.gz", "/v/mail.log.1",
                      "/v/mail.log"}},
        RotationCase{"Dated",
                     "/v/mail.log",
                     {"mail.log-20261205", "mail.log-20261203.gz", "mail.log"},
                     {"/v/mail.log-20261203.gz", "/v/mail.log-20261205", "/v/mail.log"}},
        RotationCase{"OthersIgnored",
                     "/v/mail.log",
                     {"mail.log.old", "mail.log.1.bz2", "mail.logx", "mail.log.", "mail.log-2026",
                      "mail.err.1", "mail.log.99999999999"},
                     {"/v/mail.log"}},
        RotationCase{"Relative", "mail.log", {"mail.log.1"}, {"mail.log.1", "mail.log"}}),
    [](const auto& info) { return std::string(info.param.name); });

class LogCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/estafette-log-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  void write_gz(const std::string& name, const std::string& text) {
    std::ofstream file(dir_ + "/" + name, std::ios::binary);
    Poco::DeflatingOutputStream gz(file, Poco::DeflatingStreamBuf::STREAM_GZIP);
    gz << text;
    gz.close();
  }
  // Runs the command; returns (exit code, output).
  std::pair<int, std::string> run(const std::vector<std::string>& ids, const std::string& path) {
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    int rc = show_log(ids, path, out, err);
    std::string text(static_cast<std::size_t>(std::ftell(out)), '\0');
    std::rewind(out);
    if (!text.empty()) {
      EXPECT_EQ(std::fread(text.data(), 1, text.size(), out), text.size());
    }
    std::fclose(out);
    std::fclose(err);
    return {rc, text};
  }
  std::string dir_;
};

TEST_F(LogCommand, ReadsRotatedFilesInOrderAndFollowsTheNotice) {
  write_gz("mail.log.2.gz",
           "t1 esmtpd: accepted id=A client=1\nt1 esmtpd: accepted id=Z client=1\n");
  write("mail.log.1",
        "t2 courierd: id=A to=<x> status=bounced (550)\n"
        "t2 courierd: id=A sender non-delivery notification: id=N to=<s>\n");
  write("mail.log",
        "t3 courierd: id=N to=<s> status=sent (250)\nt3 courierd: id=A removed\n"
        "t3 courierd: id=Z removed");  // the last line has no LF
  auto [rc, out] = run({"A"}, dir_ + "/mail.log");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out,
            "t1 esmtpd: accepted id=A client=1\n"
            "t2 courierd: id=A to=<x> status=bounced (550)\n"
            "t2 courierd: id=A sender non-delivery notification: id=N to=<s>\n"
            "t3 courierd: id=N to=<s> status=sent (250)\n"
            "t3 courierd: id=A removed\n");
  auto z = run({"Z"}, dir_ + "/mail.log");
  EXPECT_EQ(z.second, "t1 esmtpd: accepted id=Z client=1\nt3 courierd: id=Z removed\n");
}

TEST_F(LogCommand, NothingFoundIsExit1AndNoLogIsExit2) {
  write("mail.log", "courierd: id=A removed\n");
  EXPECT_EQ(run({"B"}, dir_ + "/mail.log").first, 1);
  EXPECT_EQ(run({"A"}, dir_ + "/missing.log").first, 2);
}

TEST_F(LogCommand, RotatedSymlinksAndNonFilesAreSkipped) {
  write("secret", "id=A root's secret\n");
  ASSERT_EQ(::symlink((dir_ + "/secret").c_str(), (dir_ + "/mail.log.1").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir_ + "/mail.log.2").c_str(), 0600), 0);  // would hang a reader
  write("mail.log", "id=A removed\n");
  EXPECT_EQ(run({"A"}, dir_ + "/mail.log"), std::make_pair(0, std::string("id=A removed\n")));
  // The log itself may be a symlink (the administrator's own choice of path).
  ASSERT_EQ(::symlink((dir_ + "/mail.log").c_str(), (dir_ + "/link.log").c_str()), 0);
  EXPECT_EQ(run({"A"}, dir_ + "/link.log").second, "id=A removed\n");
}

TEST_F(LogCommand, ControlCharactersAreNotPrinted) {
  write("mail.log", "id=A \x1b[2J\tx\r\x7f\n");
  EXPECT_EQ(run({"A"}, dir_ + "/mail.log").second, "id=A ?[2J\tx??\n");
}

TEST_F(LogCommand, LongLinesAreCutNotSlurped) {
  std::string huge(3 * kMaxLogLine, 'x');
  write("mail.log", "id=A " + huge + "\nid=A short\n");
  auto [rc, out] = run({"A"}, dir_ + "/mail.log");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "id=A " + huge.substr(0, kMaxLogLine - 5) + "\nid=A short\n");
}

}  // namespace
}  // namespace estafette::admin
