#include "lib/smtp/command.h"

#include <gtest/gtest.h>

#include <string>

namespace estafette::smtp {
namespace {

struct CommandCase {
  std::string line;
  Verb verb;
  std::string error;  // expected error reply, "" for none
  std::string address = {};
  EsmtpParams params = {};
  std::string argument = {};
};

std::ostream& operator<<(std::ostream& os, const CommandCase& c) {
  return os << '"' << c.line << '"';
}

class SmtpParseCommand : public ::testing::TestWithParam<CommandCase> {};

TEST_P(SmtpParseCommand, Parses) {
  const CommandCase& c = GetParam();
  Command cmd = parse_command(c.line);
  EXPECT_EQ(cmd.verb, c.verb);
  EXPECT_EQ(cmd.error, c.error);
  EXPECT_EQ(cmd.ok(), c.error.empty());
  if (c.error.empty()) {
    EXPECT_EQ(cmd.address, c.address);
    EXPECT_EQ(cmd.params, c.params);
    if (c.verb != Verb::Mail && c.verb != Verb::Rcpt) {
      EXPECT_EQ(cmd.argument, c.argument);
    }
  }
}

const std::string kMailSyntax = "501 5.5.4 Syntax: MAIL FROM:<address>";
const std::string kRcptSyntax = "501 5.5.4 Syntax: RCPT TO:<address>";
const std::string kBadSender = "501 5.1.7 Bad sender address syntax";
const std::string kBadRcpt = "501 5.1.3 Bad recipient address syntax";
const std::string kBadParams = "501 5.5.4 Syntax error in parameters";

INSTANTIATE_TEST_SUITE_P(
    SmtpVerbs, SmtpParseCommand,
    ::testing::Values(
        CommandCase{"HELO mx.example.com", Verb::Helo, "", "", {}, "mx.example.com"},
        CommandCase{"helo mx", Verb::Helo, "", "", {}, "mx"},
        CommandCase{"EHLO [192.0.2.1]", Verb::Ehlo, "", "", {}, "[192.0.2.1]"},
        CommandCase{"eHlO  client.example  ", Verb::Ehlo, "", "", {}, "client.example"},
        CommandCase{"EHLO", Verb::Ehlo, "501 5.5.4 Syntax: EHLO hostname"},
        CommandCase{"HELO ", Verb::Helo, "501 5.5.4 Syntax: HELO hostname"},
        CommandCase{std::string("HELO a\0b", 8), Verb::Helo,
                    "501 5.5.2 Error: control characters in the HELO argument"},
        CommandCase{"EHLO a\x1b[2Jb", Verb::Ehlo,
                    "501 5.5.2 Error: control characters in the EHLO argument"},
        CommandCase{"EHLO " + std::string(256, 'a'), Verb::Ehlo,
                    "501 5.5.2 Error: EHLO argument longer than 255 characters"},
        CommandCase{"EHLO " + std::string(255, 'a'), Verb::Ehlo, "", "", {}, std::string(255, 'a')},
        CommandCase{"EHLO caf\xc3\xa9.example", Verb::Ehlo, "", "", {}, "caf\xc3\xa9.example"},
        CommandCase{"DATA", Verb::Data, ""}, CommandCase{"data", Verb::Data, ""},
        CommandCase{"DATA ", Verb::Data, ""},
        CommandCase{"DATA now", Verb::Data, "501 5.5.4 Syntax: DATA"},
        CommandCase{"RSET", Verb::Rset, ""},
        CommandCase{"RSET x", Verb::Rset, "501 5.5.4 Syntax: RSET"},
        CommandCase{"NOOP", Verb::Noop, ""},
        CommandCase{"NOOP anything goes", Verb::Noop, "", "", {}, "anything goes"},
        CommandCase{"QUIT", Verb::Quit, ""}, CommandCase{"quit", Verb::Quit, ""},
        CommandCase{"QUIT now", Verb::Quit, "501 5.5.4 Syntax: QUIT"},
        CommandCase{"VRFY root", Verb::Vrfy, "", "", {}, "root"},
        CommandCase{"VRFY", Verb::Vrfy, "501 5.5.4 Syntax: VRFY address"},
        CommandCase{"HELP", Verb::Help, ""},
        CommandCase{"HELP MAIL", Verb::Help, "", "", {}, "MAIL"},
        CommandCase{"STARTTLS", Verb::Starttls, ""}, CommandCase{"StartTLS", Verb::Starttls, ""},
        CommandCase{"STARTTLS x", Verb::Starttls, "501 5.5.4 Syntax: STARTTLS"},
        CommandCase{"", Verb::Unknown, ""}, CommandCase{" HELO x", Verb::Unknown, ""},
        CommandCase{"HELOX x", Verb::Unknown, ""}, CommandCase{"HEL", Verb::Unknown, ""},
        CommandCase{"AUTH PLAIN", Verb::Auth, "", "", {}, "PLAIN"},
        CommandCase{"auth login dXNlcg==", Verb::Auth, "", "", {}, "login dXNlcg=="},
        CommandCase{"AUTH PLAIN =", Verb::Auth, "", "", {}, "PLAIN ="},
        CommandCase{"AUTH SCRAM-SHA-256", Verb::Auth, "", "", {}, "SCRAM-SHA-256"},
        CommandCase{"AUTH", Verb::Auth, "501 5.5.4 Syntax: AUTH mechanism [initial-response]"},
        CommandCase{"AUTH PLAIN a b", Verb::Auth,
                    "501 5.5.4 Syntax: AUTH mechanism [initial-response]"},
        CommandCase{"AUTH PL\x01AIN", Verb::Auth,
                    "501 5.5.4 Syntax: AUTH mechanism [initial-response]"},
        CommandCase{"AUTH " + std::string(21, 'A'), Verb::Auth,
                    "501 5.5.4 Syntax: AUTH mechanism [initial-response]"},
        CommandCase{"GET / HTTP/1.0", Verb::Unknown, ""},
        CommandCase{"MAIL\tFROM:<a@b>", Verb::Unknown, ""},
        CommandCase{std::string("DATA\0", 5), Verb::Unknown, ""}));

INSTANTIATE_TEST_SUITE_P(
    SmtpMail, SmtpParseCommand,
    ::testing::Values(
        CommandCase{"MAIL FROM:<user@example.com>", Verb::Mail, "", "user@example.com"},
        CommandCase{"mail from:<user@example.com>", Verb::Mail, "", "user@example.com"},
        CommandCase{"MAIL FROM:<>", Verb::Mail, "", ""},
        CommandCase{"MAIL FROM: <user@example.com>", Verb::Mail, "", "user@example.com"},
        CommandCase{"MAIL  FROM:<a@b.c>", Verb::Mail, "", "a@b.c"},
        CommandCase{"MAIL FROM:<a@b.c>  ", Verb::Mail, "", "a@b.c"},
        CommandCase{"MAIL FROM:<@relay.example,@r2.example:user@example.com>", Verb::Mail, "",
                    "user@example.com"},
        CommandCase{"MAIL FROM:<\"john doe\"@example.com>", Verb::Mail, "",
                    "\"john doe\"@example.com"},
        CommandCase{"MAIL FROM:<\"a>b\"@example.com>", Verb::Mail, "", "\"a>b\"@example.com"},
        CommandCase{"MAIL FROM:<u@[192.0.2.1]>", Verb::Mail, "", "u@[192.0.2.1]"},
        CommandCase{"MAIL FROM:<a@b.c> SIZE=1000", Verb::Mail, "", "a@b.c", {{"SIZE", "1000"}}},
        CommandCase{"MAIL FROM:<a@b.c> size=1000 body=8BITMIME",
                    Verb::Mail,
                    "",
                    "a@b.c",
                    {{"SIZE", "1000"}, {"BODY", "8BITMIME"}}},
        CommandCase{"MAIL FROM:<> BODY=7bit  SIZE=5 X-FLAG",
                    Verb::Mail,
                    "",
                    "",
                    {{"BODY", "7bit"}, {"SIZE", "5"}, {"X-FLAG", ""}}},
        CommandCase{"MAIL FROM:<> ENVID=a+2Bb", Verb::Mail, "", "", {{"ENVID", "a+2Bb"}}},
        // Errors.
        CommandCase{"MAIL", Verb::Mail, kMailSyntax},
        CommandCase{"MAIL FROM", Verb::Mail, kMailSyntax},
        CommandCase{"MAIL TO:<a@b.c>", Verb::Mail, kMailSyntax},
        CommandCase{"MAIL FROM:a@b.c", Verb::Mail, kMailSyntax},
        CommandCase{"MAIL FROM:  <a@b.c>", Verb::Mail, kMailSyntax},
        CommandCase{"MAIL FROM:<a@b.c", Verb::Mail, kMailSyntax},
        CommandCase{"MAIL FROM:<a@b.c>SIZE=1", Verb::Mail, kMailSyntax},
        CommandCase{"MAIL FROM:<a@b.c>>", Verb::Mail, kMailSyntax},
        CommandCase{"MAIL FROM:<a@b..c>", Verb::Mail, kBadSender},
        CommandCase{"MAIL FROM:<a b@c.d>", Verb::Mail, kBadSender},
        CommandCase{"MAIL FROM:<user>", Verb::Mail, kBadSender},
        CommandCase{"MAIL FROM:<postmaster>", Verb::Mail, kBadSender},
        CommandCase{"MAIL FROM:<@relay.example:>", Verb::Mail, kBadSender},
        CommandCase{"MAIL FROM:<@relay..example:a@b.c>", Verb::Mail, kBadSender},
        CommandCase{"MAIL FROM:<@relay.example,r2:a@b.c>", Verb::Mail, kBadSender},
        CommandCase{"MAIL FROM:<\"open@b.c>", Verb::Mail, kBadSender},
        CommandCase{"MAIL FROM:<a@b.c> SIZE=", Verb::Mail, kBadParams},
        CommandCase{"MAIL FROM:<a@b.c> =1", Verb::Mail, kBadParams},
        CommandCase{"MAIL FROM:<a@b.c> -X=1", Verb::Mail, kBadParams},
        CommandCase{"MAIL FROM:<a@b.c> X=a=b", Verb::Mail, kBadParams},
        CommandCase{"MAIL FROM:<a@b.c> X_Y=1", Verb::Mail, kBadParams},
        CommandCase{"MAIL FROM:<" + std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
                        std::string(63, 'c') + "." + std::string(63, 'd') + ".com>",
                    Verb::Mail, kBadSender}));

INSTANTIATE_TEST_SUITE_P(
    SmtpRcpt, SmtpParseCommand,
    ::testing::Values(
        CommandCase{"RCPT TO:<user@example.com>", Verb::Rcpt, "", "user@example.com"},
        CommandCase{"rcpt to:<User@Example.com>", Verb::Rcpt, "", "User@Example.com"},
        CommandCase{"RCPT TO: <user@example.com>", Verb::Rcpt, "", "user@example.com"},
        CommandCase{"RCPT TO:<postmaster>", Verb::Rcpt, "", "postmaster"},
        CommandCase{"RCPT TO:<PostMaster>", Verb::Rcpt, "", "PostMaster"},
        CommandCase{"RCPT TO:<@hop.example:user@example.com>", Verb::Rcpt, "", "user@example.com"},
        CommandCase{"RCPT TO:<a@b.c> NOTIFY=NEVER", Verb::Rcpt, "", "a@b.c", {{"NOTIFY", "NEVER"}}},
        CommandCase{"RCPT TO:<>", Verb::Rcpt, kBadRcpt},
        CommandCase{"RCPT TO:<@hop.example:postmaster>", Verb::Rcpt, kBadRcpt},
        CommandCase{"RCPT TO:<root>", Verb::Rcpt, kBadRcpt},
        CommandCase{"RCPT TO:<a@-b.c>", Verb::Rcpt, kBadRcpt},
        CommandCase{"RCPT FROM:<a@b.c>", Verb::Rcpt, kRcptSyntax},
        CommandCase{"RCPT TO:", Verb::Rcpt, kRcptSyntax},
        CommandCase{"RCPT TO:a@b.c", Verb::Rcpt, kRcptSyntax},
        CommandCase{"RCPT", Verb::Rcpt, kRcptSyntax}));

TEST(SmtpVerbName, Names) {
  EXPECT_EQ(verb_name(Verb::Mail), "MAIL");
  EXPECT_EQ(verb_name(Verb::Starttls), "STARTTLS");
  EXPECT_EQ(verb_name(Verb::Auth), "AUTH");
  EXPECT_EQ(verb_name(Verb::Unknown), "UNKNOWN");
}

}  // namespace
}  // namespace estafette::smtp

