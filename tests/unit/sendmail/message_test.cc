// estafette-sendmail's message handling: where stdin's message ends (fed split at every byte),
// line splitting, -t address extraction, the Date format, and the composed wire form.
#include "sendmail/message.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/smtp/split_feeder.h"

namespace estafette::sendmail {
namespace {

struct InputCase {
  std::string input;
  bool ignore_dots;
  std::string message;
  bool ends_early;  // feed() reported the end before the input's end
};

class SendmailInput : public ::testing::TestWithParam<InputCase> {};

TEST_P(SendmailInput, EndsAtADotLineUnlessIgnoringDots) {
  const auto& c = GetParam();
  for (const auto& split : smtp::testing::all_splits(c.input)) {
    MessageInput in(c.ignore_dots);
    bool early = false;
    for (auto chunk : split.chunks) {
      if (in.feed(chunk)) {
        early = true;
        break;
      }
    }
    if (!early) in.finish();
    EXPECT_EQ(in.text(), c.message) << split.name;
    EXPECT_EQ(early, c.ends_early) << split.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, SendmailInput,
                         ::testing::Values(InputCase{"a\nb\n", false, "a\nb\n", false},
                                           InputCase{"a\n.\nrest\n", false, "a\n", true},
                                           InputCase{"a\r\n.\r\nrest", false, "a\r\n", true},
                                           InputCase{".\nrest", false, "", true},
                                           InputCase{"a\n.\nrest\n", true, "a\n.\nrest\n", false},
                                           InputCase{"a\n..\n.x\n", false, "a\n..\n.x\n", false},
                                           InputCase{"a\n.", false, "a\n", false},
                                           InputCase{"a\n.", true, "a\n.", false},
                                           InputCase{"a.\n. \n", false, "a.\n. \n", false}));

struct LinesCase {
  std::string text;
  std::vector<std::string> lines;
};

class SendmailSplitLines : public ::testing::TestWithParam<LinesCase> {};

TEST_P(SendmailSplitLines, SplitsAtLfCrlfAndBareCr) {
  auto got = split_lines(GetParam().text);
  EXPECT_EQ(std::vector<std::string>(got.begin(), got.end()), GetParam().lines);
}

INSTANTIATE_TEST_SUITE_P(Table, SendmailSplitLines,
                         ::testing::Values(LinesCase{"", {}}, LinesCase{"a", {"a"}},
                                           LinesCase{"a\nb\n", {"a", "b"}},
                                           LinesCase{"a\r\nb\r\n", {"a", "b"}},
                                           LinesCase{"a\rb\r", {"a", "b"}},
                                           LinesCase{"a\n\n\r\nb", {"a", "", "", "b"}},
                                           LinesCase{"a\r\r\nb", {"a", "", "b"}}));

struct AddressCase {
  std::string value;
  std::vector<std::string> addresses;
};

class SendmailAddressList : public ::testing::TestWithParam<AddressCase> {};

TEST_P(SendmailAddressList, Extracts) {
  EXPECT_EQ(parse_address_list(GetParam().value), GetParam().addresses) << GetParam().value;
}

INSTANTIATE_TEST_SUITE_P(
    Table, SendmailAddressList,
    ::testing::Values(AddressCase{"", {}}, AddressCase{" a@x.test ", {"a@x.test"}},
                      AddressCase{"a@x, b@y", {"a@x", "b@y"}},
                      AddressCase{"Jane Doe <jane@x.test>", {"jane@x.test"}},
                      AddressCase{"\"Doe, Jane\" <jane@x.test>, bob@y.test (Bob, the builder)",
                                  {"jane@x.test", "bob@y.test"}},
                      AddressCase{"undisclosed-recipients:;", {}},
                      AddressCase{"team: a@x, B <b@y>; c@z", {"a@x", "b@y", "c@z"}},
                      AddressCase{"<@hop1,@hop2:u@dest.test>", {"u@dest.test"}},
                      AddressCase{"\"quoted local\"@x.test", {"\"quoted local\"@x.test"}},
                      AddressCase{"a@x (comment (nested) more), , <>", {"a@x"}},
                      AddressCase{"  folded\r\n\t<f@x.test>", {"f@x.test"}},
                      AddressCase{"alice", {"alice"}}));

struct DateCase {
  long long t;
  long gmtoff;
  std::string text;
};

class SendmailDate : public ::testing::TestWithParam<DateCase> {};

TEST_P(SendmailDate, Formats) {
  EXPECT_EQ(format_date(static_cast<std::time_t>(GetParam().t), GetParam().gmtoff),
            GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SendmailDate,
    ::testing::Values(DateCase{0, 0, "Thu, 1 Jan 1970 00:00:00 +0000"},
                      DateCase{1700000000, 3600, "Tue, 14 Nov 2023 23:13:20 +0100"},
                      DateCase{1700000000, -(5 * 3600 + 1800), "Tue, 14 Nov 2023 16:43:20 -0530"}));

struct ComposeCase {
  std::string name;
  std::string text;
  bool extract;
  std::vector<std::string> args;
  std::string full_name;
  std::vector<std::string> recipients;
  std::string wire;     // "" with error
  std::string error{};  // part of the error text
};

void PrintTo(const ComposeCase& c, std::ostream* os) {
  *os << c.name;
}

class SendmailCompose : public ::testing::TestWithParam<ComposeCase> {};

constexpr const char* kAdded =
    "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\nMessage-ID: <id@host.test>\r\n";

TEST_P(SendmailCompose, Composes) {
  const auto& c = GetParam();
  ComposeInput in;
  in.text = c.text;
  in.extract_recipients = c.extract;
  in.recipients = c.args;
  in.from_address = "me@host.test";
  in.full_name = c.full_name;
  in.date = "Thu, 1 Jan 1970 00:00:00 +0000";
  in.message_id = "<id@host.test>";
  in.qualify_domain = "host.test";
  auto out = compose(in);
  if (!c.error.empty()) {
    EXPECT_NE(out.error.find(c.error), std::string::npos) << out.error;
    return;
  }
  EXPECT_EQ(out.error, "");
  EXPECT_EQ(out.recipients, c.recipients);
  EXPECT_EQ(out.wire, c.wire);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SendmailCompose,
    ::testing::Values(
        ComposeCase{
            "AddsMissingFields",
            "Subject: hi\n\nhello\n",
            false,
            {"a@x.test"},
            "",
            {"a@x.test"},
            std::string("Subject: hi\r\nFrom: me@host.test\r\n") + kAdded + "\r\nhello\r\n"},
        ComposeCase{"KeepsPresentFields",
                    "From: a@b\r\nDate: x\r\nMessage-ID: <m@b>\r\n\r\nbody",
                    false,
                    {"a@x.test"},
                    "",
                    {"a@x.test"},
                    "From: a@b\r\nDate: x\r\nMessage-ID: <m@b>\r\n\r\nbody\r\n"},
        ComposeCase{"FullNameQuotedWhenNeeded",
                    "Subject: s\n\nb\n",
                    false,
                    {"a@x.test"},
                    "Doe, Jane",
                    {"a@x.test"},
                    std::string("Subject: s\r\nFrom: \"Doe, Jane\" <me@host.test>\r\n") + kAdded +
                        "\r\nb\r\n"},
        ComposeCase{"FullNamePlain",
                    "\nb\n",
                    false,
                    {"a@x.test"},
                    "Jane Doe",
                    {"a@x.test"},
                    std::string("From: Jane Doe <me@host.test>\r\n") + kAdded + "\r\nb\r\n"},
        ComposeCase{"NoHeaderAtAll",
                    "just a body\n",
                    false,
                    {"a@x.test"},
                    "",
                    {"a@x.test"},
                    std::string("From: me@host.test\r\n") + kAdded + "\r\njust a body\r\n"},
        ComposeCase{
            "DotStuffingAndLineEnds",
            "From: a@b\nDate: d\nMessage-ID: <m>\n\n.dot\r\n..two\rbare cr\n",
            false,
            {"a@x.test"},
            "",
            {"a@x.test"},
            "From: a@b\r\nDate: d\r\nMessage-ID: <m>\r\n\r\n..dot\r\n...two\r\nbare cr\r\n"},
        ComposeCase{
            "ExtractRemovesBccKeepsOrder",
            "From: a@b\nDate: d\nMessage-ID: <m>\nTo: T <t@x.test>, u@x.test\n"
            "Bcc: hidden@x.test,\n  hidden2@x.test\nCc: c@x.test\nSubject: s\n\nbody\n",
            true,
            {"arg@x.test", "c@x.test"},
            "",
            {"arg@x.test", "c@x.test", "t@x.test", "u@x.test", "hidden@x.test", "hidden2@x.test"},
            "From: a@b\r\nDate: d\r\nMessage-ID: <m>\r\nTo: T <t@x.test>, u@x.test\r\n"
            "Cc: c@x.test\r\nSubject: s\r\n\r\nbody\r\n"},
        ComposeCase{"WithoutExtractBccStaysAndIsNoRecipient",
                    "Bcc: h@x.test\n\nb\n",
                    false,
                    {"a@x.test"},
                    "",
                    {"a@x.test"},
                    std::string("Bcc: h@x.test\r\nFrom: me@host.test\r\n") + kAdded + "\r\nb\r\n"},
        ComposeCase{"QualifiesBareNames",
                    "To: alice\n\nb\n",
                    true,
                    {"bob"},
                    "",
                    {"bob@host.test", "alice@host.test"},
                    std::string("To: alice\r\nFrom: me@host.test\r\n") + kAdded + "\r\nb\r\n"},
        ComposeCase{"HeaderEndsAtANonField",
                    "Subject: s\nnot a field\nmore\n",
                    false,
                    {"a@x.test"},
                    "",
                    {"a@x.test"},
                    std::string("Subject: s\r\nFrom: me@host.test\r\n") + kAdded +
                        "\r\nnot a field\r\nmore\r\n"},
        ComposeCase{"MboxFromLineDropped",
                    "From someone Thu Jan  1 00:00:00 1970\nFrom: a@b\nDate: d\nMessage-ID: <m>\n"
                    "\nb\n",
                    false,
                    {"a@x.test"},
                    "",
                    {"a@x.test"},
                    "From: a@b\r\nDate: d\r\nMessage-ID: <m>\r\n\r\nb\r\n"},
        ComposeCase{
            "NoRecipients", "Subject: s\n\nb\n", false, {}, "", {}, "", "no recipients given"},
        ComposeCase{"ExtractFindsNone",
                    "Subject: s\n\nb\n",
                    true,
                    {},
                    "",
                    {},
                    "",
                    "no recipient addresses found"}),
    [](const ::testing::TestParamInfo<ComposeCase>& info) { return info.param.name; });

}  // namespace
}  // namespace estafette::sendmail
