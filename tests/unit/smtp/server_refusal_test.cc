// lib/smtp/server_session: the reason a refusing reply carries (Action::refusal), which esmtpd's
// metrics count: a table of conversations and the reason of the last reply.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lib/smtp/server_session.h"

namespace estafette::smtp {
namespace {

struct RefusalCase {
  const char* name;
  bool filtered;                   // the client's session runs filters
  std::string block;               // DNS lists' block reply ("" = none)
  RecipientVerdict routed;         // the router's verdict for every RCPT
  std::vector<std::string> lines;  // client lines after EHLO and MAIL
  std::string code;                // the last reply's code
  Refusal refusal;
};

const RefusalCase kCases[] = {
    {"relay denied", false, "", {}, {"RCPT TO:<a@elsewhere.example>"}, "550", Refusal::Relay},
    {"unknown user",
     false,
     "",
     {true, "550 5.1.1 <nobody@example.com>: no such mailbox"},
     {"RCPT TO:<nobody@example.com>"},
     "550",
     Refusal::UnknownUser},
    {"other router refusal",
     false,
     "",
     {true, "550 5.4.6 <x@example.com>: alias loop"},
     {"RCPT TO:<x@example.com>"},
     "550",
     Refusal::None},
    {"dnsbl",
     false,
     "listed by bl.test",
     {true, ""},
     {"RCPT TO:<a@example.com>"},
     "550",
     Refusal::Dnsbl},
    {"accepted", false, "", {true, ""}, {"RCPT TO:<a@example.com>"}, "250", Refusal::None},
    {"syntax", false, "", {true, ""}, {"RCPT TO:"}, "501", Refusal::None},
    {"no recipients", false, "", {true, ""}, {"DATA"}, "554", Refusal::None},
};

class ServerRefusal : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(ServerRefusal, LastReplyCarriesItsReason) {
  const RefusalCase& c = GetParam();
  ServerPolicy policy;
  policy.hostname = "mx.example";
  policy.local_domains = {"example.com"};
  policy.check_recipient = [&](const std::string&) { return c.routed; };
  ClientInfo client;
  client.ip = "192.0.2.1";
  client.filtered = c.filtered;
  client.checks_pending = !c.block.empty();
  ServerSession s(policy, client);
  s.start();
  if (!c.block.empty()) {
    CheckVerdict verdict;
    verdict.block_reply = c.block;
    s.on_checks_done(verdict);
  }
  s.on_line("EHLO client.example", LineStatus::Ok);
  s.on_line("MAIL FROM:<s@sender.example>", LineStatus::Ok);
  Actions last;
  for (const auto& line : c.lines) last = s.on_line(line, LineStatus::Ok);
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(last.front().kind, ActionKind::Reply);
  EXPECT_EQ(last.front().text.substr(0, 3), c.code) << last.front().text;
  EXPECT_EQ(last.front().refusal, c.refusal) << last.front().text;
}

INSTANTIATE_TEST_SUITE_P(Table, ServerRefusal, ::testing::ValuesIn(kCases), [](const auto& info) {
  std::string n = info.param.name;
  for (char& ch : n)
    if (ch == ' ') ch = '_';
  return n;
});

TEST(ServerRefusalFilter, FilterRefusalsCarryFilter) {
  ServerPolicy policy;
  policy.hostname = "mx.example";
  policy.local_domains = {"example.com"};
  ClientInfo client;
  client.ip = "192.0.2.1";
  client.filtered = true;
  ServerSession s(policy, client);
  s.start();
  s.on_line("EHLO client.example", LineStatus::Ok);
  s.on_filter_verdict({});  // the HELO phase goes on
  s.on_line("MAIL FROM:<s@sender.example>", LineStatus::Ok);
  FilterVerdict verdict;
  verdict.action = FilterVerdict::Action::Reject;
  Actions a = s.on_filter_verdict(verdict);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a.front().text.substr(0, 3), "550");
  EXPECT_EQ(a.front().refusal, Refusal::Filter);
  s.on_line("MAIL FROM:<s@sender.example>", LineStatus::Ok);
  verdict.action = FilterVerdict::Action::Tempfail;
  a = s.on_filter_verdict(verdict);
  EXPECT_EQ(a.front().text.substr(0, 3), "451");
  EXPECT_EQ(a.front().refusal, Refusal::Filter);
}

}  // namespace
}  // namespace estafette::smtp
