// Tests for filters/validate.h (what a filter hands back is checked before use) and for the
// Chain applying it: an invalid answer is the filter's failure, handled by its default action.
#include "filters/validate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "filters/message_edit.h"

namespace estafette::filters {
namespace {

using K = Modification::Kind;

Modification header(K kind, std::string name, std::string value) {
  Modification m;
  m.kind = kind;
  m.name = std::move(name);
  m.value = std::move(value);
  return m;
}

struct ValidateCase {
  const char* name;
  Modification mod;
  bool valid;
};

void PrintTo(const ValidateCase& c, std::ostream* os) {
  *os << c.name;
}

class FilterValidate : public ::testing::TestWithParam<ValidateCase> {};

TEST_P(FilterValidate, Modification) {
  const auto& c = GetParam();
  ModificationLimits limits;
  limits.max_header_value = 64;
  limits.max_body = 32;
  std::string why = check_modification(c.mod, limits);
  EXPECT_EQ(why.empty(), c.valid) << why;
}

Modification address(K kind, std::string a, std::string args = "") {
  Modification m;
  m.kind = kind;
  m.address = std::move(a);
  m.args = std::move(args);
  return m;
}

Modification body(std::string b) {
  Modification m;
  m.kind = K::ReplaceBody;
  m.body = std::move(b);
  return m;
}

INSTANTIATE_TEST_SUITE_P(
    Table, FilterValidate,
    ::testing::Values(
        ValidateCase{"plain", header(K::AddHeader, "X-Spam", " yes"), true},
        ValidateCase{"no_space", header(K::AddHeader, "X-Spam", "yes"), true},
        ValidateCase{"folded_lf", header(K::AddHeader, "X-A", "one\n\ttwo"), true},
        ValidateCase{"folded_crlf", header(K::InsertHeader, "X-A", "one\r\n two"), true},
        ValidateCase{"utf8_value", header(K::AddHeader, "X-A", "caf\xc3\xa9"), true},
        ValidateCase{"delete", header(K::ChangeHeader, "Subject", ""), true},
        ValidateCase{"name_colon", header(K::AddHeader, "X-A:B", "v"), false},
        ValidateCase{"name_space", header(K::AddHeader, "X A", "v"), false},
        ValidateCase{"name_crlf", header(K::AddHeader, "X\r\nBcc", "v"), false},
        ValidateCase{"name_lf", header(K::ChangeHeader, "X\nA", "v"), false},
        ValidateCase{"name_control", header(K::InsertHeader, "X\x01", "v"), false},
        ValidateCase{"name_8bit", header(K::InsertHeader, "X\xc3\xa9", "v"), false},
        ValidateCase{"name_empty", header(K::AddHeader, "", "v"), false},
        ValidateCase{"name_long", header(K::AddHeader, std::string(257, 'X'), "v"), false},
        ValidateCase{"value_new_field", header(K::AddHeader, "X-A", "v\nBcc: evil@x"), false},
        ValidateCase{"value_new_field_crlf", header(K::AddHeader, "X-A", "v\r\nBcc: e"), false},
        ValidateCase{"value_ends_header", header(K::AddHeader, "X-A", "v\n\nbody"), false},
        ValidateCase{"value_trailing_lf", header(K::AddHeader, "X-A", "v\n"), false},
        ValidateCase{"value_blank_continuation", header(K::AddHeader, "X-A", "v\n \nw"), false},
        ValidateCase{"value_ws_only_line", header(K::AddHeader, "X-A", "v\n  "), false},
        ValidateCase{"value_bare_cr", header(K::ChangeHeader, "X-A", "v\rw"), false},
        ValidateCase{"value_nul", header(K::AddHeader, "X-A", std::string("v\0w", 3)), false},
        ValidateCase{"value_long", header(K::AddHeader, "X-A", std::string(65, 'v')), false},
        ValidateCase{"rcpt", address(K::AddRcpt, "<a@example.com>", "NOTIFY=NEVER"), true},
        ValidateCase{"rcpt_postmaster", address(K::AddRcpt, "<Postmaster>"), true},
        ValidateCase{"rcpt_lf", address(K::AddRcpt, "<a@example.com>\nR evil@x"), false},
        ValidateCase{"rcpt_not_mailbox", address(K::AddRcpt, "<a b c>"), false},
        ValidateCase{"rcpt_empty", address(K::AddRcpt, "<>"), false},
        ValidateCase{"rcpt_args_crlf", address(K::AddRcpt, "a@example.com", "X=1\r\nR b@c"), false},
        ValidateCase{"delrcpt_lf", address(K::DelRcpt, "a@b\nc"), false},
        ValidateCase{"from_null", address(K::ChangeFrom, "<>"), true},
        ValidateCase{"from_cr", address(K::ChangeFrom, "<a@b.example\r>"), false},
        ValidateCase{"body", body("new\r\nbody\r\n"), true},
        ValidateCase{"body_too_big", body(std::string(33, 'b')), false},
        ValidateCase{"body_nul", body(std::string("a\0b", 3)), false}));

TEST(FilterValidateCount, AtMostMaxModifications) {
  ModificationLimits limits;
  limits.max_modifications = 3;
  std::vector<Modification> mods(3, header(K::AddHeader, "X-A", " 1"));
  EXPECT_EQ(check_modifications(mods, limits), "");
  mods.push_back(mods.back());
  EXPECT_NE(check_modifications(mods, limits), "");
  mods.resize(2);
  mods.push_back(header(K::AddHeader, "Bad Name", "v"));
  EXPECT_NE(check_modifications(mods, limits), "");
}

struct ReplyCase {
  const char* text;
  bool valid;
};

class FilterValidateReply : public ::testing::TestWithParam<ReplyCase> {};

TEST_P(FilterValidateReply, Reply) {
  std::string why = check_reply(GetParam().text);
  EXPECT_EQ(why.empty(), GetParam().valid) << GetParam().text << ": " << why;
}

INSTANTIATE_TEST_SUITE_P(
    Table, FilterValidateReply,
    ::testing::Values(
        ReplyCase{"550 5.7.1 Rejected", true}, ReplyCase{"451", true},
        ReplyCase{"450 try later", true},
        ReplyCase{"550-5.7.1 one\r\n550-5.7.1 two\r\n550 5.7.1 three", true},
        ReplyCase{"550-one\r\n550 two\tand tab", true},
        ReplyCase{"250 ok", false},                          // not a refusal
        ReplyCase{"550-5.7.1 one\r\n250 2.0.0 two", false},  // later line's code
        ReplyCase{"550-5.7.1 one\r\n551 5.7.1 two", false},
        ReplyCase{"550 5.7.1 one\r\n550 5.7.1 two", false},  // ' ' before last
        ReplyCase{"550-5.7.1 one", false},                   // '-' on the last
        ReplyCase{"550-one\r\n550", true}, ReplyCase{"550 4.7.1 mixed classes", false},
        ReplyCase{"450 5.7.1 mixed classes", false}, ReplyCase{"550 one\ntwo", false},  // bare LF
        ReplyCase{"550 one\rtwo", false},                                               // bare CR
        ReplyCase{"550 one\r\n", false},      // empty last line
        ReplyCase{"550 caf\xc3\xa9", false},  // not ASCII
        ReplyCase{"550 a\x01", false},        // control
        ReplyCase{"5x0 bad", false}, ReplyCase{"55", false}, ReplyCase{"550x", false}));

TEST(FilterValidateReplyLimits, LinesAndLength) {
  std::string ok = "550 " + std::string(506, 'a');
  EXPECT_EQ(check_reply(ok), "");
  EXPECT_NE(check_reply(ok + "a"), "");
  std::string many;
  for (int i = 0; i < 33; ++i) many += "550-x\r\n";
  EXPECT_NE(check_reply(many + "550 x"), "");
}

TEST(FilterSanitizeReason, PrintableBoundedNeverEmpty) {
  EXPECT_EQ(sanitize_reason("spam\r\nBcc: x@y \"q\" \\"), "spam??Bcc: x@y ?q? ?");
  EXPECT_EQ(sanitize_reason(""), "quarantined by a filter");
  EXPECT_EQ(sanitize_reason(std::string(300, 'r')).size(), 200u);
  ParsedMessage m;
  Envelope env{"a@b", {"c@d"}, {}};
  Modification q;
  q.kind = K::Quarantine;
  q.text = "bad\nX-Injected: 1";
  apply({q}, m, env);
  EXPECT_EQ(env.quarantine, "bad?X-Injected: 1");
}

}  // namespace
}  // namespace estafette::filters
