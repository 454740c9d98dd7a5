#include "lib/smtp/server_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lib/auth/base64.h"
#include "tests/unit/auth/rfc7677.h"
#include "tests/unit/smtp/split_feeder.h"

namespace estafette::smtp {
namespace {

using testing::all_splits;

ServerPolicy TestPolicy() {
  ServerPolicy policy;
  policy.hostname = "mx.example";
  policy.max_message_size = 1000;
  policy.max_recipients = 3;
  policy.max_errors = 5;
  policy.local_domains = {"example.com", ".parent.example"};
  policy.relay_domains = {"relay.example"};
  return policy;
}

ClientInfo TestClient(bool relay_client = false) {
  ClientInfo client;
  client.ip = "192.0.2.1";
  client.port = 41000;
  client.relay_client = relay_client;
  return client;
}

// One token per action: the code of a reply's last line, or DATA / COMMIT / CLOSE.
std::string Summarize(const Actions& actions) {
  std::string out;
  for (const Action& action : actions) {
    if (!out.empty()) out += ' ';
    switch (action.kind) {
      case ActionKind::Reply: {
        EXPECT_GE(action.text.size(), 5u);
        EXPECT_EQ(action.text.substr(action.text.size() - 2), "\r\n");
        std::size_t last = action.text.rfind("\r\n", action.text.size() - 3);
        last = last == std::string::npos ? 0 : last + 2;
        EXPECT_EQ(action.text[last + 3], ' ') << action.text;
        out += action.text.substr(last, 3);
        break;
      }
      case ActionKind::BeginData:
        out += "DATA";
        break;
      case ActionKind::Commit:
        out += "COMMIT";
        break;
      case ActionKind::Close:
        out += "CLOSE";
        break;
      case ActionKind::LookupSender:
        out += "LOOKUP:" + action.text;
        break;
      case ActionKind::LookupRecipient:
        out += "RCPT-LOOKUP:" + action.text;
        break;
      case ActionKind::FilterHelo:
        out += "F-HELO:" + action.text;
        break;
      case ActionKind::FilterMail:
        out += "F-MAIL:" + action.text;
        break;
      case ActionKind::FilterRcpt:
        out += "F-RCPT:" + action.text;
        break;
      case ActionKind::FilterData:
        out += "F-DATA";
        break;
      case ActionKind::FilterMessage:
        out += "F-MSG";
        break;
      case ActionKind::StartTls:
        out += "STARTTLS";
        break;
      case ActionKind::VerifyAuth:
        out += "AUTH:" + action.text;
        break;
      case ActionKind::LookupScram:
        out += "SCRAM-LOOKUP:" + action.text;
        break;
      case ActionKind::AuthChecked:
        out += "CHECKED:" + action.text;
        break;
    }
  }
  return out;
}

std::string ReplyText(const Actions& actions) {
  std::string out;
  for (const Action& action : actions) out += action.text;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conversations: one event per step, with the expected actions.
//   "!long", "!bare:<line>"          a line with LineStatus TooLong / BareLineEnding
//   "!data:ok|toobig|bare|long[:N]"  on_data_end (N = size, default 100)
//   "!queued:<id>", "!failed", "!nospace", "!timeout"
//   "!checks:<rdns>:<ident>:<block reply>"  on_checks_done
//   "!sender:ok|notfound|temp|nullmx"       on_sender_checked
//   "!filter:<kind>[:<text>]"               on_filter_verdict (continue, accept, reject,
//   "!fconnect:<kind>[:<text>]"             tempfail, discard, failed, reply) / on_filter_connect
//   anything else                    on_line(text, Ok)

struct Step {
  std::string input;
  std::string expect;         // Summarize() of the actions
  std::string contains = {};  // must occur in the reply text
};

struct Conversation {
  std::string name;
  std::vector<Step> steps;
  bool relay_client = false;
  bool checks_pending = false;
  bool check_sender_domain = false;
  bool filtered = false;
};

std::string PrintConversation(const ::testing::TestParamInfo<Conversation>& info) {
  return info.param.name;
}

void PrintTo(const Conversation& c, std::ostream* os) {
  *os << c.name;
}

Actions RunStep(ServerSession& session, const std::string& input) {
  auto arg = [&](std::string_view prefix) { return input.substr(prefix.size()); };
  if (input == "!long") return session.on_line("", LineStatus::TooLong);
  if (input.starts_with("!bare:"))
    return session.on_line(arg("!bare:"), LineStatus::BareLineEnding);
  if (input.starts_with("!data:")) {
    std::string what = arg("!data:");
    std::size_t size = 100;
    if (auto colon = what.find(':'); colon != std::string::npos) {
      size = std::stoul(what.substr(colon + 1));
      what.resize(colon);
    }
    DataStatus status = what == "ok"       ? DataStatus::Ok
                        : what == "toobig" ? DataStatus::TooBig
                        : what == "bare"   ? DataStatus::BareLineEnding
                                           : DataStatus::LineTooLong;
    return session.on_data_end(status, size);
  }
  if (input.starts_with("!queued:")) return session.on_queued(arg("!queued:"));
  if (input == "!failed") return session.on_queue_failed();
  if (input == "!nospace") return session.on_queue_failed(QueueFailure::NoSpace);
  if (input == "!timeout") return session.on_timeout();
  if (input.starts_with("!checks:")) {
    std::string rest = arg("!checks:");
    auto c1 = rest.find(':'), c2 = rest.find(':', c1 + 1);
    CheckVerdict verdict{rest.substr(0, c1), rest.substr(c1 + 1, c2 - c1 - 1), rest.substr(c2 + 1)};
    return session.on_checks_done(verdict);
  }
  if (input.starts_with("!filter:") || input.starts_with("!fconnect:")) {
    bool connect = input.starts_with("!fconnect:");
    std::string rest = connect ? arg("!fconnect:") : arg("!filter:");
    auto colon = rest.find(':');
    std::string kind = rest.substr(0, colon);
    using A = FilterVerdict::Action;
    FilterVerdict v{kind == "continue"   ? A::Continue
                    : kind == "accept"   ? A::Accept
                    : kind == "reject"   ? A::Reject
                    : kind == "tempfail" ? A::Tempfail
                    : kind == "discard"  ? A::Discard
                    : kind == "failed"   ? A::Failed
                                         : A::ReplyCode,
                    colon == std::string::npos ? "" : rest.substr(colon + 1), "test"};
    return connect ? session.on_filter_connect(v) : session.on_filter_verdict(v);
  }
  if (input.starts_with("!sender:")) {
    std::string what = arg("!sender:");
    return session.on_sender_checked(what == "ok"         ? SenderDomain::Ok
                                     : what == "notfound" ? SenderDomain::NotFound
                                     : what == "nullmx"   ? SenderDomain::NullMx
                                                          : SenderDomain::TempFail);
  }
  return session.on_line(input, LineStatus::Ok);
}

class SmtpServerConversation : public ::testing::TestWithParam<Conversation> {};

TEST_P(SmtpServerConversation, RepliesAsExpected) {
  const Conversation& c = GetParam();
  ServerPolicy policy = TestPolicy();
  ClientInfo client = TestClient(c.relay_client);
  client.checks_pending = c.checks_pending;
  client.check_sender_domain = c.check_sender_domain;
  client.filtered = c.filtered;
  ServerSession session(policy, client);
  ASSERT_EQ(Summarize(session.start()), "220");
  for (const Step& step : c.steps) {
    SCOPED_TRACE(step.input);
    Actions actions = RunStep(session, step.input);
    EXPECT_EQ(Summarize(actions), step.expect);
    if (!step.contains.empty()) {
      EXPECT_NE(ReplyText(actions).find(step.contains), std::string::npos) << ReplyText(actions);
    }
  }
}

const std::string kMail = "MAIL FROM:<sender@remote.org>";
const std::string kRcpt = "RCPT TO:<user@example.com>";

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpServerConversation,
    ::testing::Values(
        Conversation{"Basic",
                     {{"EHLO client.example", "250", "250-mx.example\r\n250-PIPELINING\r\n"},
                      {kMail, "250", "250 2.1.0 Ok\r\n"},
                      {kRcpt, "250", "250 2.1.5 Ok\r\n"},
                      {"DATA", "354 DATA"},
                      {"!data:ok", "COMMIT"},
                      {"!queued:4Xk2", "250", "250 2.0.0 Ok: queued as 4Xk2\r\n"},
                      {"QUIT", "221 CLOSE", "221 2.0.0 "},
                      {"NOOP", ""}}},
        Conversation{"EhloKeywords",
                     {{"EHLO c", "250", "250-SIZE 1000\r\n"},
                      {"EHLO c", "250", "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"},
                      {"EHLO c", "250", "\r\n250 HELP\r\n"}}},
        Conversation{"Helo",
                     {{"HELO client.example", "250", "250 mx.example\r\n"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"}}},
        Conversation{"HeloRequired", {{kMail, "503", "503 5.5.1 "}, {"EHLO", "501", "501 5.5.4 "}}},
        Conversation{"Sequence",
                     {{"EHLO c", "250"},
                      {kRcpt, "503", "503 5.5.1 Error: need MAIL command"},
                      {"DATA", "503", "503 5.5.1 "},
                      {kMail, "250"},
                      {kMail, "503", "503 5.5.1 Error: nested MAIL command"},
                      {"DATA", "554", "554 5.5.1 Error: no valid recipients"}}},
        Conversation{
            "NullSender",
            {{"EHLO c", "250"}, {"MAIL FROM:<>", "250"}, {kRcpt, "250"}, {"DATA", "354 DATA"}}},
        Conversation{
            "RelayControl",
            {{"EHLO c", "250"},
             {kMail, "250"},
             {"RCPT TO:<x@other.org>", "550", "550 5.7.1 <x@other.org>: Relay access denied\r\n"},
             {"RCPT TO:<x@sub.example.com>", "550", "5.7.1"},
             {"RCPT TO:<x@relay.example>", "250"},
             {"RCPT TO:<User@EXAMPLE.Com>", "250"},
             {"RCPT TO:<postmaster>", "250"}}},
        Conversation{"SubdomainEntry",  // ".parent.example": every subdomain, not itself
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {"RCPT TO:<x@parent.example>", "550", "5.7.1"},
                      {"RCPT TO:<x@xparent.example>", "550", "5.7.1"},
                      {"RCPT TO:<x@h1.foo.Parent.Example>", "250"},
                      {"RCPT TO:<x@a.parent.example>", "250"}}},
        Conversation{"RelayClient",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {"RCPT TO:<x@other.org>", "250"},
                      {"RCPT TO:<x@[192.0.2.7]>", "250"}},
                     true},
        // allow_untrusted_routing = no: routing in a relay_domains address only from relay
        // clients; local domains are not relayed, so they take it (and so does a relay client).
        // (max_errors is 5: four refusals per conversation.)
        Conversation{"UntrustedRouting",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {"RCPT TO:<a%b.test@relay.example>", "550",
                       "550 5.7.1 <a%b.test@relay.example>: Relay access denied\r\n"},
                      {"RCPT TO:<b.test!a@relay.example>", "550", "5.7.1"},
                      {"RCPT TO:<\"a@b.test\"@relay.example>", "550", "5.7.1"},
                      {"RCPT TO:<\"a%b.test\"@Relay.Example>", "550", "5.7.1"},
                      {"RCPT TO:<a@relay.example>", "250"},
                      {"RCPT TO:<a%b.test@example.com>", "250"},
                      {"RCPT TO:<@hop.test:u@example.com>", "250"}}},
        Conversation{"UntrustedSourceRoute",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {"RCPT TO:<@hop.test,@hop2.test:a@relay.example>", "550", "5.7.1"},
                      {"RCPT TO:<@hop.test:a@other.org>", "550", "5.7.1"},
                      {"RCPT TO:<a@relay.example>", "250"},
                      {"RCPT TO:<a%b.test@example.com>", "250"},
                      {"RCPT TO:<@hop.test:u@example.com>", "250"}}},
        Conversation{"TrustedRouting",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {"RCPT TO:<a%b.test@relay.example>", "250"},
                      {"RCPT TO:<@hop.test:a@relay.example>", "250"},
                      {"RCPT TO:<\"a@b.test\"@relay.example>", "250"}},
                     true},
        Conversation{"HostileHeloRefused",
                     {{std::string("EHLO a\0b", 8), "501", "501 5.5.2 "},
                      {"EHLO a\tb", "501", "control characters"},
                      {"HELO a\x7f", "501"},
                      {"EHLO " + std::string(256, 'h'), "501", "longer than 255"},
                      {"EHLO " + std::string(255, 'h'), "250"},
                      {kMail, "250"}}},
        Conversation{"Size",
                     {{"EHLO c", "250"},
                      {kMail + " SIZE=1001", "552", "552 5.3.4 "},
                      {kMail + " SIZE=99999999999999999999999999", "552"},
                      {kMail + " SIZE=12x", "501", "501 5.5.4 "},
                      {kMail + " SIZE=1000", "250"}}},
        Conversation{"MailParams",
                     {{"EHLO c", "250"},
                      {kMail + " FOO=bar", "555", "555 5.5.4 Unsupported option: FOO"},
                      {kMail + " BODY=BINARYMIME", "555", "555 5.5.4 "},
                      {kMail + " SIZE=1 SIZE=2", "501", "Duplicate"},
                      {kMail + " body=8bitmime size=10", "250"},
                      {"RCPT TO:<a@example.com> FOO=1", "555", "555 5.5.4 Unsupported option: FOO"},
                      {"RCPT TO:<a@example.com> NOTIFY=NEVER", "250"}}},
        Conversation{"Dsn",
                     {{"EHLO c", "250", "250-DSN\r\n"},
                      {kMail + " RET=ALL", "501", "501 5.5.4 Bad RET parameter"},
                      {kMail + " ENVID=a ENVID=b", "501", "501 5.5.4 Duplicate parameter: ENVID"},
                      {kMail + " ENVID=a+zz", "501", "501 5.5.4 Bad ENVID parameter"},
                      {kMail + " RET=HDRS ENVID=QQ+2B1", "250"}}},
        Conversation{
            "DsnRcpt",
            {{"EHLO c", "250"},
             {kMail + " RET=FULL", "250"},
             {kRcpt + " NOTIFY=NEVER,SUCCESS", "501", "501 5.5.4 Bad NOTIFY parameter"},
             {kRcpt + " NOTIFY=NEVER NOTIFY=NEVER", "501", "501 5.5.4 Duplicate parameter: NOTIFY"},
             {kRcpt + " ORCPT=user@example.com", "501", "501 5.5.4 Bad ORCPT parameter"},
             {kRcpt + " NOTIFY=success,failure ORCPT=rfc822;user+2Bx@example.com", "250"},
             {"RCPT TO:<x@relay.example> NOTIFY=NEVER", "250"}}},
        Conversation{"SyntaxErrors",
                     {{"EHLO c", "250"},
                      {"MAIL FROM:sender@remote.org", "501", "501 5.5.4 Syntax: MAIL FROM:<"},
                      {"MAIL FROM:<a..b@c.d>", "501", "501 5.1.7 "},
                      {kMail, "250"},
                      {"RCPT TO:<>", "501", "501 5.1.3 "},
                      {"DATA x", "501", "501 5.5.4 "}}},
        Conversation{"TooManyRecipients",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {"RCPT TO:<a@example.com>", "250"},
                      {"RCPT TO:<b@example.com>", "250"},
                      {"RCPT TO:<c@example.com>", "250"},
                      {"RCPT TO:<d@example.com>", "452", "452 4.5.3 "},
                      {"RCPT TO:<e@example.com>", "452"},
                      {"RCPT TO:<f@example.com>", "452"},
                      {"RCPT TO:<g@example.com>", "452"},
                      {"RCPT TO:<h@example.com>", "452"},  // 452 is not an error: no 421
                      {"DATA", "354 DATA"}}},
        Conversation{"BadLines",
                     {{"!bare:EHLO c", "500", "500 5.5.2 "},
                      {"!long", "500", "500 5.5.6 "},
                      {"EHLO c", "250"}}},
        Conversation{"TooManyErrors",
                     {{"FOO", "500", "500 5.5.2 Error: command not recognized"},
                      {"BAR", "500"},
                      {"!long", "500"},
                      {"MAIL FROM:<x@y.z>", "503"},
                      {"BAZ", "500 421 CLOSE", "421 4.7.0 mx.example "},
                      {"EHLO c", ""},
                      {"!timeout", ""}}},
        Conversation{"DataTooBig",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"},
                      {"!data:toobig:2000", "552", "552 5.3.4 "},
                      {kRcpt, "503"},
                      {kMail, "250"}}},
        Conversation{"DataOkButOverSize",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"},
                      {"!data:ok:1001", "552", "552 5.3.4 "}}},
        Conversation{"DataBareLineEnding",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"},
                      {"!data:bare", "550", "550 5.6.0 Message contains bare CR or LF"},
                      {kMail, "250"}}},
        Conversation{"DataLineTooLong",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"},
                      {"!data:long", "552", "552 5.6.0 "}}},
        Conversation{"QueueFailed",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"},
                      {"!data:ok", "COMMIT"},
                      {"!failed", "451", "451 4.3.0 "},
                      {"DATA", "503"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"},
                      {"!data:ok", "COMMIT"},
                      {"!queued:B", "250", "queued as B"}}},
        Conversation{"QueueFull",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"},
                      {"!data:ok", "COMMIT"},
                      {"!nospace", "452", "452 4.3.1 Insufficient system storage"},
                      {"NOOP", "250"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"DATA", "354 DATA"},
                      {"!data:ok", "COMMIT"},
                      {"!queued:C", "250", "queued as C"}}},
        Conversation{"Timeout", {{"EHLO c", "250"}, {"!timeout", "421 CLOSE", "421 4.4.2 "}}},
        Conversation{"OtherCommands",
                     {{"NOOP", "250", "250 2.0.0 "},
                      {"VRFY root", "252", "252 2.5.2 "},
                      {"HELP", "214", "214 2.0.0 "},
                      {"STARTTLS", "502", "502 5.5.1 "},
                      {"EHLO c", "250"},
                      {kMail, "250"},
                      {"RSET", "250", "250 2.0.0 "},
                      {kRcpt, "503"},
                      {kMail, "250"},
                      {"EHLO again", "250"},
                      {kRcpt, "503"},
                      {"quit", "221 CLOSE"}}},
        // Connection checks: the first RCPT waits for them; MAIL does not.
        Conversation{"RcptWaitsForChecks",
                     {{"EHLO c", "250"},
                      {kMail, "250"},
                      {kRcpt, ""},
                      {"!checks:client.test:joe:", "250", "250 2.1.5 "},
                      {kRcpt, "250"}},
                     false,
                     true},
        Conversation{"ChecksBeforeRcpt",
                     {{"!checks:client.test::", ""},
                      {"EHLO c", "250"},
                      {kMail, "250"},
                      {kRcpt, "250"},
                      {"!checks:other::blocked", ""},  // only the first verdict counts
                      {kRcpt, "250"}},
                     false,
                     true},
        Conversation{
            "BlockedByDnsLists",
            {{"EHLO c", "250"},
             {kMail, "250"},
             {kRcpt, ""},
             {"!checks:unknown::Listed in bl1.test", "550", "550 5.7.1 Listed in bl1.test\r\n"},
             {kRcpt, "550", "550 5.7.1 Listed in bl1.test"},
             {"DATA", "554"},
             {"QUIT", "221 CLOSE"}},
            false,
            true},
        Conversation{
            "BlockedEvenForRelayClients",
            {{"!checks:unknown::no", ""}, {"EHLO c", "250"}, {kMail, "250"}, {kRcpt, "550"}},
            true,
            true},
        Conversation{"SenderDomainFound",
                     {{"EHLO c", "250"},
                      {kMail, "LOOKUP:remote.org"},
                      {"!sender:ok", "250", "250 2.1.0 "},
                      {kRcpt, "250"}},
                     false,
                     false,
                     true},
        Conversation{"SenderDomainMissing",
                     {{"EHLO c", "250"},
                      {kMail, "LOOKUP:remote.org"},
                      {"!sender:notfound", "550",
                       "550 5.1.8 <sender@remote.org>: Sender address rejected: Domain not found"},
                      {kRcpt, "503"},
                      {kMail, "LOOKUP:remote.org"},
                      {"!sender:temp", "451", "451 4.1.8 "},
                      {kMail, "LOOKUP:remote.org"},
                      {"!sender:nullmx", "550", "550 5.7.27 "},
                      {"MAIL FROM:<>", "250"},
                      {kRcpt, "250"}},
                     false,
                     false,
                     true},
        Conversation{"SenderLiteralNotLookedUp",
                     {{"EHLO c", "250"}, {"MAIL FROM:<a@[192.0.2.1]>", "250"}},
                     false,
                     false,
                     true},
        Conversation{"SenderLookupThenChecks",
                     {{"EHLO c", "250"},
                      {kMail, "LOOKUP:remote.org"},
                      {"!checks:client.test::", ""},
                      {"!sender:ok", "250"},
                      {kRcpt, "250"}},
                     false,
                     true,
                     true},
        // Filters: every phase asks, the verdict gives the reply.
        Conversation{"FiltersContinue",
                     {{"EHLO c", "F-HELO:c"},
                      {"!filter:continue", "250", "250-PIPELINING"},
                      {kMail, "F-MAIL:sender@remote.org"},
                      {"!filter:continue", "250", "250 2.1.0 "},
                      {kRcpt, "F-RCPT:user@example.com"},
                      {"!filter:accept", "250", "250 2.1.5 "},
                      {"DATA", "F-DATA"},
                      {"!filter:continue", "354 DATA"},
                      {"!data:ok", "F-MSG"},
                      {"!filter:continue", "COMMIT"},
                      {"!queued:Q1", "250", "queued as Q1"}},
                     false,
                     false,
                     false,
                     true},
        Conversation{"FiltersReject",
                     {{"EHLO c", "F-HELO:c"},
                      {"!filter:continue", "250"},
                      {kMail, "F-MAIL:sender@remote.org"},
                      {"!filter:reject", "550", "550 5.7.1 Sender rejected"},
                      {kRcpt, "503"},
                      {kMail, "F-MAIL:sender@remote.org"},
                      {"!filter:continue", "250"},
                      {kRcpt, "F-RCPT:user@example.com"},
                      {"!filter:reply:550 5.7.1 not this one", "550", "550 5.7.1 not this one"},
                      {"RCPT TO:<other@example.com>", "F-RCPT:other@example.com"},
                      {"!filter:continue", "250"},
                      {"DATA", "F-DATA"},
                      {"!filter:continue", "354 DATA"},
                      {"!data:ok", "F-MSG"},
                      {"!filter:tempfail", "451", "451 4.7.1 "},
                      {kMail, "F-MAIL:sender@remote.org"},
                      {"!filter:continue", "250"}},
                     false,
                     false,
                     false,
                     true},
        Conversation{"FiltersDiscard",
                     {{"EHLO c", "F-HELO:c"},
                      {"!filter:continue", "250"},
                      {kMail, "F-MAIL:sender@remote.org"},
                      {"!filter:discard", "250"},
                      {kRcpt, "F-RCPT:user@example.com"},
                      {"!filter:continue", "250"},
                      {"DATA", "F-DATA"},
                      {"!filter:continue", "354 DATA"},
                      {"!data:ok", "250", "250 2.0.0 Ok: discarded"},
                      {kMail, "F-MAIL:sender@remote.org"},  // the next message is not discarded
                      {"!filter:continue", "250"},
                      {kRcpt, "F-RCPT:user@example.com"},
                      {"!filter:continue", "250"},
                      {"DATA", "F-DATA"},
                      {"!filter:continue", "354 DATA"},
                      {"!data:ok", "F-MSG"},
                      {"!filter:discard", "250", "discarded"},
                      // esmtpd's reason (every recipient removed) goes into the 250.
                      {kMail, "F-MAIL:sender@remote.org"},
                      {"!filter:continue", "250"},
                      {kRcpt, "F-RCPT:user@example.com"},
                      {"!filter:continue", "250"},
                      {"DATA", "F-DATA"},
                      {"!filter:continue", "354 DATA"},
                      {"!data:ok", "F-MSG"},
                      {"!filter:discard:the filters removed every recipient", "250",
                       "250 2.0.0 Ok: discarded: the filters removed every recipient"}},
                     false,
                     false,
                     false,
                     true},
        Conversation{"FilterConnectReject",
                     {{"!fconnect:reject", ""},
                      {"EHLO c", "554", "554 5.7.1 "},
                      {kMail, "554"},
                      {"NOOP", "250"},
                      {"QUIT", "221 CLOSE"}},
                     false,
                     false,
                     false,
                     true},
        // A failed filter (its default action not applied by a chain) is a 4xx with the default
        // text: the failure's reason is for the logs, not the client.
        Conversation{"FilterFailedIsTempfail",
                     {{"EHLO c", "F-HELO:c"},
                      {"!filter:failed:milter m: timed out", "451",
                       "451 4.7.1 Service unavailable - try again later"},
                      {"EHLO c", "F-HELO:c"},
                      {"!filter:continue", "250"},
                      {kMail, "F-MAIL:sender@remote.org"},
                      {"!filter:failed:milter m: closed", "451", "451 4.7.1 Service unavailable"}},
                     false,
                     false,
                     false,
                     true},
        Conversation{"FilterConnectFailedTempfailsTheSession",
                     {{"!fconnect:failed:module x: no answer in time", ""},
                      {"EHLO c", "451", "451 4.7.1 Service unavailable - try again later"},
                      {kMail, "451"}},
                     false,
                     false,
                     false,
                     true},
        Conversation{"FilterConnectAcceptEndsFiltering",
                     {{"!fconnect:accept", ""}, {"EHLO c", "250"}, {kMail, "250"}, {kRcpt, "250"}},
                     false,
                     false,
                     false,
                     true},
        Conversation{"FilterAfterChecksAndSenderLookup",
                     {{"EHLO c", "F-HELO:c"},
                      {"!filter:continue", "250"},
                      {kMail, "LOOKUP:remote.org"},
                      {"!sender:ok", "F-MAIL:sender@remote.org"},
                      {"!filter:continue", "250"},
                      {kRcpt, ""},
                      {"!checks:client.test::", "F-RCPT:user@example.com"},
                      {"!filter:continue", "250"}},
                     false,
                     true,
                     true,
                     true}),
    PrintConversation);

