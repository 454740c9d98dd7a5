// lib/submit/maildrop: the maildrop file format (table of good, malformed and oversize files,
// every prefix of a good file refused), the names estafette-pickup takes, and write_maildrop on a
// real directory (its checks of the directory, what it leaves behind).
#include "lib/submit/maildrop.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace estafette::submit {
namespace {

const std::string kGood =
    "estafette-maildrop 1\nS a@x.test\nR b@y.test\nR c@y.test\nD 18\nSubject: x\r\n\r\nhi\r\nE\n";

TEST(Maildrop, RoundTrip) {
  MaildropEntry e{
      "me@x.test", {"a@y.test", "b@y.test"}, true, "Subject: \xc3\xa9\r\n\r\n..dot\r\n"};
  auto text = format_maildrop(e);
  auto p = parse_maildrop(text, {});
  ASSERT_TRUE(p.entry) << p.error;
  EXPECT_EQ(p.entry->sender, e.sender);
  EXPECT_EQ(p.entry->recipients, e.recipients);
  EXPECT_TRUE(p.entry->eight_bit);
  EXPECT_EQ(p.entry->wire, e.wire);
  // The null sender and an empty body.
  auto n = parse_maildrop(format_maildrop({"", {"a@y.test"}, false, ""}), {});
  ASSERT_TRUE(n.entry) << n.error;
  EXPECT_EQ(n.entry->sender, "");
  EXPECT_FALSE(n.entry->eight_bit);
}

struct BadCase {
  std::string name;
  std::string file;
  std::string error;  // a part of the message
};

class MaildropBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(MaildropBad, IsRefusedWithAReason) {
  auto p = parse_maildrop(GetParam().file, {.max_wire = 1000, .max_recipients = 3});
  EXPECT_FALSE(p.entry);
  EXPECT_NE(p.error.find(GetParam().error), std::string::npos) << p.error;
}

std::string file_with(const std::string& envelope, const std::string& wire) {
  return "estafette-maildrop 1\n" + envelope + "D " + std::to_string(wire.size()) + "\n" + wire +
         "E\n";
}

INSTANTIATE_TEST_SUITE_P(
    Table, MaildropBad,
    ::testing::Values(
        BadCase{"Empty", "", "truncated"},
        BadCase{"NoMagic", "estafette-maildrop 2\nS a\nR b\nD 0\nE\n", "not a maildrop file"},
        BadCase{"Garbage", std::string(5000, 'x'), "longer than 1000"},
        BadCase{"LongLine", "estafette-maildrop 1\nS " + std::string(1200, 'a') + "\n", "longer"},
        BadCase{"NoSender", file_with("R b@y\n", "x\r\n"), "no sender"},
        BadCase{"TwoSenders", file_with("S a\nS b\nR c\n", ""), "two sender"},
        BadCase{"NoRecipients", file_with("S a\n", "x\r\n"), "no recipients"},
        BadCase{"EmptyRecipient", file_with("S a\nR \n", ""), "bad recipient"},
        BadCase{"TooManyRecipients", file_with("S a\nR 1\nR 2\nR 3\nR 4\n", ""), "more than 3"},
        BadCase{"CrInAddress", file_with("S a\nR b\rRCPT TO:<c>\n", ""), "bad recipient"},
        BadCase{"AngleInAddress", file_with("S a>\nR b\n", ""), "bad sender"},
        BadCase{"NulInAddress", file_with(std::string("S a\nR b\0c\n", 11), ""), "bad recipient"},
        BadCase{"UnknownRecord", file_with("S a\nR b\nX y\n", ""), "unknown record"},
        BadCase{"BadRecordShape", file_with("S a\nRb\n", ""), "bad record"},
        BadCase{"BadBodyType", file_with("S a\nR b\nB BINARYMIME\n", ""), "bad body"},
        BadCase{"BadLength", "estafette-maildrop 1\nS a\nR b\nD 1x\nxE\n", "bad data length"},
        BadCase{"NegativeLength", "estafette-maildrop 1\nS a\nR b\nD -1\nE\n", "bad data length"},
        BadCase{"HugeLength", "estafette-maildrop 1\nS a\nR b\nD 99999999999999999999\nE\n",
                "bad data length"},
        BadCase{"Oversize", file_with("S a\nR b\n", std::string(1001, 'x')), "too big"},
        BadCase{"ShortData", "estafette-maildrop 1\nS a\nR b\nD 10\nabc\r\nE\n", "truncated"},
        BadCase{"NoEnd", "estafette-maildrop 1\nS a\nR b\nD 3\nx\r\nEE", "no end line"},
        BadCase{"Trailing", file_with("S a\nR b\n", "x\r\n") + "more", "no end line"},
        BadCase{"BareLf", file_with("S a\nR b\n", "a\nb\r\n"), "dot-stuffed CRLF"},
        BadCase{"NoFinalCrlf", file_with("S a\nR b\n", "abc"), "dot-stuffed CRLF"},
        // An unstuffed "." line would end DATA early and let the rest be read as commands.
        BadCase{"DotLine", file_with("S a\nR b\n", "x\r\n.\r\nRCPT TO:<v>\r\n"),
                "dot-stuffed CRLF"},
        BadCase{"DotStart", file_with("S a\nR b\n", ".x\r\n"), "dot-stuffed CRLF"}),
    [](const auto& info) { return info.param.name; });

TEST(Maildrop, EveryPrefixOfAGoodFileIsRefused) {
  ASSERT_TRUE(parse_maildrop(kGood, {}).entry);
  for (std::size_t n = 0; n < kGood.size(); ++n)
    EXPECT_FALSE(parse_maildrop(kGood.substr(0, n), {}).entry) << n;
}

TEST(Maildrop, Names) {
  EXPECT_TRUE(is_maildrop_name("1700000000.000000001.42.0123abcd0123abcd"));
  EXPECT_FALSE(is_maildrop_name(""));
  EXPECT_FALSE(is_maildrop_name(".tmp.1700000000.1.2.3"));
  EXPECT_FALSE(is_maildrop_name("a/b"));
  EXPECT_FALSE(is_maildrop_name("a b"));
  EXPECT_FALSE(is_maildrop_name(std::string(129, 'a')));
}

class MaildropDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/maildrop-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::vector<std::string> names() {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir_.c_str());
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.' || std::string(e->d_name).size() > 2) out.push_back(e->d_name);
    ::closedir(d);
    std::erase(out, "..");
    std::erase(out, ".");
    return out;
  }
  std::string dir_;
};

