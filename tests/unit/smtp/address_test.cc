#include "lib/smtp/address.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::smtp {
namespace {

struct MailboxCase {
  std::string input;
  bool valid;
  std::string local;
  std::string domain;
};

void PrintTo(const MailboxCase& c, std::ostream* os) {
  *os << '"' << c.input << '"';
}

class SmtpParseMailbox : public ::testing::TestWithParam<MailboxCase> {};

TEST_P(SmtpParseMailbox, Parses) {
  const MailboxCase& c = GetParam();
  auto result = parse_mailbox(c.input);
  ASSERT_EQ(result.has_value(), c.valid) << c.input;
  if (c.valid) {
    EXPECT_EQ(result->local, c.local);
    EXPECT_EQ(result->domain, c.domain);
    EXPECT_EQ(result->str(), c.input);
  }
}

const std::string k64(64, 'a');
const std::string k63(63, 'b');

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpParseMailbox,
    ::testing::Values(
        MailboxCase{"user@example.com", true, "user", "example.com"},
        MailboxCase{"First.Last@Example.COM", true, "First.Last", "Example.COM"},
        MailboxCase{"a+tag-x_y@sub.example.org", true, "a+tag-x_y", "sub.example.org"},
        MailboxCase{"!#$%&'*+-/=?^_`{|}~@x.y", true, "!#$%&'*+-/=?^_`{|}~", "x.y"},
        MailboxCase{"root@localhost", true, "root", "localhost"},
        MailboxCase{"u@a-b.c-d", true, "u", "a-b.c-d"},
        MailboxCase{"u@123.example", true, "u", "123.example"},
        MailboxCase{"\"john doe\"@example.com", true, "\"john doe\"", "example.com"},
        MailboxCase{"\"a@b>c\"@example.com", true, "\"a@b>c\"", "example.com"},
        MailboxCase{"\"q\\\"x\"@example.com", true, "\"q\\\"x\"", "example.com"},
        MailboxCase{"\"\"@example.com", true, "\"\"", "example.com"},
        MailboxCase{"u@[1.2.3.4]", true, "u", "[1.2.3.4]"},
        MailboxCase{"u@[255.255.255.255]", true, "u", "[255.255.255.255]"},
        MailboxCase{"u@[IPv6:::1]", true, "u", "[IPv6:::1]"},
        MailboxCase{"u@[ipv6:2001:db8::1]", true, "u", "[ipv6:2001:db8::1]"},
        MailboxCase{"u@[IPv6:::ffff:1.2.3.4]", true, "u", "[IPv6:::ffff:1.2.3.4]"},
        MailboxCase{"u@[x-tag:some-content]", true, "u", "[x-tag:some-content]"},
        MailboxCase{k64 + "@example.com", true, k64, "example.com"},
        MailboxCase{"u@" + k63 + ".com", true, "u", k63 + ".com"},
        // Invalid.
        MailboxCase{"", false, "", ""}, MailboxCase{"user", false, "", ""},
        MailboxCase{"@example.com", false, "", ""}, MailboxCase{"user@", false, "", ""},
        MailboxCase{"a@b@c", false, "", ""}, MailboxCase{".user@example.com", false, "", ""},
        MailboxCase{"user.@example.com", false, "", ""},
        MailboxCase{"us..er@example.com", false, "", ""},
        MailboxCase{"us er@example.com", false, "", ""},
        MailboxCase{"us(er@example.com", false, "", ""},
        MailboxCase{"\"unterminated@example.com", false, "", ""},
        MailboxCase{"\"a\"b@example.com", false, "", ""},
        MailboxCase{"\"tab\there\"@example.com", false, "", ""},
        MailboxCase{"u\xc3\xa9@example.com", false, "", ""},
        MailboxCase{"u@-example.com", false, "", ""}, MailboxCase{"u@example-.com", false, "", ""},
        MailboxCase{"u@example..com", false, "", ""}, MailboxCase{"u@example.com.", false, "", ""},
        MailboxCase{"u@.example.com", false, "", ""}, MailboxCase{"u@exa_mple.com", false, "", ""},
        MailboxCase{"u@[1.2.3]", false, "", ""}, MailboxCase{"u@[1.2.3.256]", false, "", ""},
        MailboxCase{"u@[1.2.3.4.5]", false, "", ""}, MailboxCase{"u@[1.2.3.1234]", false, "", ""},
        MailboxCase{"u@[IPv6:1.2.3.4]", false, "", ""},
        MailboxCase{"u@[IPv6:gggg::1]", false, "", ""}, MailboxCase{"u@[]", false, "", ""},
        MailboxCase{"u@[1.2.3.4", false, "", ""}, MailboxCase{"u@1.2.3.4]", false, "", ""},
        MailboxCase{"a" + k64 + "@example.com", false, "", ""},
        MailboxCase{"u@" + k63 + "b.com", false, "", ""},
        MailboxCase{"u@" + std::string(250, 'a') + ".com", false, "", ""}));

struct DomainOfCase {
  std::string input;
  std::string domain;
};

class SmtpDomainOf : public ::testing::TestWithParam<DomainOfCase> {};

TEST_P(SmtpDomainOf, LowerCasesTheDomain) {
  EXPECT_EQ(domain_of(GetParam().input), GetParam().domain);
}

INSTANTIATE_TEST_SUITE_P(SmtpTable, SmtpDomainOf,
                         ::testing::Values(DomainOfCase{"user@Example.COM", "example.com"},
                                           DomainOfCase{"\"a@b\"@Host.Org", "host.org"},
                                           DomainOfCase{"u@[IPv6:::1]", "[ipv6:::1]"},
                                           DomainOfCase{"postmaster", ""}, DomainOfCase{"", ""},
                                           DomainOfCase{"\"open", ""}));

struct ListedCase {
  std::string domain;
  bool listed;
};

class SmtpDomainListed : public ::testing::TestWithParam<ListedCase> {};

TEST_P(SmtpDomainListed, MatchesEntriesAndSubdomainEntries) {
  const std::vector<std::string> list = {"exact.test", ".example.com", ".", ""};
  EXPECT_EQ(domain_listed(list, GetParam().domain), GetParam().listed) << GetParam().domain;
}

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpDomainListed,
    ::testing::Values(ListedCase{"exact.test", true}, ListedCase{"sub.exact.test", false},
                      ListedCase{"h1.foo.example.com", true}, ListedCase{"a.example.com", true},
                      ListedCase{"example.com", false}, ListedCase{"xexample.com", false},
                      ListedCase{"example.com.evil", false}, ListedCase{"other.test", false}));

struct UnquoteCase {
  std::string input;
  std::string output;
};

class SmtpUnquoteLocal : public ::testing::TestWithParam<UnquoteCase> {};

TEST_P(SmtpUnquoteLocal, RemovesQuoting) {
  EXPECT_EQ(unquote_local(GetParam().input), GetParam().output);
}

INSTANTIATE_TEST_SUITE_P(SmtpTable, SmtpUnquoteLocal,
                         ::testing::Values(UnquoteCase{"plain.user", "plain.user"},
                                           UnquoteCase{"\"john doe\"", "john doe"},
                                           UnquoteCase{"\"a\\\"b\\\\c\"", "a\"b\\c"},
                                           UnquoteCase{"\"\"", ""}));

}  // namespace
}  // namespace estafette::smtp