TEST(SmtpServerSession, WaitingWhileAChecksVerdictOrLookupIsPending) {
  ServerPolicy policy = TestPolicy();
  ClientInfo client = TestClient();
  client.checks_pending = true;
  client.check_sender_domain = true;
  ServerSession session(policy, client);
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  EXPECT_FALSE(session.waiting());
  session.on_line(kMail, LineStatus::Ok);
  EXPECT_TRUE(session.waiting());
  session.on_sender_checked(SenderDomain::Ok);
  EXPECT_FALSE(session.waiting());
  session.on_line(kRcpt, LineStatus::Ok);
  EXPECT_TRUE(session.waiting());
  EXPECT_DEATH(session.on_line("NOOP", LineStatus::Ok), "waiting for a lookup");
  session.on_checks_done({"client.test", "joe", ""});
  EXPECT_FALSE(session.waiting());
  EXPECT_EQ(session.client().rdns, "client.test");
  EXPECT_EQ(session.client().ident_user, "joe");
}

// ---------------------------------------------------------------------------------------------
// RCPT checks that may block (passwd, stat) are asked for with LookupRecipient and answered
// later; the session answers nothing and takes no command meanwhile.

// A policy whose check defers every address in example.com (a local mailbox to look up).
ServerPolicy LookupPolicy() {
  ServerPolicy policy = TestPolicy();
  policy.max_recipients = 10;
  policy.check_recipient = [](const std::string& address) {
    RecipientVerdict v;
    v.lookup = address.ends_with("@example.com");
    return v;
  };
  return policy;
}