TEST_F(MaildropDir, WritesOneFileThatParses) {
  ASSERT_EQ(::chmod(dir_.c_str(), 01733), 0);
  std::string name;
  MaildropEntry e{"a@x", {"b@y"}, false, "Subject: s\r\n\r\nbody\r\n"};
  ASSERT_EQ(write_maildrop(dir_, e, &name), "");
  EXPECT_TRUE(is_maildrop_name(name)) << name;
  EXPECT_EQ(names(), std::vector<std::string>{name});  // no temporary file left
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/" + name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::ifstream in(dir_ + "/" + name, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  auto p = parse_maildrop(text.str(), {});
  ASSERT_TRUE(p.entry) << p.error;
  EXPECT_EQ(p.entry->wire, e.wire);
}

TEST_F(MaildropDir, RefusesADirectoryOthersMayChangeOrALink) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);  // no sticky bit
  auto error = write_maildrop(dir_, {"a", {"b"}, false, ""});
  EXPECT_NE(error.find("no sticky bit"), std::string::npos) << error;
  EXPECT_TRUE(names().empty());
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir_.c_str(), (dir_ + "/link").c_str()), 0);
  error = write_maildrop(dir_ + "/link", {"a", {"b"}, false, ""});
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
  EXPECT_NE(write_maildrop(dir_ + "/missing", {"a", {"b"}, false, ""}), "");
}

}  // namespace
}  // namespace estafette::submit