namespace estafette::smtp {
namespace {

// A source route is dropped from the address, but the session must know it was there
// (allow_untrusted_routing).
TEST(SmtpParseCommand, RemembersTheSourceRoute) {
  EXPECT_TRUE(parse_command("RCPT TO:<@a.test,@b.test:user@c.test>").source_route);
  EXPECT_EQ(parse_command("RCPT TO:<@a.test,@b.test:user@c.test>").address, "user@c.test");
  EXPECT_FALSE(parse_command("RCPT TO:<user@c.test>").source_route);
  EXPECT_FALSE(parse_command("RCPT TO:<@a.test:user@c.test> X=a=b").source_route);
  EXPECT_TRUE(parse_command("MAIL FROM:<@a.test:user@c.test>").source_route);
}

TEST(SmtpAuthArgument, SplitsMechanismAndInitialResponse) {
  auto plain = auth_argument("PLAIN");
  EXPECT_EQ(plain.mechanism, "PLAIN");
  EXPECT_FALSE(plain.initial_response);
  auto with = auth_argument("LOGIN   dXNlcg==");
  EXPECT_EQ(with.mechanism, "LOGIN");
  ASSERT_TRUE(with.initial_response);
  EXPECT_EQ(*with.initial_response, "dXNlcg==");
  auto empty = auth_argument("PLAIN =");
  ASSERT_TRUE(empty.initial_response);
  EXPECT_EQ(*empty.initial_response, "=");
}

}  // namespace
}  // namespace estafette::smtp
