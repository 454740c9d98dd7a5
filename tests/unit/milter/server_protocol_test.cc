// The filter side of the milter protocol (filters/milter/server_protocol.h): a table of every
// command (made by the MTA side's own encoders, protocol.h, where there is one) and of malformed
// packets, each fed whole, split at every byte position, and byte by byte; the reply encoders
// checked by decoding their output with the MTA side's ReplyParser.
#include "filters/milter/server_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::milter {
namespace {

using namespace std::string_literals;
using filters::Family;
using filters::Modification;
using filters::Verdict;

std::string u32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string pkt(char cmd, const std::string& data) {
  return u32(static_cast<std::uint32_t>(data.size() + 1)) + cmd + data;
}

// A command in a compact form for comparison.
std::string show(const Command& c) {
  std::string s = to_string(c.type);
  auto field = [&](const char* name, const std::string& v) {
    if (!v.empty()) s += std::string(" ") + name + "=" + v;
  };
  if (c.type == CommandType::OptNeg)
    s += " v=" + std::to_string(c.version) + " a=" + std::to_string(c.actions) +
         " p=" + std::to_string(c.protocol);
  if (c.type == CommandType::Macro) s += std::string(" stage=") + c.macro_stage;
  for (const auto& [name, value] : c.macros) s += " " + name + ":" + value;
  field("host", c.hostname);
  if (c.type == CommandType::Connect)
    s += std::string(" family=") + static_cast<char>(c.family) + " port=" + std::to_string(c.port);
  field("address", c.address);
  for (const auto& a : c.args) s += " arg=" + a;
  field("name", c.name);
  field("value", c.value);
  field("body", c.body);
  field("text", c.text);
  return s;
}

struct CommandCase {
  std::string name;
  std::string input;
  std::vector<std::string> commands;  // show() of each
  bool error = false;
};

void PrintTo(const CommandCase& c, std::ostream* os) {
  *os << c.name;
}

const std::vector<CommandCase> kCases = {
    {"optneg", encode_optneg(6, 0x1ff, 0x1fffff), {"optneg v=6 a=511 p=2097151"}},
    {"macro",
     encode_macro('C', {{"j", "mx.test"}, {"{daemon_name}", "esmtpd"}}),
     {"macro stage=C j:mx.test {daemon_name}:esmtpd"}},
    {"macro_empty_value",
     encode_macro('M', {{"{auth_authen}", ""}}),
     {"macro stage=M {auth_authen}:"}},
    {"macro_no_macros", pkt('D', "E"), {"macro stage=E"}},
    {"connect_inet",
     encode_connect("client.test", Family::Inet, 0x1234, "127.0.0.1"),
     {"connect host=client.test family=4 port=4660 address=127.0.0.1"}},
    {"connect_inet6",
     encode_connect("[::1]", Family::Inet6, 25, "::1"),
     {"connect host=[::1] family=6 port=25 address=::1"}},
    {"connect_unknown",
     encode_connect("localhost", Family::Unknown, 0, ""),
     {"connect host=localhost family=U port=0"}},
    {"helo", encode_helo("client.test"), {"helo name=client.test"}},
    {"mail",
     encode_mail("<a@b>", {"SIZE=10", "BODY=8BITMIME"}),
     {"mail address=<a@b> arg=SIZE=10 arg=BODY=8BITMIME"}},
    {"mail_null", encode_mail("<>", {}), {"mail address=<>"}},
    {"rcpt", encode_rcpt("<c@d>", {}), {"rcpt address=<c@d>"}},
    {"data", encode_data(), {"data"}},
    {"header", encode_header("Subject", " hi"), {"header name=Subject value= hi"}},
    {"header_empty_value", encode_header("X-E", ""), {"header name=X-E"}},
    {"eoh", encode_eoh(), {"eoh"}},
    {"body", encode_body("line\r\n\0x"s), {"body body=line\r\n\0x"s}},
    {"eob", encode_eob(), {"eob"}},
    {"abort", encode_abort(), {"abort"}},
    {"quit", encode_quit(), {"quit"}},
    {"quit_nc", encode_quit_nc(), {"quit_nc"}},
    {"unknown", pkt('U', "XYZZY\0"s), {"unknown text=XYZZY"}},
    {"macro_then_mail",
     encode_macro('M', {{"i", "Q1"}}) + encode_mail("<a@b>", {}),
     {"macro stage=M i:Q1", "mail address=<a@b>"}},
    {"partial_tail", encode_data() + u32(5), {"data"}},
    // Malformed.
    {"zero_length", u32(0) + "T", {}, true},
    {"oversize", u32(static_cast<std::uint32_t>(kMaxPacket + 1)) + "B", {}, true},
    {"unknown_command", pkt('Z', ""), {}, true},
    {"data_with_data", pkt('T', "x"), {}, true},
    {"optneg_short", pkt('O', u32(6) + u32(0)), {}, true},
    {"optneg_long", pkt('O', u32(6) + u32(0) + u32(0) + "x"), {}, true},
    {"macro_no_stage", pkt('D', ""), {}, true},
    {"macro_no_value", pkt('D', "Cj\0"s), {}, true},
    {"macro_value_no_nul", pkt('D', "Cj\0x"s), {}, true},
    {"connect_no_family", pkt('C', "host\0"s), {}, true},
    {"connect_bad_family", pkt('C', "host\0X"s), {}, true},
    {"connect_no_port",
     pkt('C',
         "host\0"
         "4\x01"s),
     {},
     true},
    {"connect_no_address_nul",
     pkt('C',
         "host\0"
         "4\x01\x02"
         "1.2.3.4"s),
     {},
     true},
    {"connect_extra",
     pkt('C',
         "host\0"
         "4\x01\x02"
         "1.2.3.4\0x"s),
     {},
     true},
    {"connect_unknown_extra", pkt('C', "host\0Ux"s), {}, true},
    {"helo_no_nul", pkt('H', "x"), {}, true},
    {"helo_extra", pkt('H', "x\0y\0"s), {}, true},
    {"mail_empty", pkt('M', ""), {}, true},
    {"mail_arg_no_nul", pkt('M', "<a@b>\0SIZE"s), {}, true},
    {"header_one_string", pkt('L', "Subject\0"s), {}, true},
    {"header_empty_name", pkt('L', "\0v\0"s), {}, true},
    {"header_extra", pkt('L', "A\0b\0c\0"s), {}, true},
    {"good_then_bad", encode_data() + pkt('Z', ""), {"data"}, true},
};

class MilterCommandTest : public ::testing::TestWithParam<CommandCase> {};

std::vector<std::string> run(const std::vector<std::string_view>& pieces, bool& ok) {
  CommandParser parser;
  std::vector<Command> commands;
  ok = true;
  for (std::string_view p : pieces) {
    if (!parser.feed(p, commands)) {
      ok = false;
      EXPECT_FALSE(parser.error().empty());
      break;
    }
  }
  std::vector<std::string> shown;
  for (const Command& c : commands) shown.push_back(show(c));
  return shown;
}

TEST_P(MilterCommandTest, Whole) {
  const CommandCase& c = GetParam();
  bool ok = false;
  EXPECT_EQ(run({c.input}, ok), c.commands);
  EXPECT_EQ(ok, !c.error);
}

TEST_P(MilterCommandTest, SplitAtEveryByte) {
  const CommandCase& c = GetParam();
  std::string_view in = c.input;
  for (std::size_t i = 0; i <= in.size(); ++i) {
    bool ok = false;
    EXPECT_EQ(run({in.substr(0, i), in.substr(i)}, ok), c.commands) << "split at " << i;
    EXPECT_EQ(ok, !c.error) << "split at " << i;
  }
}

TEST_P(MilterCommandTest, ByteByByte) {
  const CommandCase& c = GetParam();
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < c.input.size(); ++i)
    bytes.push_back(std::string_view(c.input).substr(i, 1));
  bool ok = false;
  EXPECT_EQ(run(bytes, ok), c.commands);
  EXPECT_EQ(ok, !c.error);
}

