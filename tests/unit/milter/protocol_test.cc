// Milter packet encoders and the reply decoder: a table of every reply type and of malformed
// packets, each fed whole, split at every byte position, and byte by byte.
#include "filters/milter/protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::milter {
namespace {

using namespace std::string_literals;
using filters::Family;

std::string u32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string pkt(char cmd, const std::string& data) {
  return u32(static_cast<std::uint32_t>(data.size() + 1)) + cmd + data;
}

// A reply in a compact form for comparison.
std::string show(const Reply& r) {
  std::string s = to_string(r.type);
  auto field = [&](const char* name, const std::string& v) {
    if (!v.empty()) s += std::string(" ") + name + "=" + v;
  };
  field("text", r.text);
  field("name", r.name);
  field("value", r.value);
  if (r.type == ReplyType::ChangeHeader || r.type == ReplyType::InsertHeader)
    s += " index=" + std::to_string(r.index);
  field("address", r.address);
  field("args", r.args);
  field("body", r.body);
  if (r.type == ReplyType::OptNeg) {
    s += " v=" + std::to_string(r.version) + " a=" + std::to_string(r.actions) +
         " p=" + std::to_string(r.protocol);
    for (const auto& [stage, list] : r.symlists) s += " " + std::to_string(stage) + ":" + list;
  }
  return s;
}

struct ReplyCase {
  std::string name;
  std::string input;
  std::vector<std::string> replies;  // show() of each
  bool error = false;
};

void PrintTo(const ReplyCase& c, std::ostream* os) {
  *os << c.name;
}

const std::vector<ReplyCase> kCases = {
    {"continue", pkt('c', ""), {"continue"}},
    {"accept", pkt('a', ""), {"accept"}},
    {"reject", pkt('r', ""), {"reject"}},
    {"tempfail", pkt('t', ""), {"tempfail"}},
    {"discard", pkt('d', ""), {"discard"}},
    {"progress", pkt('p', ""), {"progress"}},
    {"skip", pkt('s', ""), {"skip"}},
    {"replycode", pkt('y', "550 5.7.1 No\0"s), {"replycode text=550 5.7.1 No"}},
    {"replycode_multiline",
     pkt('y', "451-4.7.1 a\r\n451 4.7.1 b\0"s),
     {"replycode text=451-4.7.1 a\r\n451 4.7.1 b"}},
    {"addheader", pkt('h', "X-A\0 v\0"s), {"addheader name=X-A value= v"}},
    {"chgheader",
     pkt('m', u32(2) + "Subject\0new\0"s),
     {"chgheader name=Subject value=new index=2"}},
    {"chgheader_delete", pkt('m', u32(1) + "X-B\0\0"s), {"chgheader name=X-B index=1"}},
    {"insheader",
     pkt('i', u32(0) + "DKIM-Signature\0 v=1\0"s),
     {"insheader name=DKIM-Signature value= v=1 index=0"}},
    {"addrcpt", pkt('+', "<a@b>\0"s), {"addrcpt address=<a@b>"}},
    {"addrcpt_par",
     pkt('2', "<a@b>\0NOTIFY=NEVER\0"s),
     {"addrcpt_par address=<a@b> args=NOTIFY=NEVER"}},
    {"addrcpt_par_no_args", pkt('2', "<a@b>\0"s), {"addrcpt_par address=<a@b>"}},
    {"delrcpt", pkt('-', "<a@b>\0"s), {"delrcpt address=<a@b>"}},
    {"replbody", pkt('b', "new\r\nbody\0x"s), {"replbody body=new\r\nbody\0x"s}},
    {"quarantine", pkt('q', "why\0"s), {"quarantine text=why"}},
    {"chgfrom", pkt('e', "<f@b>\0SIZE=1\0"s), {"chgfrom address=<f@b> args=SIZE=1"}},
    {"optneg", pkt('O', u32(6) + u32(0x111) + u32(0x100702)), {"optneg v=6 a=273 p=1050370"}},
    {"optneg_symlist",
     pkt('O', u32(6) + u32(0x100) + u32(0) + u32(0) + "j {client_addr}\0"s + u32(5) + "{i}\0"s),
     {"optneg v=6 a=256 p=0 0:j {client_addr} 5:{i}"}},
    {"two_replies", pkt('h', "A\0b\0"s) + pkt('c', ""), {"addheader name=A value=b", "continue"}},
    {"partial_tail", pkt('c', "") + u32(5), {"continue"}},
    // Malformed.
    {"zero_length", u32(0) + "c", {}, true},
    {"oversize", u32(static_cast<std::uint32_t>(kMaxPacket + 1)) + "b", {}, true},
    {"unknown_command", pkt('Z', ""), {}, true},
    {"shutdown_unknown", pkt('4', ""), {}, true},
    {"continue_with_data", pkt('c', "x"), {}, true},
    {"replycode_no_nul", pkt('y', "550 no"), {}, true},
    {"replycode_not_4xx5xx", pkt('y', "250 ok\0"s), {}, true},
    {"replycode_short", pkt('y', "55\0"s), {}, true},
    {"addheader_one_string", pkt('h', "X-A\0"s), {}, true},
    {"addheader_no_nul", pkt('h', "X-A\0v"s), {}, true},
    {"addheader_extra", pkt('h', "X-A\0v\0w\0"s), {}, true},
    {"addheader_empty_name", pkt('h', "\0v\0"s), {}, true},
    {"chgheader_short_index", pkt('m', "ab"), {}, true},
    {"insheader_no_strings", pkt('i', u32(1)), {}, true},
    {"addrcpt_empty", pkt('+', ""), {}, true},
    {"addrcpt_par_three", pkt('2', "a\0b\0c\0"s), {}, true},
    {"optneg_short", pkt('O', u32(6) + u32(0)), {}, true},
    {"optneg_symlist_no_nul", pkt('O', u32(6) + u32(0) + u32(0) + u32(1) + "j"), {}, true},
    {"optneg_symlist_short_stage", pkt('O', u32(6) + u32(0) + u32(0) + "ab"), {}, true},
    {"optneg_symlist_bad_stage", pkt('O', u32(6) + u32(0) + u32(0) + u32(9) + "j\0"s), {}, true},
    {"good_then_bad", pkt('c', "") + pkt('Z', ""), {"continue"}, true},
};

class MilterReplyTest : public ::testing::TestWithParam<ReplyCase> {};

std::vector<std::string> run(const std::vector<std::string_view>& pieces, bool& ok) {
  ReplyParser parser;
  std::vector<Reply> replies;
  ok = true;
  for (std::string_view p : pieces) {
    if (!parser.feed(p, replies)) {
      ok = false;
      EXPECT_FALSE(parser.error().empty());
      break;
    }
  }
  std::vector<std::string> shown;
  for (const Reply& r : replies) shown.push_back(show(r));
  return shown;
}

TEST_P(MilterReplyTest, Whole) {
  const ReplyCase& c = GetParam();
  bool ok = false;
  EXPECT_EQ(run({c.input}, ok), c.replies);
  EXPECT_EQ(ok, !c.error);
}

TEST_P(MilterReplyTest, SplitAtEveryByte) {
  const ReplyCase& c = GetParam();
  std::string_view in = c.input;
  for (std::size_t i = 0; i <= in.size(); ++i) {
    bool ok = false;
    EXPECT_EQ(run({in.substr(0, i), in.substr(i)}, ok), c.replies) << "split at " << i;
    EXPECT_EQ(ok, !c.error) << "split at " << i;
  }
}

TEST_P(MilterReplyTest, ByteByByte) {
  const ReplyCase& c = GetParam();
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < c.input.size(); ++i)
    bytes.push_back(std::string_view(c.input).substr(i, 1));
  bool ok = false;
  EXPECT_EQ(run(bytes, ok), c.replies);
  EXPECT_EQ(ok, !c.error);
}