TEST(SmtpServerSession, ALocalRecipientWaitsForItsLookup) {
  ServerPolicy policy = LookupPolicy();
  ServerSession session(policy, TestClient());
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  session.on_line(kMail, LineStatus::Ok);
  EXPECT_EQ(Summarize(session.on_line("RCPT TO:<alice@example.com> NOTIFY=NEVER", LineStatus::Ok)),
            "RCPT-LOOKUP:alice@example.com");
  EXPECT_TRUE(session.waiting());
  EXPECT_DEATH(session.on_line("NOOP", LineStatus::Ok), "waiting for a lookup");
  EXPECT_EQ(Summarize(session.on_recipient_checked({true, ""})), "250");
  EXPECT_FALSE(session.waiting());
  ASSERT_EQ(session.envelope().recipients, std::vector<std::string>{"alice@example.com"});
  EXPECT_EQ(session.envelope().dsn.at(0).notify, "NEVER");
  // A refusal from the lookup is the router's reply, a counted error.
  EXPECT_EQ(Summarize(session.on_line("RCPT TO:<nobody@example.com>", LineStatus::Ok)),
            "RCPT-LOOKUP:nobody@example.com");
  auto refused =
      session.on_recipient_checked({false, "550 5.1.1 <nobody@example.com>: no such mailbox"});
  EXPECT_EQ(Summarize(refused), "550");
  EXPECT_EQ(session.error_count(), 1u);
  // A remote address is decided at once (no lookup): relay denied.
  EXPECT_EQ(Summarize(session.on_line("RCPT TO:<bob@remote.org>", LineStatus::Ok)), "550");
  EXPECT_EQ(session.envelope().recipients.size(), 1u);
}

TEST(SmtpServerSession, ALookupThatFailsIsATemporaryRefusalNotAnError) {
  ServerPolicy policy = LookupPolicy();
  ServerSession session(policy, TestClient());
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  session.on_line(kMail, LineStatus::Ok);
  session.on_line("RCPT TO:<alice@example.com>", LineStatus::Ok);
  auto timed_out = session.on_recipient_lookup_failed(RecipientLookupFailure::TimedOut);
  ASSERT_EQ(timed_out.size(), 1u);
  EXPECT_EQ(timed_out[0].text,
            "451 4.4.3 <alice@example.com>: Temporary lookup failure, try again later\r\n");
  session.on_line("RCPT TO:<bob@example.com>", LineStatus::Ok);
  auto busy = session.on_recipient_lookup_failed(RecipientLookupFailure::Busy);
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0].text,
            "451 4.3.0 <bob@example.com>: Recipient lookups are busy, try again later\r\n");
  EXPECT_EQ(session.error_count(), 0u);
  EXPECT_TRUE(session.envelope().recipients.empty());
  EXPECT_FALSE(session.waiting());
  EXPECT_DEATH(session.on_recipient_checked({true, ""}), "unasked");
}

TEST(SmtpServerSession, ALookupVerdictGoesToTheFiltersAndAfterTheChecks) {
  ServerPolicy policy = LookupPolicy();
  ClientInfo client = TestClient();
  client.checks_pending = true;
  client.filtered = true;
  ServerSession session(policy, client);
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  session.on_filter_verdict({FilterVerdict::Action::Continue, "", {}});
  session.on_line(kMail, LineStatus::Ok);
  session.on_filter_verdict({FilterVerdict::Action::Continue, "", {}});
  EXPECT_EQ(Summarize(session.on_line("RCPT TO:<alice@example.com>", LineStatus::Ok)), "");
  EXPECT_EQ(Summarize(session.on_checks_done({"client.test", "", ""})),
            "RCPT-LOOKUP:alice@example.com");
  EXPECT_EQ(Summarize(session.on_recipient_checked({true, ""})), "F-RCPT:alice@example.com");
  EXPECT_EQ(Summarize(session.on_filter_verdict({FilterVerdict::Action::Continue, "", {}})), "250");
}

TEST(SmtpServerSession, ASessionClosedWhileItsLookupRunsIgnoresTheAnswer) {
  ServerPolicy policy = LookupPolicy();
  ServerSession session(policy, TestClient());
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  session.on_line(kMail, LineStatus::Ok);
  session.on_line("RCPT TO:<alice@example.com>", LineStatus::Ok);
  EXPECT_EQ(Summarize(session.on_deadline()), "421 CLOSE");
  EXPECT_TRUE(session.on_recipient_checked({true, ""}).empty());
  EXPECT_TRUE(session.on_recipient_lookup_failed(RecipientLookupFailure::TimedOut).empty());
}

// Two sessions, one policy: while one waits for its lookup, the other runs a whole transaction;
// the waiting one's pipelined commands, fed only when it stops waiting (as esmtpd does), are
// answered in order.
TEST(SmtpServerSession, PipelinedCommandsAfterALookupAreAnsweredInOrder) {
  ServerPolicy policy = LookupPolicy();
  ServerSession slow(policy, TestClient()), fast(policy, TestClient());
  slow.start();
  fast.start();
  std::vector<std::string> pipelined = {"EHLO c", kMail, "RCPT TO:<alice@example.com>",
                                        "RCPT TO:<bob@example.com>", "DATA"};
  std::string slow_codes;
  std::size_t next = 0;
  auto feed_slow = [&](const Actions& first) {
    Actions actions = first;
    for (;;) {
      std::string s = Summarize(actions);
      if (!s.empty()) slow_codes += (slow_codes.empty() ? "" : " ") + s;
      if (slow.waiting() || slow.in_data() || next == pipelined.size()) return;
      actions = slow.on_line(pipelined[next++], LineStatus::Ok);
    }
  };
  feed_slow({});
  EXPECT_EQ(slow_codes, "250 250 RCPT-LOOKUP:alice@example.com");
  // Meanwhile, the other session.
  std::string fast_codes;
  for (const char* line :
       {"EHLO d", "MAIL FROM:<x@remote.org>", "RCPT TO:<y@relay.example>", "DATA"})
    fast_codes += Summarize(fast.on_line(line, LineStatus::Ok)) + " ";
  fast_codes += Summarize(fast.on_data_end(DataStatus::Ok, 10)) + " ";
  fast_codes += Summarize(fast.on_queued("Q1"));
  EXPECT_EQ(fast_codes, "250 250 250 354 DATA COMMIT 250");
  EXPECT_EQ(slow_codes, "250 250 RCPT-LOOKUP:alice@example.com");
  feed_slow(slow.on_recipient_checked({true, ""}));
  EXPECT_EQ(slow_codes, "250 250 RCPT-LOOKUP:alice@example.com 250 RCPT-LOOKUP:bob@example.com");
  feed_slow(slow.on_recipient_lookup_failed(RecipientLookupFailure::TimedOut));
  EXPECT_EQ(slow_codes,
            "250 250 RCPT-LOOKUP:alice@example.com 250 RCPT-LOOKUP:bob@example.com 451 354 DATA");
  EXPECT_EQ(slow.envelope().recipients, std::vector<std::string>{"alice@example.com"});
}

// ---------------------------------------------------------------------------------------------
// Hostile clients: junk commands, a body after a refused DATA, deadline, talking first.