INSTANTIATE_TEST_SUITE_P(MilterServerTable, MilterCommandTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

TEST(MilterCommandParser, StaysFailed) {
  CommandParser parser;
  std::vector<Command> out;
  EXPECT_FALSE(parser.feed(pkt('Z', ""), out));
  EXPECT_TRUE(parser.failed());
  EXPECT_FALSE(parser.feed(encode_data(), out));
  EXPECT_TRUE(out.empty());
}

TEST(MilterCommandParser, BoundIsConfigurable) {
  CommandParser parser(16);
  std::vector<Command> out;
  EXPECT_TRUE(parser.feed(encode_body(std::string(15, 'x')), out));
  EXPECT_FALSE(parser.feed(encode_body(std::string(16, 'x')), out));
  EXPECT_EQ(out.size(), 1u);
}

// What the MTA side makes of one encoded reply string.
std::vector<Reply> decode_all(const std::string& bytes) {
  ReplyParser parser;
  std::vector<Reply> out;
  EXPECT_TRUE(parser.feed(bytes, out)) << parser.error();
  return out;
}

struct VerdictCase {
  Verdict verdict;
  ReplyType type;
  std::string text;
};

TEST(MilterServerEncode, Verdicts) {
  const std::vector<VerdictCase> cases = {
      {{Verdict::Action::Continue, "", ""}, ReplyType::Continue, ""},
      {{Verdict::Action::Accept, "", "m"}, ReplyType::Accept, ""},
      {{Verdict::Action::Reject, "", "m"}, ReplyType::Reject, ""},
      {{Verdict::Action::Tempfail, "", "m"}, ReplyType::Tempfail, ""},
      {{Verdict::Action::Discard, "", "m"}, ReplyType::Discard, ""},
      {{Verdict::Action::ReplyCode, "550 5.7.1 no", "m"}, ReplyType::ReplyCode, "550 5.7.1 no"},
      {{Verdict::Action::ReplyCode, "451-4.7.1 a\r\n451 4.7.1 b", "m"},
       ReplyType::ReplyCode,
       "451-4.7.1 a\r\n451 4.7.1 b"},
      {{Verdict::Action::ReplyCode, "", "m"}, ReplyType::Reject, ""},
  };
  for (const auto& c : cases) {
    auto replies = decode_all(encode_verdict(c.verdict));
    ASSERT_EQ(replies.size(), 1u) << to_string(c.verdict.action);
    EXPECT_EQ(replies[0].type, c.type) << to_string(c.verdict.action);
    EXPECT_EQ(replies[0].text, c.text);
  }
  EXPECT_EQ(encode_verdict({Verdict::Action::Failed, "module x: crashed", "m"}), "");
}

Modification mod(Modification::Kind kind) {
  Modification m;
  m.kind = kind;
  return m;
}

TEST(MilterServerEncode, ModificationsRoundTrip) {
  using K = Modification::Kind;
  std::vector<Modification> mods;
  mods.push_back(mod(K::AddHeader));
  mods.back().name = "X-Filtered";
  mods.back().value = " yes";
  mods.push_back(mod(K::ChangeHeader));
  mods.back().name = "Subject";
  mods.back().value = " new";
  mods.back().index = 2;
  mods.push_back(mod(K::ChangeHeader));  // delete
  mods.back().name = "X-Old";
  mods.back().index = 1;
  mods.push_back(mod(K::InsertHeader));
  mods.back().name = "DKIM-Signature";
  mods.back().value = " v=1";
  mods.push_back(mod(K::AddRcpt));
  mods.back().address = "<a@b>";
  mods.push_back(mod(K::AddRcpt));
  mods.back().address = "<c@d>";
  mods.back().args = "NOTIFY=NEVER";
  mods.push_back(mod(K::DelRcpt));
  mods.back().address = "<e@f>";
  mods.push_back(mod(K::ChangeFrom));
  mods.back().address = "<g@h>";
  mods.back().args = "SIZE=1";
  mods.push_back(mod(K::Quarantine));
  mods.back().text = "suspicious";
  auto replies = decode_all(encode_modifications(mods, true));
  ASSERT_EQ(replies.size(), mods.size());
  EXPECT_EQ(replies[0].type, ReplyType::AddHeader);
  EXPECT_EQ(replies[0].value, " yes");
  EXPECT_EQ(replies[1].type, ReplyType::ChangeHeader);
  EXPECT_EQ(replies[1].index, 2u);
  EXPECT_EQ(replies[1].value, " new");
  EXPECT_EQ(replies[2].type, ReplyType::ChangeHeader);
  EXPECT_EQ(replies[2].value, "");
  EXPECT_EQ(replies[3].type, ReplyType::InsertHeader);
  EXPECT_EQ(replies[3].index, 0u);
  EXPECT_EQ(replies[4].type, ReplyType::AddRcpt);
  EXPECT_EQ(replies[4].address, "<a@b>");
  EXPECT_EQ(replies[5].type, ReplyType::AddRcptPar);
  EXPECT_EQ(replies[5].args, "NOTIFY=NEVER");
  EXPECT_EQ(replies[6].type, ReplyType::DelRcpt);
  EXPECT_EQ(replies[7].type, ReplyType::ChangeFrom);
  EXPECT_EQ(replies[7].address, "<g@h>");
  EXPECT_EQ(replies[7].args, "SIZE=1");
  EXPECT_EQ(replies[8].type, ReplyType::Quarantine);
  EXPECT_EQ(replies[8].text, "suspicious");

  // Without SMFIP_HDR_LEADSPC the MTA adds the space back: one is taken off.
  auto plain = decode_all(encode_modifications({mods[0]}, false));
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].value, "yes");
}

