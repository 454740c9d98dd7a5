// esmtpd/reject_reason: the reason a refusing reply counts under, as a table.
#include "esmtpd/reject_reason.h"

#include <gtest/gtest.h>

namespace estafette::esmtpd {
namespace {

struct Case {
  smtp::Refusal why;
  const char* reply;
  metrics::Reject expected;
};

TEST(EsmtpdRejectReason, Table) {
  using R = metrics::Reject;
  using S = smtp::Refusal;
  const Case cases[] = {
      {S::Dnsbl, "550 5.7.1 listed\r\n", R::Dnsbl},
      {S::Relay, "550 5.7.1 <a@b>: Relay access denied\r\n", R::Relay},
      {S::UnknownUser, "550 5.1.1 <a@b>: no such mailbox\r\n", R::UnknownUser},
      {S::Filter, "451 4.7.1 Service unavailable\r\n", R::Filter},
      {S::Filter, "550 5.7.1 Message rejected\r\n", R::Filter},
      {S::None, "452 4.5.3 Error: too many recipients\r\n", R::Other4xx},
      {S::None, "421 4.7.0 Too many connections\r\n", R::Other4xx},
      {S::None, "554 5.5.1 Error: no valid recipients\r\n", R::Other5xx},
      {S::None, "", R::Other5xx},
  };
  for (const auto& c : cases) EXPECT_EQ(reject_reason(c.why, c.reply), c.expected) << c.reply;
}

}  // namespace
}  // namespace estafette::esmtpd