TEST(SmtpServerSession, JunkCommandsPastTheLimitCountAsErrors) {
  ServerPolicy policy = TestPolicy();  // max_errors 5
  policy.max_junk_commands = 3;
  ServerSession session(policy, TestClient());
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  for (const char* junk : {"NOOP", "RSET", "VRFY x"})
    EXPECT_EQ(Summarize(session.on_line(junk, LineStatus::Ok)), junk[0] == 'V' ? "252" : "250")
        << junk;
  EXPECT_EQ(session.error_count(), 0u);
  // Beyond the limit each still gets its reply, and counts as an error.
  EXPECT_EQ(Summarize(session.on_line("HELP", LineStatus::Ok)), "214");
  EXPECT_EQ(session.error_count(), 1u);
  // A delivered message starts the junk count again.
  session.on_line(kMail, LineStatus::Ok);
  session.on_line(kRcpt, LineStatus::Ok);
  session.on_line("DATA", LineStatus::Ok);
  session.on_data_end(DataStatus::Ok, 10);
  session.on_queued("q1");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Summarize(session.on_line("NOOP", LineStatus::Ok)), "250");
  EXPECT_EQ(session.error_count(), 1u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Summarize(session.on_line("NOOP", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(session.on_line("NOOP", LineStatus::Ok)), "250 421 CLOSE");
  EXPECT_TRUE(session.closed());
}

TEST(SmtpServerSession, TheDefaultJunkLimitIsPostfixs) {
  ServerPolicy policy;
  ServerSession session(policy, TestClient());
  session.start();
  for (int i = 0; i < 100; ++i) session.on_line("NOOP", LineStatus::Ok);
  EXPECT_EQ(session.error_count(), 0u);
  std::string last;
  for (int i = 0; i < 20; ++i) last = Summarize(session.on_line("NOOP", LineStatus::Ok));
  EXPECT_EQ(last, "250 421 CLOSE");
}

TEST(SmtpServerSession, ALineThatIsNoCommandAfterARefusedDataIsABody) {
  for (const char* first : {"DATA", "MAIL FROM:<a@remote.org>"}) {
    ServerPolicy policy = TestPolicy();
    ServerSession session(policy, TestClient());
    session.start();
    session.on_line("EHLO c", LineStatus::Ok);
    session.on_line(first, LineStatus::Ok);
    session.on_line("RCPT TO:<x@other.org>", LineStatus::Ok);  // relay denied
    Actions data = session.on_line("DATA", LineStatus::Ok);
    EXPECT_NE(Summarize(data), "354 DATA");
    EXPECT_TRUE(session.refused_data());
    Actions body = session.on_line("Subject: MAIL FROM:<x@y>", LineStatus::Ok);
    EXPECT_EQ(Summarize(body), "421 CLOSE");
    EXPECT_NE(ReplyText(body).find("421 4.5.0 "), std::string::npos) << ReplyText(body);
    EXPECT_TRUE(session.closed());
  }
  // A bad line status is no command either.
  ServerPolicy policy = TestPolicy();
  ServerSession session(policy, TestClient());
  session.start();
  session.on_line("DATA", LineStatus::Ok);
  EXPECT_EQ(Summarize(session.on_line("x", LineStatus::BareLineEnding)), "421 CLOSE");
}

TEST(SmtpServerSession, ACommandAfterARefusedDataIsServed) {
  ServerPolicy policy = TestPolicy();
  ServerSession session(policy, TestClient());
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  EXPECT_EQ(Summarize(session.on_line("DATA", LineStatus::Ok)), "503");
  EXPECT_TRUE(session.refused_data());
  EXPECT_EQ(Summarize(session.on_line("RSET", LineStatus::Ok)), "250");
  EXPECT_FALSE(session.refused_data());
  EXPECT_EQ(Summarize(session.on_line("Subject: x", LineStatus::Ok)), "500");  // only right after
  // The I/O layer found bytes the client sent before it could see the refusal.
  session.on_line("DATA", LineStatus::Ok);
  Actions early = session.on_early_input();
  EXPECT_EQ(Summarize(early), "421 CLOSE");
  EXPECT_TRUE(session.closed());
}

TEST(SmtpServerSession, OnlyARefusedDataMarksTheSession) {
  ClientInfo client = TestClient();
  client.filtered = true;
  ServerPolicy policy = TestPolicy();
  ServerSession session(policy, client);
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  session.on_filter_verdict({});
  session.on_line(kMail, LineStatus::Ok);
  session.on_filter_verdict({});
  session.on_line(kRcpt, LineStatus::Ok);
  session.on_filter_verdict({});
  EXPECT_EQ(Summarize(session.on_line("DATA", LineStatus::Ok)), "F-DATA");
  EXPECT_FALSE(session.refused_data());  // not yet answered
  EXPECT_EQ(Summarize(session.on_filter_verdict({FilterVerdict::Action::Reject, "", "f"})), "550");
  EXPECT_TRUE(session.refused_data());
  // A DATA answered 354 does not.
  ServerSession plain(policy, TestClient());
  plain.start();
  plain.on_line("EHLO c", LineStatus::Ok);
  plain.on_line(kMail, LineStatus::Ok);
  plain.on_line(kRcpt, LineStatus::Ok);
  EXPECT_EQ(Summarize(plain.on_line("DATA", LineStatus::Ok)), "354 DATA");
  EXPECT_FALSE(plain.refused_data());
}

TEST(SmtpServerSession, DeadlineAndPregreetClose) {
  ServerPolicy policy = TestPolicy();
  ServerSession late(policy, TestClient());
  late.start();
  late.on_line("EHLO c", LineStatus::Ok);
  late.on_line(kMail, LineStatus::Ok);
  late.on_line(kRcpt, LineStatus::Ok);
  late.on_line("DATA", LineStatus::Ok);  // a slow body
  Actions deadline = late.on_deadline();
  EXPECT_EQ(Summarize(deadline), "421 CLOSE");
  EXPECT_NE(ReplyText(deadline).find("421 4.4.2 mx.example "), std::string::npos);
  EXPECT_TRUE(late.on_deadline().empty());
  ServerSession eager(policy, TestClient());  // no greeting yet
  Actions pregreet = eager.on_pregreet();
  EXPECT_EQ(Summarize(pregreet), "554 CLOSE");
  EXPECT_NE(ReplyText(pregreet).find("554 5.5.1 "), std::string::npos);
  EXPECT_TRUE(eager.closed());
}

// ---------------------------------------------------------------------------------------------
// Envelope, Received header.

TEST(SmtpServerSession, DsnParametersGoIntoTheEnvelope) {
  ServerPolicy policy = TestPolicy();
  for (bool filtered : {false, true}) {
    ClientInfo client = TestClient();
    client.filtered = filtered;
    ServerSession session(policy, client);
    session.start();
    auto answer = [&](Actions a) {
      while (session.waiting()) a = session.on_filter_verdict({});
      return Summarize(a);
    };
    answer(session.on_line("EHLO client.example", LineStatus::Ok));
    EXPECT_EQ(answer(session.on_line("MAIL FROM:<s@x.test> RET=hdrs ENVID=id+2B1", LineStatus::Ok)),
              "250");
    EXPECT_EQ(answer(session.on_line("RCPT TO:<a@example.com> NOTIFY=delay,success "
                                     "ORCPT=rfc822;A+2Ba@example.com",
                                     LineStatus::Ok)),
              "250");
    EXPECT_EQ(answer(session.on_line("RCPT TO:<b@example.com>", LineStatus::Ok)), "250");
    EXPECT_EQ(answer(session.on_line("RCPT TO:<c@example.com> NOTIFY=NEVER", LineStatus::Ok)),
              "250");
    const Envelope& env = session.envelope();
    EXPECT_EQ(env.ret, DsnRet::Hdrs);
    EXPECT_EQ(env.envid, "id+2B1");
    EXPECT_EQ(env.dsn, (std::vector<RcptDsn>{
                           {"SUCCESS,DELAY", "rfc822;A+2Ba@example.com"}, {"", ""}, {"NEVER", ""}}))
        << filtered;
    // RSET forgets them.
    session.on_line("RSET", LineStatus::Ok);
    EXPECT_TRUE(session.envelope().dsn.empty());
    EXPECT_EQ(session.envelope().envid, "");
  }
}

TEST(SmtpServerSession, EnvelopeKeptUntilCommitted) {
  ServerPolicy policy = TestPolicy();
  // A relay client: from others a source route to a relay domain is refused (UntrustedRouting).
  ServerSession session(policy, TestClient(true));
  session.start();
  session.on_line("EHLO client.example", LineStatus::Ok);
  session.on_line("MAIL FROM:<> BODY=8BITMIME SIZE=500", LineStatus::Ok);
  session.on_line("RCPT TO:<a@example.com>", LineStatus::Ok);
  session.on_line("RCPT TO:<@hop.example:b@relay.example>", LineStatus::Ok);
  EXPECT_FALSE(session.in_data());
  EXPECT_EQ(Summarize(session.on_line("DATA", LineStatus::Ok)), "354 DATA");
  EXPECT_TRUE(session.in_data());
  EXPECT_EQ(Summarize(session.on_data_end(DataStatus::Ok, 400)), "COMMIT");
  EXPECT_FALSE(session.in_data());
  EXPECT_TRUE(session.awaiting_commit());
  const Envelope& env = session.envelope();
  EXPECT_EQ(env.helo, "client.example");
  EXPECT_EQ(env.sender, "");
  EXPECT_EQ(env.recipients, (std::vector<std::string>{"a@example.com", "b@relay.example"}));
  EXPECT_EQ(env.body_type, "8BITMIME");
  EXPECT_EQ(env.declared_size, 500u);
  EXPECT_EQ(env.dsn, (std::vector<RcptDsn>{{}, {}}));
  EXPECT_EQ(env.ret, DsnRet::Unspecified);
  EXPECT_EQ(Summarize(session.on_queued("Q1")), "250");
  EXPECT_EQ(session.envelope().sender, "");
  EXPECT_TRUE(session.envelope().recipients.empty());
  EXPECT_EQ(session.envelope().body_type, "");
  EXPECT_EQ(session.envelope().helo, "client.example");
}

struct ReceivedCase {
  std::string name;
  std::string helo_line;
  std::vector<std::string> rcpts;
  std::string ip;
  std::string rdns;
  std::time_t now;
  std::string expected;
  std::string ident_user = {};
};

void PrintTo(const ReceivedCase& c, std::ostream* os) {
  *os << c.name;
}

class SmtpReceivedHeader : public ::testing::TestWithParam<ReceivedCase> {};

TEST_P(SmtpReceivedHeader, Format) {
  const ReceivedCase& c = GetParam();
  ServerPolicy policy = TestPolicy();
  policy.hostname = "mx.example.com";
  ClientInfo client = TestClient(true);
  client.ip = c.ip;
  client.rdns = c.rdns;
  client.ident_user = c.ident_user;
  ServerSession session(policy, client);
  session.start();
  session.on_line(c.helo_line, LineStatus::Ok);
  session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok);
  for (const auto& rcpt : c.rcpts) session.on_line("RCPT TO:<" + rcpt + ">", LineStatus::Ok);
  EXPECT_EQ(session.received_header("QID1", c.now), c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpReceivedHeader,
    ::testing::Values(ReceivedCase{"OneRecipient",
                                   "EHLO client.example",
                                   {"u@example.com"},
                                   "192.0.2.1",
                                   "client.example",
                                   0,
                                   "Received: from client.example (client.example [192.0.2.1])\r\n"
                                   "\tby mx.example.com (Estafette) with ESMTP id QID1\r\n"
                                   "\tfor <u@example.com>; Thu, 1 Jan 1970 00:00:00 +0000\r\n"},
                      ReceivedCase{"TwoRecipients",
                                   "EHLO c",
                                   {"a@example.com", "b@example.com"},
                                   "192.0.2.1",
                                   "unknown",
                                   1700000000,
                                   "Received: from c (unknown [192.0.2.1])\r\n"
                                   "\tby mx.example.com (Estafette) with ESMTP id QID1; "
                                   "Tue, 14 Nov 2023 22:13:20 +0000\r\n"},
                      ReceivedCase{"HeloIPv6",
                                   "HELO [IPv6:::1]",
                                   {"a@example.com"},
                                   "::1",
                                   "localhost",
                                   951782400,
                                   "Received: from [IPv6:::1] (localhost [IPv6:::1])\r\n"
                                   "\tby mx.example.com (Estafette) with SMTP id QID1\r\n"
                                   "\tfor <a@example.com>; Tue, 29 Feb 2000 00:00:00 +0000\r\n"},
                      ReceivedCase{"HostileHelo",  // 8-bit and structure: one '?' each
                                   "EHLO a\xff\xfe(b);\"\\",
                                   {"a@example.com", "b@example.com"},
                                   "10.0.0.1",
                                   "unknown",
                                   0,
                                   "Received: from a???b???? (unknown [10.0.0.1])\r\n"
                                   "\tby mx.example.com (Estafette) with ESMTP id QID1; "
                                   "Thu, 1 Jan 1970 00:00:00 +0000\r\n"},
                      ReceivedCase{"IdentUser",  // Courier's form
                                   "EHLO client.test",
                                   {},
                                   "127.0.0.1",
                                   "client.test",
                                   0,
                                   "Received: from client.test (root@client.test [127.0.0.1])\r\n"
                                   "\tby mx.example.com (Estafette) with ESMTP id QID1; "
                                   "Thu, 1 Jan 1970 00:00:00 +0000\r\n",
                                   "root"}),
    [](const ::testing::TestParamInfo<ReceivedCase>& info) { return info.param.name; });

TEST(SmtpServerSession, ReceivedHeaderIsBounded) {
  ServerPolicy policy = TestPolicy();
  ClientInfo client = TestClient(true);
  client.rdns = std::string(5000, 'r') + "(x);y";
  client.ident_user = std::string(300, 'u');
  ServerSession session(policy, client);
  session.start();
  session.on_line("EHLO " + std::string(255, 'h'), LineStatus::Ok);
  session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok);
  session.on_line("RCPT TO:<a@example.com>", LineStatus::Ok);
  std::string header = session.received_header("QID1", 0);
  std::size_t start = 0;
  for (std::size_t end; (end = header.find("\r\n", start)) != std::string::npos; start = end + 2)
    EXPECT_LE(end - start, 998u) << header;  // RFC 5322 2.1.1
  EXPECT_EQ(start, header.size());
  EXPECT_EQ(header.find('(', 20), header.find("(" + std::string(255, 'u') + "@"));
}

