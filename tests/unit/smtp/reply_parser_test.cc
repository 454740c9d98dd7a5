// Table tests of the SMTP reply parser; every input is also fed split at every byte.
#include "lib/smtp/reply_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::smtp {
namespace {

using Error = ReplyParser::Error;

struct Case {
  const char* name;
  std::string input;
  std::vector<Reply> replies;  // complete replies expected, in order
  Error error = Error::None;
  std::size_t max = kMaxReplySize;
};

std::vector<Reply> parse_all(ReplyParser& p) {
  std::vector<Reply> out;
  while (auto r = p.next()) out.push_back(std::move(*r));
  return out;
}

const std::vector<Case> kCases = {
    {"single", "220 mx.example ESMTP\r\n", {{220, "", {"mx.example ESMTP"}}}},
    {"bare_code", "250\r\n", {{250, "", {""}}}},
    {"bare_code_space", "250 \r\n", {{250, "", {""}}}},
    {"enhanced", "250 2.1.0 Ok\r\n", {{250, "2.1.0", {"Ok"}}}},
    {"enhanced_only", "550 5.1.1\r\n", {{550, "5.1.1", {""}}}},
    {"enhanced_wrong_class", "550 2.1.1 odd\r\n", {{550, "", {"2.1.1 odd"}}}},
    {"not_enhanced", "250 2.1 x\r\n", {{250, "", {"2.1 x"}}}},
    {"version_text", "220 2.0.0.1 banner\r\n", {{220, "", {"2.0.0.1 banner"}}}},
    {"multi",
     "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
     {{250, "", {"mx.example", "PIPELINING", "SIZE 1000", "8BITMIME"}}}},
    {"multi_enhanced",
     "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n",
     {{550, "5.7.1", {"first", "second", "third"}}}},
    {"multi_empty_continuation", "250-\r\n250 ok\r\n", {{250, "", {"", "ok"}}}},
    {"pipelined_group",
     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n",
     {{250, "2.1.0", {"Ok"}},
      {250, "2.1.5", {"Ok"}},
      {550, "5.1.1", {"no such user"}},
      {354, "", {"go ahead"}}}},
    {"bare_lf", "250-a\n250 b\n", {{250, "", {"a", "b"}}}},
    {"incomplete_kept", "250-a\r\n250 b", {}},
    {"malformed_letters", "abc hello\r\n", {}, Error::Malformed},
    {"malformed_short", "25\r\n", {}, Error::Malformed},
    {"malformed_separator", "250x\r\n", {}, Error::Malformed},
    {"malformed_code_class", "150 hi\r\n", {}, Error::Malformed},
    {"malformed_after_good", "250 ok\r\nhello\r\n", {{250, "", {"ok"}}}, Error::Malformed},
    {"code_mismatch", "250-a\r\n251 b\r\n", {}, Error::CodeMismatch},
    {"too_long_multi", "250-aaaa\r\n250-bbbb\r\n250 c\r\n", {}, Error::TooLong, 16},
    {"too_long_unterminated", "250 " + std::string(40, 'x'), {}, Error::TooLong, 16},
    {"at_limit", "250 aaaaaaaaaa\r\n", {{250, "", {"aaaaaaaaaa"}}}, Error::None, 16},
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class ReplyParserTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReplyParserTest, Whole) {
  const Case& c = GetParam();
  ReplyParser p(c.max);
  p.feed(c.input);
  EXPECT_EQ(parse_all(p), c.replies);
  EXPECT_EQ(p.error(), c.error);
}

TEST_P(ReplyParserTest, SplitAtEveryByte) {
  const Case& c = GetParam();
  for (std::size_t at = 0; at <= c.input.size(); ++at) {
    ReplyParser p(c.max);
    p.feed(std::string_view(c.input).substr(0, at));
    auto got = parse_all(p);
    p.feed(std::string_view(c.input).substr(at));
    auto rest = parse_all(p);
    got.insert(got.end(), rest.begin(), rest.end());
    EXPECT_EQ(got, c.replies) << "split at " << at;
    EXPECT_EQ(p.error(), c.error) << "split at " << at;
  }
}

TEST_P(ReplyParserTest, ByteByByte) {
  const Case& c = GetParam();
  ReplyParser p(c.max);
  std::vector<Reply> got;
  for (char ch : c.input) {
    p.feed(std::string_view(&ch, 1));
    auto more = parse_all(p);
    got.insert(got.end(), more.begin(), more.end());
  }
  EXPECT_EQ(got, c.replies);
  EXPECT_EQ(p.error(), c.error);
}

INSTANTIATE_TEST_SUITE_P(Table, ReplyParserTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ReplyTest, TextAndToString) {
  Reply r{550, "5.1.1", {"no such", "user"}};
  EXPECT_EQ(r.text(), "no such user");
  EXPECT_EQ(r.to_string(), "550 5.1.1 no such user");
  EXPECT_TRUE(r.permanent());
  EXPECT_EQ((Reply{250, "", {""}}).to_string(), "250");
}

TEST(ReplyParserErrors, ErrorIsSticky) {
  ReplyParser p;
  p.feed("bad\r\n");
  EXPECT_FALSE(p.next());
  p.feed("250 ok\r\n");
  EXPECT_FALSE(p.next());
  EXPECT_EQ(p.error(), Error::Malformed);
  EXPECT_FALSE(p.error_text().empty());
}

}  // namespace
}  // namespace estafette::smtp