INSTANTIATE_TEST_SUITE_P(MilterTable, MilterReplyTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

TEST(MilterReplyParser, StaysFailed) {
  ReplyParser parser;
  std::vector<Reply> out;
  EXPECT_FALSE(parser.feed(pkt('Z', ""), out));
  EXPECT_TRUE(parser.failed());
  EXPECT_FALSE(parser.feed(pkt('c', ""), out));
  EXPECT_TRUE(out.empty());
}

TEST(MilterReplyParser, LargestPacketAccepted) {
  ReplyParser parser;
  std::vector<Reply> out;
  std::string body(kMaxPacket - 1, 'x');
  EXPECT_TRUE(parser.feed(pkt('b', body), out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].body.size(), body.size());
}

TEST(MilterEncode, Commands) {
  EXPECT_EQ(encode_optneg(6, 0x1ff, 0x1fffff), pkt('O', u32(6) + u32(0x1ff) + u32(0x1fffff)));
  EXPECT_EQ(encode_macro('C', {{"j", "mx.test"}, {"{daemon_name}", "esmtpd"}}),
            pkt('D', "Cj\0mx.test\0{daemon_name}\0esmtpd\0"s));
  EXPECT_EQ(encode_connect("client.test", Family::Inet, 0x1234, "127.0.0.1"), pkt('C',
                                                                                  "client.test\0"
                                                                                  "4\x12\x34"
                                                                                  "127.0.0.1\0"s));
  EXPECT_EQ(encode_connect("[::1]", Family::Inet6, 25, "::1"), pkt('C',
                                                                   "[::1]\0"
                                                                   "6\0\x19"
                                                                   "::1\0"s));
  EXPECT_EQ(encode_connect("localhost", Family::Unknown, 0, ""), pkt('C', "localhost\0U"s));
  EXPECT_EQ(encode_connect("local", Family::Unix, 0, "/run/s"), pkt('C', "local\0L\0\0/run/s\0"s));
  EXPECT_EQ(encode_helo("client.test"), pkt('H', "client.test\0"s));
  EXPECT_EQ(encode_mail("<a@b>", {"SIZE=10", "BODY=8BITMIME"}),
            pkt('M', "<a@b>\0SIZE=10\0BODY=8BITMIME\0"s));
  EXPECT_EQ(encode_rcpt("<c@d>", {}), pkt('R', "<c@d>\0"s));
  EXPECT_EQ(encode_data(), pkt('T', ""));
  EXPECT_EQ(encode_header("Subject", "hi"), pkt('L', "Subject\0hi\0"s));
  EXPECT_EQ(encode_eoh(), pkt('N', ""));
  EXPECT_EQ(encode_body("a\r\n"), pkt('B', "a\r\n"));
  EXPECT_EQ(encode_body(std::string(kChunkSize, 'x')).size(), 5 + kChunkSize);
  EXPECT_EQ(encode_eob(), pkt('E', ""));
  EXPECT_EQ(encode_abort(), pkt('A', ""));
  EXPECT_EQ(encode_quit(), pkt('Q', ""));
  EXPECT_EQ(encode_quit_nc(), pkt('K', ""));
}

TEST(MilterEncodeDeathTest, OversizeBodyChunkAborts) {
  EXPECT_DEATH(encode_body(std::string(kChunkSize + 1, 'x')), "");
}

}  // namespace
}  // namespace estafette::milter