// max_hops: a message arriving with max_hops Received: fields or more would have one more with
// ours; refused at the end of DATA (554 5.4.6), and the session goes on.
TEST(SmtpServerSession, TooManyHops) {
  ServerPolicy policy = TestPolicy();
  policy.max_hops = 5;
  ServerSession session(policy, TestClient(true));
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  auto transaction = [&] {
    EXPECT_EQ(Summarize(session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok)), "250");
    EXPECT_EQ(Summarize(session.on_line("RCPT TO:<a@example.com>", LineStatus::Ok)), "250");
    EXPECT_EQ(Summarize(session.on_line("DATA", LineStatus::Ok)), "354 DATA");
  };
  transaction();
  auto refused = session.on_data_end(DataStatus::Ok, 100, 5);
  EXPECT_EQ(Summarize(refused), "554");
  EXPECT_EQ(ReplyText(refused).substr(0, 9), "554 5.4.6");
  EXPECT_TRUE(session.envelope().recipients.empty());
  transaction();
  EXPECT_EQ(Summarize(session.on_data_end(DataStatus::Ok, 100, 4)), "COMMIT");
  policy.max_hops = 0;  // no limit
  ServerSession unlimited(policy, TestClient(true));
  unlimited.start();
  unlimited.on_line("EHLO c", LineStatus::Ok);
  unlimited.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok);
  unlimited.on_line("RCPT TO:<a@example.com>", LineStatus::Ok);
  unlimited.on_line("DATA", LineStatus::Ok);
  EXPECT_EQ(Summarize(unlimited.on_data_end(DataStatus::Ok, 100, 500)), "COMMIT");
}

TEST(SmtpServerSession, UntrustedRoutingAllowed) {
  ServerPolicy policy = TestPolicy();
  policy.allow_untrusted_routing = true;
  ServerSession session(policy, TestClient(false));
  session.start();
  session.on_line("EHLO c", LineStatus::Ok);
  session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok);
  EXPECT_EQ(Summarize(session.on_line("RCPT TO:<a%b.test@relay.example>", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(session.on_line("RCPT TO:<@h.test:a@relay.example>", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(session.on_line("RCPT TO:<a%b.test@other.org>", LineStatus::Ok)), "550");
}

TEST(SmtpServerSession, LocalSubmissionReceivedHeaderNamesTheUid) {
  ServerPolicy policy = TestPolicy();
  policy.hostname = "mx.example.com";
  ClientInfo client;
  client.local_uid = 1000;
  client.relay_client = true;
  EXPECT_TRUE(client.is_local());
  EXPECT_EQ(client.peer_text(), "local uid=1000");
  ServerSession session(policy, client);
  session.start();
  session.on_line("EHLO localhost", LineStatus::Ok);
  session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok);
  session.on_line("RCPT TO:<a@anywhere.org>", LineStatus::Ok);
  EXPECT_EQ(session.received_header("QID1", 0),
            "Received: from local (uid 1000)\r\n"
            "\tby mx.example.com (Estafette) with ESMTP id QID1\r\n"
            "\tfor <a@anywhere.org>; Thu, 1 Jan 1970 00:00:00 +0000\r\n");
}

// ---------------------------------------------------------------------------------------------
// The whole server side as the I/O layer drives it: CommandReader + ServerSession + DataReader
// over a client byte stream, fed split at every position. Commits succeed immediately.

struct Driver {
  ServerPolicy policy = TestPolicy();
  ServerSession session{policy, TestClient()};
  CommandReader commands{256};
  std::string current;
  DataReader data{[this](std::string_view piece) { current.append(piece); },
                  policy.max_message_size};
  std::vector<std::string> messages;
  std::vector<std::string> codes;
  bool closed = false;

  Driver() { act(session.start()); }

  void act(const Actions& actions) {
    for (const Action& action : actions) {
      switch (action.kind) {
        case ActionKind::Reply:
          codes.push_back(Summarize({action}));
          break;
        case ActionKind::BeginData:
          data.reset();
          current.clear();
          break;
        case ActionKind::Commit:
          messages.push_back(current);
          act(session.on_queued("Q" + std::to_string(messages.size())));
          break;
        case ActionKind::LookupSender:  // this policy never asks
        case ActionKind::LookupRecipient:
        case ActionKind::FilterHelo:
        case ActionKind::FilterMail:
        case ActionKind::FilterRcpt:
        case ActionKind::FilterData:
        case ActionKind::FilterMessage:
        case ActionKind::StartTls:    // no certificate here
        case ActionKind::VerifyAuth:  // no auth backend here
        case ActionKind::LookupScram:
        case ActionKind::AuthChecked:
          ADD_FAILURE() << "unexpected lookup or filter action";
          break;
        case ActionKind::Close:
          closed = true;
          break;
      }
    }
  }

  void feed(std::string_view buf) {
    while (!buf.empty() && !closed) {
      if (session.in_data()) {
        buf.remove_prefix(data.feed(buf));
        if (data.done()) act(session.on_data_end(data.status(), data.size()));
      } else {
        Line line;
        auto result = commands.feed(buf, line);
        buf.remove_prefix(result.consumed);
        if (result.line_ready) act(session.on_line(line.text, line.status));
      }
    }
  }
};

struct StreamCase {
  std::string name;
  std::string input;
  std::string codes;  // space separated
  std::vector<std::string> messages;
};

void PrintTo(const StreamCase& c, std::ostream* os) {
  *os << c.name;
}

class SmtpServerStream : public ::testing::TestWithParam<StreamCase> {};

TEST_P(SmtpServerStream, SameRepliesWhateverTheSplit) {
  const StreamCase& c = GetParam();
  for (const auto& split : all_splits(c.input, 0)) {
    SCOPED_TRACE(split.name);
    Driver driver;
    for (std::string_view chunk : split.chunks) driver.feed(chunk);
    std::string codes;
    for (const auto& code : driver.codes) codes += (codes.empty() ? "" : " ") + code;
    EXPECT_EQ(codes, c.codes);
    EXPECT_EQ(driver.messages, c.messages);
  }
}

const std::string kHead = "EHLO c\r\nMAIL FROM:<a@remote.org>\r\nRCPT TO:<u@example.com>\r\n";

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpServerStream,
    ::testing::Values(
        StreamCase{
            "Pipelined",
            kHead + "RCPT TO:<x@other.org>\r\nDATA\r\nSubject: t\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
            "220 250 250 250 550 354 250 221",
            {"Subject: t\r\n\r\n..dot\r\n"}},
        StreamCase{"TwoMessages",
                   kHead + "DATA\r\none\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<v@example.com>\r\n"
                           "DATA\r\n.\r\nQUIT\r\nNOOP\r\n",
                   "220 250 250 250 354 250 250 250 354 250 221",
                   {"one\r\n", ""}},
        StreamCase{"SmugglingRejected",
                   kHead +
                       "DATA\r\nx\n.\nMAIL FROM:<evil@remote.org>\r\nRCPT TO:<v@example.com>\r\n"
                       "DATA\r\nevil\r\n.\r\nQUIT\r\n",
                   "220 250 250 250 354 550 221",
                   {}},
        StreamCase{"SmugglingCrDotCr",
                   kHead + "DATA\r\nx\r.\rMAIL FROM:<e@remote.org>\r\n.\r\nNOOP\r\n",
                   "220 250 250 250 354 550 250",
                   {}},
        // Issue 13: the body a client sends after a refused DATA is not run as commands.
        StreamCase{"DataRefusedBodyIsNotCommands",
                   "EHLO c\r\nMAIL FROM:<a@remote.org>\r\nRCPT TO:<x@other.org>\r\nDATA\r\n"
                   "hello\r\nMAIL FROM:<e@remote.org>\r\n.\r\nQUIT\r\n",
                   "220 250 250 550 554 421",
                   {}},
        StreamCase{"TooBig",
                   kHead + "DATA\r\n" + std::string(1200, 'x') + "\r\n.\r\nRSET\r\n",
                   "220 250 250 250 354 552 250",
                   {}},
        StreamCase{"BareLfCommand", "EHLO c\nQUIT\r\n", "220 500 221", {}},
        StreamCase{
            "TooLongCommand", "NOOP " + std::string(300, 'n') + "\r\nNOOP\r\n", "220 500 250", {}},
        StreamCase{"StopsAtClose", "QUIT\r\nNOOP\r\nNOOP\r\n", "220 221", {}}),
    [](const ::testing::TestParamInfo<StreamCase>& info) { return info.param.name; });

}  // namespace
}  // namespace estafette::smtp

namespace estafette::smtp {
namespace {

// Header limits, NUL and a refused buffer end the message with their own reply; the session
// goes on (the next transaction works).
TEST(SmtpServerSession, DataStatusesOfIssue13) {
  ServerPolicy policy = TestPolicy();
  ServerSession session(policy, TestClient());
  session.start();
  session.on_line("EHLO client.example", LineStatus::Ok);
  const std::pair<DataStatus, std::string> cases[] = {
      {DataStatus::TooManyHeaders, "552 5.3.4 Message header has too many fields\r\n"},
      {DataStatus::HeaderTooBig, "552 5.3.4 Message header field exceeds the size limit\r\n"},
      {DataStatus::Nul, "554 5.6.0 NUL characters not allowed\r\n"},
      {DataStatus::NoStorage, "452 4.3.1 Insufficient system storage\r\n"},
  };
  for (const auto& [status, reply] : cases) {
    session.on_line("MAIL FROM:<a@example.com>", LineStatus::Ok);
    session.on_line("RCPT TO:<b@example.com>", LineStatus::Ok);
    EXPECT_EQ(Summarize(session.on_line("DATA", LineStatus::Ok)), "354 DATA");
    Actions a = session.on_data_end(status, 100);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].text, reply);
    EXPECT_FALSE(session.in_data());
    EXPECT_TRUE(session.envelope().recipients.empty());
  }
}

