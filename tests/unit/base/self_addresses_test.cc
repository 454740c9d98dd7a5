// lib/base/self_addresses: which next hops are our own esmtpd listeners (mail loops).
#include "lib/base/self_addresses.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace estafette::base {
namespace {

TEST(BaseSelfAddresses, CanonicalIp) {
  EXPECT_EQ(canonical_ip("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(canonical_ip("::ffff:127.0.0.2"), "127.0.0.2");
  EXPECT_EQ(canonical_ip("0:0::1"), "::1");
  EXPECT_EQ(canonical_ip("2001:DB8::1"), "2001:db8::1");
  EXPECT_EQ(canonical_ip("mx.example"), std::nullopt);
  EXPECT_EQ(canonical_ip(""), std::nullopt);
}

TEST(BaseSelfAddresses, ExactListenersOnTheirPortOnly) {
  SelfAddresses self({{"127.0.0.1", 2525}, {"::1", 25}}, {"192.0.2.10"});
  EXPECT_TRUE(self.contains("127.0.0.1", 2525));
  EXPECT_TRUE(self.contains("::ffff:127.0.0.1", 2525));
  EXPECT_TRUE(self.contains("::1", 25));
  EXPECT_FALSE(self.contains("127.0.0.1", 25));     // another port: a route elsewhere
  EXPECT_FALSE(self.contains("127.0.0.2", 2525));   // another host of the loopback block
  EXPECT_FALSE(self.contains("192.0.2.10", 2525));  // an interface, but no wildcard listener
  EXPECT_FALSE(self.contains("not-an-ip", 2525));
}

TEST(BaseSelfAddresses, WildcardsMeanEveryLocalAddress) {
  for (const char* any : {"0.0.0.0", "::", ""}) {
    SelfAddresses self({{any, 25}}, {"192.0.2.10", "2001:db8::10", "bogus"});
    EXPECT_TRUE(self.contains("127.0.0.1", 25)) << any;
    EXPECT_TRUE(self.contains("127.3.2.1", 25)) << any;
    EXPECT_TRUE(self.contains("::1", 25)) << any;
    EXPECT_TRUE(self.contains("192.0.2.10", 25)) << any;
    EXPECT_TRUE(self.contains("::ffff:192.0.2.10", 25)) << any;
    EXPECT_TRUE(self.contains("2001:db8::10", 25)) << any;
    EXPECT_TRUE(self.contains("0.0.0.0", 25)) << any;
    EXPECT_FALSE(self.contains("192.0.2.11", 25)) << any;
    EXPECT_FALSE(self.contains("127.0.0.1", 26)) << any;
  }
  EXPECT_TRUE(SelfAddresses().empty());
}

TEST(BaseSelfAddresses, LoadReadsTheInterfacesAndResolvesNames) {
  auto interfaces = interface_addresses();
  EXPECT_NE(std::find(interfaces.begin(), interfaces.end(), "127.0.0.1"), interfaces.end());
  auto self = load_self_addresses({{"localhost", 2525}, {"0.0.0.0", 25}});
  EXPECT_TRUE(self.contains("127.0.0.1", 2525));
  for (const auto& ip : interfaces) EXPECT_TRUE(self.contains(ip, 25)) << ip;
  EXPECT_FALSE(self.contains("127.0.0.1", 2526));
}

}  // namespace
}  // namespace estafette::base
