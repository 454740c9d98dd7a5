// Table tests for the filter message model: parsing, rendering, and the milter modifications.
#include "filters/message_edit.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::filters {
namespace {

using Mod = Modification;
using K = Mod::Kind;

const std::string kMsg =
    "Received: from a\r\n\tby b; Mon, 1 Jan 2026\r\n"
    "From: <s@example.test>\r\n"
    "To: u@estafette.test\r\n"
    "X-Tag: one\r\n"
    "X-Tag: two\r\n"
    "Subject: hi\r\n"
    "\r\n"
    "body line\r\n"
    ".dot line\r\n";

TEST(FilterMessage, ParseAndRenderRoundTrip) {
  auto m = parse_message(kMsg);
  ASSERT_EQ(m.headers.size(), 6u);
  EXPECT_EQ(m.headers[0].name, "Received");
  EXPECT_EQ(m.headers[0].value, " from a\r\n\tby b; Mon, 1 Jan 2026");
  EXPECT_EQ(m.headers[3].value, " one");
  EXPECT_EQ(m.body, "body line\r\n.dot line\r\n");
  EXPECT_EQ(render_message(m), kMsg);
}

struct ParseCase {
  std::string name, input;
  std::size_t headers;
  std::string body;
};
class FilterMessageParse : public ::testing::TestWithParam<ParseCase> {};
TEST_P(FilterMessageParse, NoByteLost) {
  auto m = parse_message(GetParam().input);
  EXPECT_EQ(m.headers.size(), GetParam().headers);
  EXPECT_EQ(m.body, GetParam().body);
}
INSTANTIATE_TEST_SUITE_P(
    Table, FilterMessageParse,
    ::testing::Values(ParseCase{"Empty", "", 0, ""}, ParseCase{"OnlyHeaders", "A: b\r\n", 1, ""},
                      ParseCase{"NoHeaders", "\r\nbody\r\n", 0, "body\r\n"},
                      ParseCase{"NotAHeaderStartsTheBody", "A: b\r\nplain text\r\nmore\r\n", 1,
                                "plain text\r\nmore\r\n"},
                      ParseCase{"LeadingContinuationIsBody", " x\r\nA: b\r\n", 0, " x\r\nA: b\r\n"},
                      ParseCase{"SpaceInNameIsBody", "Bad Name: x\r\n", 0, "Bad Name: x\r\n"},
                      ParseCase{"EmptyValue", "A:\r\n\r\nb", 1, "b"}),
    [](const auto& info) { return info.param.name; });

struct ApplyCase {
  std::string name;
  std::vector<Mod> mods;
  std::vector<std::string> headers;  // "Name:value" after the change
  std::string body = "body line\r\n.dot line\r\n";
  std::string sender = "s@example.test";
  std::vector<std::string> rcpts = {"u@estafette.test"};
  std::string quarantine = "";
};
class FilterMessageApply : public ::testing::TestWithParam<ApplyCase> {};
TEST_P(FilterMessageApply, AsLibmilterDefines) {
  const auto& c = GetParam();
  auto m = parse_message(kMsg);
  Envelope env{"s@example.test", {"u@estafette.test"}, ""};
  apply(c.mods, m, env);
  std::vector<std::string> got;
  for (const auto& h : m.headers) got.push_back(h.name + ":" + h.value);
  EXPECT_EQ(got, c.headers);
  EXPECT_EQ(m.body, c.body);
  EXPECT_EQ(env.sender, c.sender);
  EXPECT_EQ(env.recipients, c.rcpts);
  EXPECT_EQ(env.quarantine, c.quarantine);
}

const std::vector<std::string> kHeaders = {"Received: from a\r\n\tby b; Mon, 1 Jan 2026",
                                           "From: <s@example.test>",
                                           "To: u@estafette.test",
                                           "X-Tag: one",
                                           "X-Tag: two",
                                           "Subject: hi"};

std::vector<std::string> With(std::vector<std::string> h, std::size_t at, std::string line) {
  h.insert(h.begin() + static_cast<std::ptrdiff_t>(at), std::move(line));
  return h;
}
std::vector<std::string> Without(std::vector<std::string> h, std::size_t at) {
  h.erase(h.begin() + static_cast<std::ptrdiff_t>(at));
  return h;
}

Mod M(K kind, std::string name = "", std::string value = "", std::uint32_t index = 0,
      std::string address = "", std::string body = "", std::string text = "") {
  Mod m;
  m.kind = kind;
  m.name = std::move(name);
  m.value = std::move(value);
  m.index = index;
  m.address = std::move(address);
  m.body = std::move(body);
  m.text = std::move(text);
  return m;
}

INSTANTIATE_TEST_SUITE_P(
    Table, FilterMessageApply,
    ::testing::Values(
        ApplyCase{"None", {}, kHeaders},
        ApplyCase{"AddHeaderGetsASpace",
                  {M(K::AddHeader, "X-New", "ok")},
                  With(kHeaders, 6, "X-New: ok")},
        ApplyCase{"AddHeaderKeepsItsOwnSpaceAndFoldsLf",
                  {M(K::AddHeader, "DKIM-Signature", " v=1;\n\tb=x")},
                  With(kHeaders, 6, "DKIM-Signature: v=1;\r\n\tb=x")},
        ApplyCase{"InsertFirst",
                  {M(K::InsertHeader, "X-First", "1", 0)},
                  With(kHeaders, 0, "X-First: 1")},
        ApplyCase{"InsertBeyondTheEndAppends",
                  {M(K::InsertHeader, "X-Last", "1", 99)},
                  With(kHeaders, 6, "X-Last: 1")},
        ApplyCase{"ChangeSecondOfTwo",
                  {M(K::ChangeHeader, "x-tag", "2", 2)},
                  [] {
                    auto h = kHeaders;
                    h[4] = "X-Tag: 2";
                    return h;
                  }()},
        ApplyCase{"DeleteFirstOfTwo", {M(K::ChangeHeader, "X-Tag", "", 1)}, Without(kHeaders, 3)},
        ApplyCase{"ChangeMissingAdds",
                  {M(K::ChangeHeader, "X-None", "v", 1)},
                  With(kHeaders, 6, "X-None: v")},
        ApplyCase{"DeleteMissingIsNothing", {M(K::ChangeHeader, "X-None", "", 1)}, kHeaders},
        ApplyCase{"ReplaceBody",
                  {M(K::ReplaceBody, "", "", 0, "", "new\nbody\r\n")},
                  kHeaders,
                  "new\r\nbody\r\n"},
        ApplyCase{"RewriteRecipient",
                  {M(K::DelRcpt, "", "", 0, "<U@estafette.test>"),
                   M(K::AddRcpt, "", "", 0, "<new@estafette.test>"),
                   M(K::AddRcpt, "", "", 0, "new@estafette.test")},
                  kHeaders,
                  "body line\r\n.dot line\r\n",
                  "s@example.test",
                  {"new@estafette.test"}},
        ApplyCase{"ChangeFromAndQuarantine",
                  {M(K::ChangeFrom, "", "", 0, "<other@example.test>"),
                   M(K::Quarantine, "", "", 0, "", "", "looks bad")},
                  kHeaders,
                  "body line\r\n.dot line\r\n",
                  "other@example.test",
                  {"u@estafette.test"},
                  "looks bad"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace estafette::filters