// A message held in memory (filtered) is admitted at DATA only when the I/O layer says so.
TEST(SmtpServerSession, BufferedMessageRefusedAtDataWhenNotAdmitted) {
  ServerPolicy policy = TestPolicy();
  std::size_t asked = 0;
  bool room = false;
  policy.admit_buffered = [&](std::size_t declared) {
    asked = declared;
    return room;
  };
  ClientInfo client = TestClient();
  client.filtered = true;
  ServerSession session(policy, client);
  session.start();
  session.on_line("EHLO client.example", LineStatus::Ok);
  session.on_filter_verdict({});
  session.on_line("MAIL FROM:<a@example.com> SIZE=700", LineStatus::Ok);
  session.on_filter_verdict({});
  session.on_line("RCPT TO:<b@example.com>", LineStatus::Ok);
  session.on_filter_verdict({});
  Actions a = session.on_line("DATA", LineStatus::Ok);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].text, "452 4.3.1 Insufficient system storage\r\n");
  EXPECT_EQ(asked, 700u);
  EXPECT_FALSE(session.in_data());
  room = true;  // the transaction stays: DATA again once there is room
  a = session.on_line("DATA", LineStatus::Ok);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, ActionKind::FilterData);
  // An unfiltered session streams to the queue: never asked.
  ServerSession plain(policy, TestClient());
  room = false;
  asked = 0;
  plain.start();
  plain.on_line("EHLO client.example", LineStatus::Ok);
  plain.on_line("MAIL FROM:<a@example.com> SIZE=5", LineStatus::Ok);
  plain.on_line("RCPT TO:<b@example.com>", LineStatus::Ok);
  EXPECT_EQ(Summarize(plain.on_line("DATA", LineStatus::Ok)), "354 DATA");
  EXPECT_EQ(asked, 0u);
}

// STARTTLS (RFC 3207), issue 14.
TlsInfo TestTls() {
  return {"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256};
}

TEST(SmtpServerStartTls, OfferedOnlyWithACertificateAndOnlyBeforeTls) {
  ServerPolicy policy = TestPolicy();
  ServerSession plain(policy, TestClient());
  plain.start();
  EXPECT_EQ(ReplyText(plain.on_line("EHLO c.example", LineStatus::Ok)).find("STARTTLS"),
            std::string::npos);
  EXPECT_EQ(Summarize(plain.on_line("STARTTLS", LineStatus::Ok)), "502");

  ClientInfo client = TestClient();
  client.tls_offered = true;
  ServerSession session(policy, client);
  session.start();
  EXPECT_NE(ReplyText(session.on_line("EHLO c.example", LineStatus::Ok)).find("250-STARTTLS\r\n"),
            std::string::npos);
  auto started = session.on_line("STARTTLS", LineStatus::Ok);
  EXPECT_EQ(Summarize(started), "220 STARTTLS");
  EXPECT_EQ(ReplyText(started), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_TRUE(session.waiting());  // nothing more is fed until the handshake is done
  EXPECT_TRUE(session.on_tls_started(TestTls()).empty());  // the client speaks first
  EXPECT_FALSE(session.waiting());
  ASSERT_TRUE(session.client().tls);
  EXPECT_EQ(session.client().tls->cipher, "TLS_AES_256_GCM_SHA384");
}

// tls_client_ca_file + relay_clientcerts: a trusted client certificate relays, as
// relay_clients do (Postfix's permit_tls_clientcerts); any other TLS client does not.
TEST(SmtpServerStartTls, ATrustedClientCertificateMayRelay) {
  ServerPolicy policy = TestPolicy();
  for (bool trusted : {false, true}) {
    ClientInfo client = TestClient();
    client.tls_offered = true;
    ServerSession s(policy, client);
    s.start();
    s.on_line("EHLO c.example", LineStatus::Ok);
    EXPECT_EQ(Summarize(s.on_line("STARTTLS", LineStatus::Ok)), "220 STARTTLS");
    TlsInfo tls = TestTls();
    tls.client_cert_trusted = trusted;
    s.on_tls_started(tls);
    s.on_line("EHLO c.example", LineStatus::Ok);
    EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)), "250");
    EXPECT_EQ(Summarize(s.on_line("RCPT TO:<x@elsewhere.org>", LineStatus::Ok)),
              trusted ? "250" : "550")
        << trusted;
  }
}

// RFC 8689: REQUIRETLS is offered and taken only inside TLS, and goes with the envelope.
TEST(SmtpServerStartTls, RequireTlsOnlyInsideTls) {
  ServerPolicy policy = TestPolicy();
  ClientInfo client = TestClient();
  client.tls_offered = true;
  ServerSession s(policy, client);
  s.start();
  EXPECT_EQ(ReplyText(s.on_line("EHLO c.example", LineStatus::Ok)).find("REQUIRETLS"),
            std::string::npos);
  auto refused = s.on_line("MAIL FROM:<a@remote.org> REQUIRETLS", LineStatus::Ok);
  EXPECT_EQ(ReplyText(refused), "530 5.7.10 REQUIRETLS needs a TLS session (RFC 8689)\r\n");
  EXPECT_EQ(Summarize(s.on_line("STARTTLS", LineStatus::Ok)), "220 STARTTLS");
  s.on_tls_started(TestTls());
  EXPECT_NE(ReplyText(s.on_line("EHLO c.example", LineStatus::Ok)).find("250-REQUIRETLS\r\n"),
            std::string::npos);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org> REQUIRETLS=yes", LineStatus::Ok)), "501");
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org> REQUIRETLS", LineStatus::Ok)), "250");
  EXPECT_TRUE(s.envelope().require_tls);
}

TEST(SmtpServerStartTls, TheSessionForgetsEverythingBeforeTls) {
  ServerPolicy policy = TestPolicy();
  ClientInfo client = TestClient();
  client.tls_offered = true;
  ServerSession session(policy, client);
  session.start();
  session.on_line("EHLO before.example", LineStatus::Ok);
  EXPECT_EQ(Summarize(session.on_line("STARTTLS", LineStatus::Ok)), "220 STARTTLS");
  session.on_tls_started(TestTls());
  EXPECT_EQ(session.envelope().helo, "");
  EXPECT_FALSE(session.esmtp());
  // RFC 3207 4.2: the EHLO before TLS does not count.
  EXPECT_EQ(Summarize(session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok)), "503");
  auto ehlo = ReplyText(session.on_line("EHLO after.example", LineStatus::Ok));
  EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos) << ehlo;
  EXPECT_EQ(Summarize(session.on_line("STARTTLS", LineStatus::Ok)), "554");
  EXPECT_EQ(Summarize(session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(session.on_line("RCPT TO:<u@example.com>", LineStatus::Ok)), "250");
  EXPECT_EQ(session.envelope().helo, "after.example");
}

TEST(SmtpServerStartTls, RefusedInATransactionOrWithAnArgument) {
  ServerPolicy policy = TestPolicy();
  ClientInfo client = TestClient();
  client.tls_offered = true;
  ServerSession session(policy, client);
  session.start();
  session.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(Summarize(session.on_line("STARTTLS now", LineStatus::Ok)), "501");
  session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok);
  EXPECT_EQ(Summarize(session.on_line("STARTTLS", LineStatus::Ok)), "503");
  EXPECT_FALSE(session.waiting());
  EXPECT_EQ(Summarize(session.on_line("RSET", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(session.on_line("STARTTLS", LineStatus::Ok)), "220 STARTTLS");
}

TEST(SmtpServerStartTls, ImplicitTlsBeforeTheGreeting) {
  ServerPolicy policy = TestPolicy();
  ClientInfo client = TestClient();
  client.tls_offered = true;
  client.role = ListenerRole::Submissions;
  ServerSession session(policy, client);
  EXPECT_TRUE(session.on_tls_started(TestTls()).empty());
  EXPECT_EQ(Summarize(session.start()), "220");
  auto ehlo = ReplyText(session.on_line("EHLO c.example", LineStatus::Ok));
  EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos) << ehlo;
  EXPECT_EQ(Summarize(session.on_line("STARTTLS", LineStatus::Ok)), "554");
}

TEST(SmtpServerStartTls, ReceivedHeaderSaysHowAsPostfixDoes) {
  ServerPolicy policy = TestPolicy();
  policy.hostname = "mx.example.com";
  for (bool ehlo : {true, false}) {
    ClientInfo client = TestClient(true);
    client.rdns = "client.example";
    client.tls_offered = true;
    ServerSession session(policy, client);
    session.start();
    session.on_line("EHLO client.example", LineStatus::Ok);
    session.on_line("STARTTLS", LineStatus::Ok);
    session.on_tls_started(TestTls());
    session.on_line(ehlo ? "EHLO client.example" : "HELO client.example", LineStatus::Ok);
    session.on_line("MAIL FROM:<s@remote.org>", LineStatus::Ok);
    session.on_line("RCPT TO:<u@example.com>", LineStatus::Ok);
    EXPECT_EQ(session.received_header("QID1", 0),
              std::string("Received: from client.example (client.example [192.0.2.1])\r\n"
                          "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
                          "\tby mx.example.com (Estafette) with ") +
                  (ehlo ? "ESMTPS" : "SMTP") +
                  " id QID1\r\n"
                  "\tfor <u@example.com>; Thu, 1 Jan 1970 00:00:00 +0000\r\n");
  }
}

// SMTP AUTH (RFC 4954), issue 14.
namespace auth_tests {

ClientInfo AuthClient(bool tls = true, ListenerRole role = ListenerRole::Mx) {
  ClientInfo client = TestClient();
  client.auth_offered = true;
  client.tls_offered = true;
  client.role = role;
  if (tls) client.tls = TestTls();
  return client;
}

// EHLO, then AUTH PLAIN for user/pass with the backend's answer.
Actions Authenticate(ServerSession& s, AuthResult result) {
  s.on_line("EHLO c.example", LineStatus::Ok);
  auto asked = s.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok);  // "\0user\0pass"
  EXPECT_EQ(Summarize(asked), "AUTH:PLAIN");
  EXPECT_TRUE(s.waiting());
  auto creds = s.take_credentials();
  EXPECT_EQ(creds.username, "user");
  EXPECT_EQ(creds.password, "pass");
  return s.on_auth_result(result, result == AuthResult::Accepted ? "user" : "");
}

TEST(SmtpServerAuth, OfferedOnlyOverTlsUnlessPlaintextIsAllowed) {
  ServerPolicy policy = TestPolicy();
  ServerSession plain(policy, AuthClient(false));
  plain.start();
  auto ehlo = ReplyText(plain.on_line("EHLO c.example", LineStatus::Ok));
  EXPECT_EQ(ehlo.find("AUTH"), std::string::npos) << ehlo;
  auto refused = plain.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok);
  EXPECT_EQ(ReplyText(refused),
            "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
  EXPECT_EQ(plain.error_count(), 1u);

  ServerSession secured(policy, AuthClient(true));
  secured.start();
  EXPECT_NE(
      ReplyText(secured.on_line("EHLO c.example", LineStatus::Ok)).find("250-AUTH PLAIN LOGIN\r\n"),
      std::string::npos);

  policy.auth_allow_plaintext = true;
  ServerSession allowed(policy, AuthClient(false));
  allowed.start();
  EXPECT_NE(ReplyText(allowed.on_line("EHLO c.example", LineStatus::Ok)).find("AUTH PLAIN LOGIN"),
            std::string::npos);
  EXPECT_EQ(Summarize(allowed.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok)),
            "AUTH:PLAIN");

  ClientInfo none = TestClient();
  none.tls = TestTls();
  ServerSession off(policy, none);  // no backend for this listener
  off.start();
  auto ehlo_off = ReplyText(off.on_line("EHLO c.example", LineStatus::Ok));
  EXPECT_EQ(ehlo_off.find("AUTH"), std::string::npos) << ehlo_off;
  EXPECT_EQ(ReplyText(off.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok)),
            "503 5.5.1 Error: authentication not enabled\r\n");
}

