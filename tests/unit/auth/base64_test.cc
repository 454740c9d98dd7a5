// lib/auth/base64: RFC 4648 test vectors, and the strict decoder's refusals (what a client must
// not send in SMTP AUTH gets 501, not a guess).
#include "lib/auth/base64.h"

#include <gtest/gtest.h>

namespace estafette::auth {
namespace {

struct Vector {
  std::string plain, encoded;
};

class Base64Vectors : public ::testing::TestWithParam<Vector> {};

TEST_P(Base64Vectors, EncodesAndDecodes) {
  EXPECT_EQ(base64_encode(GetParam().plain), GetParam().encoded);
  auto decoded = base64_decode(GetParam().encoded);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, GetParam().plain);
}

// RFC 4648 section 10, plus NUL bytes (SASL PLAIN carries them) and high bytes.
INSTANTIATE_TEST_SUITE_P(Rfc4648, Base64Vectors,
                         ::testing::Values(Vector{"", ""}, Vector{"f", "Zg=="},
                                           Vector{"fo", "Zm8="}, Vector{"foo", "Zm9v"},
                                           Vector{"foob", "Zm9vYg=="}, Vector{"fooba", "Zm9vYmE="},
                                           Vector{"foobar", "Zm9vYmFy"},
                                           Vector{std::string("\0u\0p", 4), "AHUAcA=="},
                                           Vector{"\xff\xfe\xfd", "//79"}));

class Base64Refused : public ::testing::TestWithParam<std::string> {};

TEST_P(Base64Refused, IsNotDecoded) {
  EXPECT_FALSE(base64_decode(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Strict, Base64Refused,
                         ::testing::Values("Zg", "Zg=", "Zm9vY", "Zm9v YmFy", "Zm9v\r\nYmFy",
                                           " Zm9v", "Zm9v ", "Zg=a",
                                           "=Zg=", "Z===", "====", "Zm9=v", "Zm9vYmF!", "Zm9vYmF-",
                                           "Zm9vYmF_", "Zh==",  // non-zero bits after the data
                                           "Zm9=", "*", "=", std::string("Zm\0v", 4),
                                           "Zm9vYg==Zm9v"));

}  // namespace
}  // namespace estafette::auth
