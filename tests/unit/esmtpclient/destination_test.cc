// esmtpclient::parse_destination: courierd's destination keys, LMTP transports included.
#include <gtest/gtest.h>

#include "esmtpclient/esmtp_client.h"

namespace estafette::esmtpclient {
namespace {

TEST(EsmtpclientDestination, LmtpTransports) {
  auto unix = parse_destination("lmtp:unix:/run/dovecot/lmtp", 25);
  ASSERT_TRUE(unix);
  EXPECT_TRUE(unix->lmtp);
  EXPECT_TRUE(unix->route);  // never an MX lookup, never MTA-STS
  EXPECT_EQ(unix->unix_path, "/run/dovecot/lmtp");

  auto inet = parse_destination("lmtp:inet:[::1]:24", 25);
  ASSERT_TRUE(inet);
  EXPECT_TRUE(inet->lmtp);
  EXPECT_TRUE(inet->route);
  EXPECT_EQ(inet->unix_path, "");
  EXPECT_EQ(inet->host, "::1");
  EXPECT_EQ(inet->port, 24);

  EXPECT_FALSE(parse_destination("lmtp:unix:relative", 25));
  EXPECT_FALSE(parse_destination("lmtp:inet:host", 25));
  EXPECT_FALSE(parse_destination("lmtp:maildir", 25));
  EXPECT_FALSE(parse_destination("lmtp:unix:/" + std::string(200, 'a'), 25));

  // SMTP destinations are what they were.
  auto route = parse_destination("relay.test:2525", 25);
  ASSERT_TRUE(route);
  EXPECT_FALSE(route->lmtp);
  EXPECT_EQ(route->host, "relay.test");
  EXPECT_EQ(route->port, 2525);
}

}  // namespace
}  // namespace estafette::esmtpclient