TEST(SmtpServerAuth, PlainAcceptedMayRelayAndIsRecorded) {
  ServerPolicy policy = TestPolicy();
  ServerSession s(policy, AuthClient());
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(s.on_line("RCPT TO:<x@elsewhere.org>", LineStatus::Ok)), "550");
  s.on_line("RSET", LineStatus::Ok);
  auto ok = Authenticate(s, AuthResult::Accepted);
  EXPECT_EQ(ReplyText(ok), "235 2.7.0 Authentication successful\r\n");
  EXPECT_EQ(s.authenticated_user(), "user");
  EXPECT_EQ(s.auth_mechanism(), "PLAIN");
  EXPECT_EQ(Summarize(s.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok)), "503");
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)), "250");
  EXPECT_EQ(s.envelope().auth_user, "user");
  EXPECT_EQ(Summarize(s.on_line("RCPT TO:<x@elsewhere.org>", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(s.on_line("AUTH LOGIN", LineStatus::Ok)), "503");  // authenticated
  auto received = s.received_header("Q1", 0);
  EXPECT_NE(received.find("with ESMTPSA id Q1"), std::string::npos) << received;
}

TEST(SmtpServerAuth, AnAuthenticatedSenderSkipsTheSenderDomainCheck) {
  ServerPolicy policy = TestPolicy();
  ClientInfo client = AuthClient();
  client.check_sender_domain = true;
  ServerSession s(policy, client);
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)), "LOOKUP:remote.org");
  s.on_sender_checked(SenderDomain::NotFound);
  s.on_line("RSET", LineStatus::Ok);
  Authenticate(s, AuthResult::Accepted);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)), "250");
}

TEST(SmtpServerAuth, ProtocolNamesOfRfc3848) {
  ServerPolicy policy = TestPolicy();
  policy.auth_allow_plaintext = true;
  ServerSession s(policy, AuthClient(false));
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(s.protocol_name(), "ESMTP");
  s.on_line("RSET", LineStatus::Ok);
  Authenticate(s, AuthResult::Accepted);
  EXPECT_EQ(s.protocol_name(), "ESMTPA");
  ServerSession h(policy, AuthClient(true));
  h.start();
  h.on_line("HELO c.example", LineStatus::Ok);
  EXPECT_EQ(h.protocol_name(), "SMTP");
  EXPECT_EQ(Summarize(h.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok)), "503");
}

TEST(SmtpServerAuth, LoginAndPlainWithChallenges) {
  ServerPolicy policy = TestPolicy();
  ServerSession s(policy, AuthClient());
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(ReplyText(s.on_line("AUTH LOGIN", LineStatus::Ok)), "334 VXNlcm5hbWU6\r\n");
  EXPECT_FALSE(s.waiting());  // the next line is the answer, fed as any line
  EXPECT_EQ(ReplyText(s.on_line("dXNlcg==", LineStatus::Ok)), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(Summarize(s.on_line("cGFzcw==", LineStatus::Ok)), "AUTH:LOGIN");
  auto creds = s.take_credentials();
  EXPECT_EQ(creds.username, "user");
  EXPECT_EQ(creds.password, "pass");
  EXPECT_EQ(Summarize(s.on_auth_result(AuthResult::Accepted, "user")), "235");

  ServerSession p(policy, AuthClient());
  p.start();
  p.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(ReplyText(p.on_line("AUTH plain", LineStatus::Ok)), "334 \r\n");  // empty challenge
  EXPECT_EQ(Summarize(p.on_line("AHVzZXIAcGFzcw==", LineStatus::Ok)), "AUTH:PLAIN");
  // "AUTH PLAIN =" is an empty initial response: PLAIN cannot be empty.
  ServerSession e(policy, AuthClient());
  e.start();
  e.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(Summarize(e.on_line("AUTH PLAIN =", LineStatus::Ok)), "501");
}

TEST(SmtpServerAuth, CancelMalformedAndOverlongAnswersEndTheExchange) {
  ServerPolicy policy = TestPolicy();
  ServerSession s(policy, AuthClient());
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  s.on_line("AUTH LOGIN", LineStatus::Ok);
  EXPECT_EQ(ReplyText(s.on_line("*", LineStatus::Ok)), "501 5.0.0 Authentication aborted\r\n");
  // Commands again: the exchange is over.
  EXPECT_EQ(Summarize(s.on_line("NOOP", LineStatus::Ok)), "250");
  s.on_line("AUTH LOGIN", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("not base64!", LineStatus::Ok)), "501");
  EXPECT_EQ(Summarize(s.on_line("NOOP", LineStatus::Ok)), "250");
  s.on_line("AUTH LOGIN", LineStatus::Ok);
  EXPECT_EQ(ReplyText(s.on_line("", LineStatus::TooLong)),
            "500 5.5.6 Authentication exchange line is too long\r\n");
  s.on_line("AUTH LOGIN", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("dXNlcg==", LineStatus::BareLineEnding)), "501");
  // A command sent as the answer is no command: it is a (malformed) answer.
  s.on_line("AUTH LOGIN", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("HELO c.example", LineStatus::Ok)), "501 421 CLOSE");  // 5th
  EXPECT_TRUE(s.closed());
}

TEST(SmtpServerAuth, RefusedAndUnavailable) {
  ServerPolicy policy = TestPolicy();
  ServerSession s(policy, AuthClient());
  s.start();
  auto refused = Authenticate(s, AuthResult::Refused);
  EXPECT_EQ(ReplyText(refused), "535 5.7.8 Error: authentication failed\r\n");
  EXPECT_EQ(s.error_count(), 1u);
  EXPECT_EQ(s.authenticated_user(), "");
  s.on_line("RSET", LineStatus::Ok);
  auto down = Authenticate(s, AuthResult::Unavailable);
  EXPECT_EQ(ReplyText(down), "454 4.7.0 Temporary authentication failure, try again later\r\n");
  EXPECT_EQ(s.error_count(), 1u);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(s.on_line("RCPT TO:<x@elsewhere.org>", LineStatus::Ok)), "550");
}

TEST(SmtpServerAuth, BruteForceLimitClosesTheSession) {
  // As esmtpd does: each failure is recorded before the session hears of it; 2 are allowed.
  ServerPolicy policy = TestPolicy();
  int failures = 0;
  std::string asked_for;
  policy.auth_blocked = [&](const ClientInfo& c) {
    asked_for = c.ip;
    return failures >= 2;
  };
  ServerSession s(policy, AuthClient());
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    EXPECT_EQ(Summarize(s.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok)), "AUTH:PLAIN");
    s.take_credentials();
    ++failures;
    auto refused = s.on_auth_result(AuthResult::Refused);
    EXPECT_EQ(Summarize(refused), attempt == 1 ? "535" : "535 421 CLOSE") << attempt;
  }
  EXPECT_EQ(asked_for, "192.0.2.1");
  EXPECT_TRUE(s.closed());
  ServerSession later(policy, AuthClient());  // another connection of the client
  later.start();
  later.on_line("EHLO c.example", LineStatus::Ok);
  auto bye = later.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok);
  EXPECT_EQ(Summarize(bye), "421 CLOSE");
  EXPECT_NE(ReplyText(bye).find("421 4.7.0 "), std::string::npos);
}

TEST(SmtpServerAuth, SubmissionNeedsAuthBeforeMailButNotLocally) {
  ServerPolicy policy = TestPolicy();
  for (auto role : {ListenerRole::Submission, ListenerRole::Submissions}) {
    ServerSession s(policy, AuthClient(true, role));
    s.start();
    s.on_line("EHLO c.example", LineStatus::Ok);
    EXPECT_EQ(ReplyText(s.on_line("MAIL FROM:<a@example.com>", LineStatus::Ok)),
              "530 5.7.0 Authentication required\r\n");
    s.on_line("RSET", LineStatus::Ok);
    Authenticate(s, AuthResult::Accepted);
    EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@example.com>", LineStatus::Ok)), "250");
  }
  ClientInfo local;
  local.local_uid = 1000;
  local.relay_client = true;
  local.role = ListenerRole::Submission;
  ServerSession l(policy, local);
  l.start();
  l.on_line("EHLO localhost", LineStatus::Ok);
  EXPECT_EQ(Summarize(l.on_line("MAIL FROM:<a@example.com>", LineStatus::Ok)), "250");
}

TEST(SmtpServerAuth, TlsRequiredListenerRefusesMailBeforeStartTls) {
  ServerPolicy policy = TestPolicy();
  ClientInfo client = TestClient();
  client.tls_offered = true;
  client.tls_required = true;
  ServerSession s(policy, client);
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(ReplyText(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)),
            "530 5.7.0 Must issue a STARTTLS command first\r\n");
  EXPECT_EQ(Summarize(s.on_line("STARTTLS", LineStatus::Ok)), "220 STARTTLS");
  s.on_tls_started(TestTls());
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)), "250");
}

TEST(SmtpServerAuth, TlsForgetsAnAuthenticationMadeBeforeIt) {
  ServerPolicy policy = TestPolicy();
  policy.auth_allow_plaintext = true;
  ServerSession s(policy, AuthClient(false));
  s.start();
  Authenticate(s, AuthResult::Accepted);
  EXPECT_EQ(s.authenticated_user(), "user");
  EXPECT_EQ(Summarize(s.on_line("STARTTLS", LineStatus::Ok)), "220 STARTTLS");
  s.on_tls_started(TestTls());
  EXPECT_EQ(s.authenticated_user(), "");
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(s.on_line("RCPT TO:<x@elsewhere.org>", LineStatus::Ok)), "550");
}

TEST(SmtpServerAuth, SenderLoginMapDecidesWhichSendersALoginMayUse) {
  ServerPolicy policy = TestPolicy();
  std::vector<std::string> asked;
  policy.sender_owned = [&](std::string_view login, std::string_view sender) {
    asked.push_back(std::string(login) + "/" + std::string(sender));
    return sender == "user@example.com";
  };
  ServerSession s(policy, AuthClient());
  s.start();
  // Not authenticated: the map is not asked (the listener decides whether AUTH is needed).
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<boss@example.com>", LineStatus::Ok)), "250");
  EXPECT_TRUE(asked.empty());
  s.on_line("RSET", LineStatus::Ok);
  Authenticate(s, AuthResult::Accepted);
  EXPECT_EQ(ReplyText(s.on_line("MAIL FROM:<boss@example.com>", LineStatus::Ok)),
            "553 5.7.1 <boss@example.com>: Sender address rejected: not owned by user user\r\n");
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<user@example.com>", LineStatus::Ok)), "250");
  s.on_line("RSET", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<>", LineStatus::Ok)), "250");  // bounces: no owner
  EXPECT_EQ(asked, (std::vector<std::string>{"user/boss@example.com", "user/user@example.com"}));
}

TEST(SmtpServerAuth, AuthParameterOnMail) {
  ServerPolicy policy = TestPolicy();
  ServerSession none(policy, TestClient());
  none.start();
  none.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(ReplyText(none.on_line("MAIL FROM:<a@remote.org> AUTH=<>", LineStatus::Ok)),
            "555 5.5.4 Unsupported option: AUTH\r\n");
  ServerSession s(policy, AuthClient());
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  // Unauthenticated: taken as AUTH=<> (RFC 4954 5), never as who the client claims to be.
  EXPECT_EQ(
      Summarize(s.on_line("MAIL FROM:<a@remote.org> AUTH=boss+40example.com", LineStatus::Ok)),
      "250");
  EXPECT_EQ(s.envelope().auth_user, "");
  s.on_line("RSET", LineStatus::Ok);
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<a@remote.org> AUTH=+zz", LineStatus::Ok)), "501");
}

TEST(SmtpServerAuth, RefusedWhereRfc4954SaysSo) {
  ServerPolicy policy = TestPolicy();
  policy.max_errors = 0;
  ServerSession s(policy, AuthClient());
  s.start();
  EXPECT_EQ(ReplyText(s.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok)),
            "503 5.5.1 Error: send EHLO first\r\n");
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(ReplyText(s.on_line("AUTH CRAM-MD5", LineStatus::Ok)),
            "504 5.5.4 Unrecognized authentication type\r\n");
  EXPECT_EQ(Summarize(s.on_line("AUTH", LineStatus::Ok)), "501");
  EXPECT_EQ(Summarize(s.on_line("AUTH PLAIN a b", LineStatus::Ok)), "501");
  s.on_line("MAIL FROM:<a@remote.org>", LineStatus::Ok);
  EXPECT_EQ(ReplyText(s.on_line("AUTH PLAIN AHVzZXIAcGFzcw==", LineStatus::Ok)),
            "503 5.5.1 Error: MAIL transaction in progress\r\n");
}

