// esmtpd/connection.h command_for_log(): what a refusal's log line shows of the command that got
// it, as a table; an AUTH initial response (a secret) and non-commands never appear.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "esmtpd/connection.h"

namespace estafette::esmtpd {
namespace {

TEST(CommandForLog, Table) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"MAIL FROM:<a@b.test> SIZE=10", "MAIL FROM:<a@b.test> SIZE=10"},
      {"rcpt to:<x@y.test>", "RCPT to:<x@y.test>"},
      {"EHLO client.test", "EHLO client.test"},
      {"AUTH PLAIN AGFsaWNlAHMzY3JldA==", "AUTH PLAIN"},
      {"auth login YWxpY2U=", "AUTH login"},
      {"DATA", "DATA"},
      {"quit", "QUIT"},
      {"STARTTLS", "STARTTLS"},
      {"NOOP secret-looking argument", "NOOP"},
      {"AGFsaWNlAHMzY3JldA==", "?"},  // a SASL response that arrived out of turn
      {"XYZZYXYZZYXYZZY", "?"},
      {"", "?"},
      {"RCPT TO:<a\x01\"b\\c@y.test>", "RCPT TO:<a??b?c@y.test>"},
  };
  for (const auto& [line, shown] : cases) EXPECT_EQ(command_for_log(line), shown) << line;
  EXPECT_EQ(command_for_log("MAIL FROM:<" + std::string(1000, 'a') + ">").size(),
            std::string("MAIL ").size() + 256 + 3);
}

// session= in esmtpd's log: the pid first, so two processes' sessions never share an id.
TEST(SessionId, PidAndNumber) {
  EXPECT_EQ(session_id(4242, 1), "4242.1");
  EXPECT_EQ(session_id(77, 18446744073709551615u), "77.18446744073709551615");
  EXPECT_NE(session_id(12, 34), session_id(123, 4));
}

}  // namespace
}  // namespace estafette::esmtpd