TEST(MilterServerEncode, ReplacementBodyInChunks) {
  Modification m = mod(Modification::Kind::ReplaceBody);
  m.body = std::string(kChunkSize * 2 + 10, 'b');
  auto replies = decode_all(encode_modifications({m}, true));
  ASSERT_EQ(replies.size(), 3u);
  std::string joined;
  for (const auto& r : replies) {
    EXPECT_EQ(r.type, ReplyType::ReplaceBody);
    EXPECT_LE(r.body.size(), kChunkSize);
    joined += r.body;
  }
  EXPECT_EQ(joined, m.body);
  m.body.clear();
  auto empty = decode_all(encode_modifications({m}, true));
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].body, "");
}

TEST(MilterServerEncode, OptNegReply) {
  auto replies = decode_all(encode_optneg_reply(6, SMFIF_ADDHDRS, SMFIP_HDR_LEADSPC));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, ReplyType::OptNeg);
  EXPECT_EQ(replies[0].version, 6u);
  EXPECT_EQ(replies[0].actions, static_cast<std::uint32_t>(SMFIF_ADDHDRS));
  EXPECT_EQ(replies[0].protocol, static_cast<std::uint32_t>(SMFIP_HDR_LEADSPC));
}

}  // namespace
}  // namespace estafette::milter