// SCRAM-SHA-256 (RFC 5802, 7677) in the session: RFC 7677's exchange, as SMTP carries it.
ClientInfo ScramClient() {
  ClientInfo client = AuthClient();
  client.auth_scram = true;
  return client;
}

auth::ScramLookup Pencil(auth::ScramLookup::Kind kind = auth::ScramLookup::Kind::Found) {
  auth::ScramLookup lookup;
  lookup.kind = kind;
  lookup.secret = auth::rfc7677::pencil_secret();
  return lookup;
}

std::string B64(std::string_view text) {
  return auth::base64_encode(text);
}

// EHLO, AUTH SCRAM-SHA-256 with client-first as the initial response, the secret: server-first.
void ScramToServerFirst(ServerSession& s, const auth::ScramLookup& lookup = Pencil()) {
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  auto asked = s.on_line("AUTH SCRAM-SHA-256 " + B64(auth::rfc7677::kClientFirst), LineStatus::Ok);
  ASSERT_EQ(Summarize(asked), "SCRAM-LOOKUP:user");
  EXPECT_TRUE(s.waiting());
  EXPECT_EQ(ReplyText(s.on_scram_secret(lookup, auth::rfc7677::kServerNonce)),
            "334 " + B64(auth::rfc7677::kServerFirst) + "\r\n");
}

TEST(SmtpServerAuth, ScramAdvertisedOnlyWhenTheBackendHasIt) {
  ServerPolicy policy = TestPolicy();
  ServerSession without(policy, AuthClient());
  without.start();
  EXPECT_NE(
      ReplyText(without.on_line("EHLO c.example", LineStatus::Ok)).find("250-AUTH PLAIN LOGIN\r\n"),
      std::string::npos);
  EXPECT_EQ(ReplyText(without.on_line("AUTH SCRAM-SHA-256", LineStatus::Ok)),
            "504 5.5.4 Unrecognized authentication type\r\n");
  ServerSession with(policy, ScramClient());
  with.start();
  EXPECT_NE(ReplyText(with.on_line("EHLO c.example", LineStatus::Ok))
                .find("250-AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"),
            std::string::npos);
  // The same TLS rule as PLAIN and LOGIN.
  ClientInfo plaintext = ScramClient();
  plaintext.tls.reset();
  ServerSession clear(policy, plaintext);
  clear.start();
  EXPECT_EQ(ReplyText(clear.on_line("EHLO c.example", LineStatus::Ok)).find("AUTH"),
            std::string::npos);
  EXPECT_EQ(Summarize(clear.on_line("AUTH SCRAM-SHA-256", LineStatus::Ok)), "538");
}

TEST(SmtpServerAuth, ScramRfc7677ExchangeThenEmptyLineThen235) {
  ServerPolicy policy = TestPolicy();
  ServerSession s(policy, ScramClient());
  ScramToServerFirst(s);
  EXPECT_EQ(ReplyText(s.on_line(B64(auth::rfc7677::kClientFinal), LineStatus::Ok)),
            "334 " + B64(auth::rfc7677::kServerFinal) + "\r\n");
  EXPECT_FALSE(s.waiting());
  auto checked = s.on_line("", LineStatus::Ok);  // RFC 4954 4: the client's empty answer
  EXPECT_EQ(Summarize(checked), "CHECKED:SCRAM-SHA-256");
  EXPECT_TRUE(s.waiting());
  EXPECT_EQ(s.checked_auth().result, AuthResult::Accepted);
  EXPECT_EQ(s.checked_auth().user, "user");
  EXPECT_EQ(ReplyText(s.on_auth_result(AuthResult::Accepted, "user")),
            "235 2.7.0 Authentication successful\r\n");
  EXPECT_EQ(s.authenticated_user(), "user");
  EXPECT_EQ(s.auth_mechanism(), "SCRAM-SHA-256");
  EXPECT_EQ(s.protocol_name(), "ESMTPSA");
  EXPECT_EQ(Summarize(s.on_line("MAIL FROM:<user@elsewhere.example>", LineStatus::Ok)), "250");
  EXPECT_EQ(Summarize(s.on_line("RCPT TO:<x@relay-me.example>", LineStatus::Ok)), "250");
}

TEST(SmtpServerAuth, ScramWithoutInitialResponse) {
  ServerPolicy policy = TestPolicy();
  ServerSession s(policy, ScramClient());
  s.start();
  s.on_line("EHLO c.example", LineStatus::Ok);
  EXPECT_EQ(ReplyText(s.on_line("AUTH scram-sha-256", LineStatus::Ok)), "334 \r\n");
  EXPECT_EQ(Summarize(s.on_line(B64(auth::rfc7677::kClientFirst), LineStatus::Ok)),
            "SCRAM-LOOKUP:user");
  EXPECT_EQ(Summarize(s.on_scram_secret(Pencil(), auth::rfc7677::kServerNonce)), "334");
  EXPECT_EQ(Summarize(s.on_line(B64(auth::rfc7677::kClientFinal), LineStatus::Ok)), "334");
  EXPECT_EQ(Summarize(s.on_line("", LineStatus::Ok)), "CHECKED:SCRAM-SHA-256");
  EXPECT_EQ(Summarize(s.on_auth_result(AuthResult::Accepted, "user")), "235");
}

TEST(SmtpServerAuth, ScramWrongProofUnknownUserAndBruteForceLimit) {
  ServerPolicy policy = TestPolicy();
  int failures = 0;
  policy.auth_blocked = [&](const ClientInfo&) { return failures >= 2; };
  std::string bad_proof(auth::rfc7677::kClientFinal);
  bad_proof[bad_proof.size() - 3] = 'A';  // "...dVQ=" -> "...AVQ=": another 32 bytes
  ServerSession s(policy, ScramClient());
  ScramToServerFirst(s);
  EXPECT_EQ(Summarize(s.on_line(B64(bad_proof), LineStatus::Ok)), "CHECKED:SCRAM-SHA-256");
  EXPECT_EQ(s.checked_auth().result, AuthResult::Refused);
  EXPECT_EQ(s.checked_auth().user, "user");
  ++failures;
  EXPECT_EQ(ReplyText(s.on_auth_result(AuthResult::Refused)),
            "535 5.7.8 Error: authentication failed\r\n");
  // The right proof, but the backend does not know the user (a fake secret): refused too.
  auto asked = s.on_line("AUTH SCRAM-SHA-256 " + B64(auth::rfc7677::kClientFirst), LineStatus::Ok);
  EXPECT_EQ(Summarize(asked), "SCRAM-LOOKUP:user");
  s.on_scram_secret(Pencil(auth::ScramLookup::Kind::Unknown), auth::rfc7677::kServerNonce);
  EXPECT_EQ(Summarize(s.on_line(B64(auth::rfc7677::kClientFinal), LineStatus::Ok)),
            "CHECKED:SCRAM-SHA-256");
  EXPECT_EQ(s.checked_auth().result, AuthResult::Refused);
  ++failures;
  EXPECT_EQ(Summarize(s.on_auth_result(AuthResult::Refused)), "535 421 CLOSE");
  EXPECT_TRUE(s.closed());
  EXPECT_EQ(s.authenticated_user(), "");
}

TEST(SmtpServerAuth, ScramCancelMalformedAndUnavailable) {
  ServerPolicy policy = TestPolicy();
  {  // cancel at client-first, at client-final, at the acknowledgement
    ServerSession s(policy, ScramClient());
    s.start();
    s.on_line("EHLO c.example", LineStatus::Ok);
    s.on_line("AUTH SCRAM-SHA-256", LineStatus::Ok);
    EXPECT_EQ(ReplyText(s.on_line("*", LineStatus::Ok)), "501 5.0.0 Authentication aborted\r\n");
  }
  {
    ServerSession s(policy, ScramClient());
    ScramToServerFirst(s);
    EXPECT_EQ(Summarize(s.on_line("*", LineStatus::Ok)), "501");
    EXPECT_EQ(Summarize(s.on_line("NOOP", LineStatus::Ok)), "250");  // back to commands
  }
  {
    ServerSession s(policy, ScramClient());
    ScramToServerFirst(s);
    s.on_line(B64(auth::rfc7677::kClientFinal), LineStatus::Ok);
    EXPECT_EQ(Summarize(s.on_line("*", LineStatus::Ok)), "501");
    EXPECT_EQ(s.authenticated_user(), "");
  }
  for (std::string_view first : {"p=tls-unique,,n=user,r=abc", "n,,n=us=er,r=abc", "n,,r=abc"}) {
    ServerSession s(policy, ScramClient());
    s.start();
    s.on_line("EHLO c.example", LineStatus::Ok);
    EXPECT_EQ(ReplyText(s.on_line("AUTH SCRAM-SHA-256 " + B64(first), LineStatus::Ok)),
              "501 5.5.2 Error: cannot decode the authentication response\r\n")
        << first;
  }
  {  // not base64; the wrong nonce; a non-empty acknowledgement
    ServerSession s(policy, ScramClient());
    ScramToServerFirst(s);
    EXPECT_EQ(Summarize(s.on_line("not base64!", LineStatus::Ok)), "501");
    ServerSession n(policy, ScramClient());
    ScramToServerFirst(n);
    std::string other(auth::rfc7677::kClientFinal);
    other[20] = 'x';
    EXPECT_EQ(Summarize(n.on_line(B64(other), LineStatus::Ok)), "501");
    ServerSession a(policy, ScramClient());
    ScramToServerFirst(a);
    a.on_line(B64(auth::rfc7677::kClientFinal), LineStatus::Ok);
    EXPECT_EQ(Summarize(a.on_line("=", LineStatus::Ok)), "501");
    EXPECT_EQ(a.authenticated_user(), "");
  }
  {  // the backend cannot answer
    ServerSession s(policy, ScramClient());
    s.start();
    s.on_line("EHLO c.example", LineStatus::Ok);
    s.on_line("AUTH SCRAM-SHA-256 " + B64(auth::rfc7677::kClientFirst), LineStatus::Ok);
    EXPECT_EQ(ReplyText(s.on_scram_secret(auth::ScramLookup{}, auth::rfc7677::kServerNonce)),
              "454 4.7.0 Temporary authentication failure, try again later\r\n");
    EXPECT_EQ(Summarize(s.on_line("NOOP", LineStatus::Ok)), "250");
  }
}

}  // namespace auth_tests

}  // namespace
}  // namespace estafette::smtp
