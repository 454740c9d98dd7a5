// Tests for filters/policy/protocol.h: the request's form, the answer reader (split anywhere,
// bounded, malformed answers) and the table of actions.
#include "filters/policy/protocol.h"

#include <gtest/gtest.h>

#include <string>

#include "filters/validate.h"

namespace estafette::policy {
namespace {

using Action = filters::Verdict::Action;
using Kind = filters::Modification::Kind;

TEST(PolicyProtocol, RequestIsOneLinePerAttributeAndABlankLine) {
  EXPECT_EQ(format_request({{"request", "smtpd_access_policy"}, {"sender", "a@b"}, {"size", ""}}),
            "request=smtpd_access_policy\nsender=a@b\nsize=\n\n");
}

TEST(PolicyProtocol, RequestCleansLineEndsAndNul) {
  std::string value = "evil\r\nrecipient=x";
  value += '\0';
  value += "z\n";
  EXPECT_EQ(format_request({{"helo_name", value}}), "helo_name=evil  recipient=x z \n\n");
}

struct ReadCase {
  const char* name;
  const char* input;
  ReplyReader::Status status;
  const char* action;  // when Done
};

void PrintTo(const ReadCase& c, std::ostream* os) {
  *os << c.name;
}

class PolicyReply : public ::testing::TestWithParam<ReadCase> {};

TEST_P(PolicyReply, Reads) {
  const auto& c = GetParam();
  std::string input = c.input;
  // Whole, and one byte at a time: the same result.
  for (std::size_t step : {input.size(), std::size_t{1}}) {
    ReplyReader reader;
    ReplyReader::Status status = ReplyReader::Status::NeedMore;
    for (std::size_t i = 0; i < input.size() && status != ReplyReader::Status::Error; i += step)
      status = reader.feed(std::string_view(input).substr(i, step));
    EXPECT_EQ(status, c.status) << "step " << step << " " << reader.error();
    if (c.status == ReplyReader::Status::Done) {
      EXPECT_EQ(reader.action(), c.action);
    }
    if (c.status == ReplyReader::Status::Error) {
      EXPECT_FALSE(reader.error().empty());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, PolicyReply,
    ::testing::Values(ReadCase{"dunno", "action=DUNNO\n\n", ReplyReader::Status::Done, "DUNNO"},
                      ReadCase{"crlf", "action=REJECT no\r\n\r\n", ReplyReader::Status::Done,
                               "REJECT no"},
                      ReadCase{"other attributes ignored", "x=1\naction=OK\naction=REJECT\n\n",
                               ReplyReader::Status::Done, "OK"},
                      ReadCase{"incomplete", "action=DUNNO\n", ReplyReader::Status::NeedMore, ""},
                      ReadCase{"no action", "foo=bar\n\n", ReplyReader::Status::Error, ""},
                      ReadCase{"no equals", "DUNNO\n\n", ReplyReader::Status::Error, ""},
                      ReadCase{"empty answer", "\n", ReplyReader::Status::Error, ""},
                      ReadCase{"data after the answer", "action=OK\n\naction=OK\n\n",
                               ReplyReader::Status::Error, ""}));

TEST(PolicyProtocol, OversizeAnswerIsAnError) {
  ReplyReader reader;
  std::string big = "action=" + std::string(kMaxReply, 'x');
  EXPECT_EQ(reader.feed(big), ReplyReader::Status::Error);
  EXPECT_EQ(reader.feed("\n\n"), ReplyReader::Status::Error);  // stays failed
}

struct ActionCase {
  const char* action;
  bool ok;
  Action verdict;
  const char* text;  // the reply, or a modification's value/text
  int mod;           // -1: none; else the Modification kind
};

void PrintTo(const ActionCase& c, std::ostream* os) {
  *os << c.action;
}

class PolicyAction : public ::testing::TestWithParam<ActionCase> {};

TEST_P(PolicyAction, Maps) {
  const auto& c = GetParam();
  Decision d;
  std::string error;
  ASSERT_EQ(parse_action(c.action, d, &error), c.ok) << error;
  if (!c.ok) {
    EXPECT_FALSE(error.empty());
    return;
  }
  EXPECT_EQ(d.verdict.action, c.verdict);
  if (c.verdict == Action::ReplyCode) {
    EXPECT_EQ(d.verdict.text, c.text);
    EXPECT_EQ(filters::check_reply(d.verdict.text), "");  // what the Chain will check
  }
  if (c.mod < 0) {
    EXPECT_TRUE(d.modifications.empty());
  } else {
    ASSERT_EQ(d.modifications.size(), 1u);
    const auto& m = d.modifications[0];
    EXPECT_EQ(static_cast<int>(m.kind), c.mod);
    EXPECT_EQ(m.kind == Kind::Quarantine ? m.text : m.name + ":" + m.value, c.text);
    if (m.kind == Kind::InsertHeader) {
      EXPECT_EQ(m.index, 0u);
    }
    EXPECT_EQ(filters::check_modification(m, {}), "");
  }
}

constexpr int kInsert = static_cast<int>(Kind::InsertHeader);
constexpr int kQuarantine = static_cast<int>(Kind::Quarantine);

INSTANTIATE_TEST_SUITE_P(
    Table, PolicyAction,
    ::testing::Values(
        ActionCase{"OK", true, Action::Continue, "", -1},
        ActionCase{"dunno", true, Action::Continue, "", -1},
        ActionCase{"REJECT", true, Action::ReplyCode, "554 5.7.1 Access denied", -1},
        ActionCase{"REJECT go away", true, Action::ReplyCode, "554 5.7.1 go away", -1},
        ActionCase{"REJECT 5.7.23 SPF fail", true, Action::ReplyCode, "554 5.7.23 SPF fail", -1},
        ActionCase{"DEFER later", true, Action::ReplyCode, "450 4.7.1 later", -1},
        ActionCase{"DEFER_IF_PERMIT Greylisted, see http://x/", true, Action::ReplyCode,
                   "450 4.7.1 Greylisted, see http://x/", -1},
        ActionCase{"550 5.7.23 Rejected by SPF", true, Action::ReplyCode,
                   "550 5.7.23 Rejected by SPF", -1},
        ActionCase{"421 not now", true, Action::ReplyCode, "421 4.7.1 not now", -1},
        // An enhanced code of the other class is replaced, not trusted.
        ActionCase{"451 5.1.1 mixed", true, Action::ReplyCode, "451 4.7.1 mixed", -1},
        ActionCase{"550", true, Action::ReplyCode, "550 5.7.1 Rejected", -1},
        ActionCase{"REJECT bad\x01"
                   "char",
                   true, Action::ReplyCode, "554 5.7.1 bad?char", -1},
        ActionCase{"PREPEND X-Policy: checked", true, Action::Continue, "X-Policy: checked",
                   kInsert},
        ActionCase{"PREPEND Received-SPF: Pass (mailfrom)", true, Action::Continue,
                   "Received-SPF: Pass (mailfrom)", kInsert},
        ActionCase{"DISCARD spam", true, Action::Discard, "", -1},
        ActionCase{"HOLD look at it", true, Action::Continue, "look at it", kQuarantine},
        ActionCase{"WARN odd", true, Action::Continue, "", -1},
        ActionCase{"FILTER smtp:[127.0.0.1]:10025", true, Action::Continue, "", -1},
        ActionCase{"REDIRECT a@b", true, Action::Continue, "", -1},
        ActionCase{"whatever", true, Action::Continue, "", -1},
        ActionCase{"", false, Action::Continue, "", -1},
        ActionCase{"   ", false, Action::Continue, "", -1},
        ActionCase{"PREPEND no header", false, Action::Continue, "", -1},
        ActionCase{"PREPEND", false, Action::Continue, "", -1},
        ActionCase{"PREPEND X-A\r: b", false, Action::Continue, "", -1},
        ActionCase{"PREPEND X-A: b\rX-B: c", false, Action::Continue, "", -1},
        ActionCase{"250 fine", false, Action::Continue, "", -1},
        ActionCase{"6000 x", false, Action::Continue, "", -1}));

TEST(PolicyProtocol, NotesWhatIsNotDone) {
  Decision d;
  std::string error;
  ASSERT_TRUE(parse_action("WARN odd client", d, &error));
  EXPECT_NE(d.note.find("odd client"), std::string::npos);
  ASSERT_TRUE(parse_action("BCC x@y", d, &error));
  EXPECT_NE(d.note.find("BCC"), std::string::npos);
  ASSERT_TRUE(parse_action("OK", d, &error));
  EXPECT_EQ(d.note, "");
}

}  // namespace
}  // namespace estafette::policy
