// lib/auth/sasl: the server side of AUTH PLAIN and LOGIN (RFC 4954, RFC 4616) as a state
// machine: initial responses, challenges, cancel, malformed base64 and field limits.
#include "lib/auth/sasl.h"

#include <gtest/gtest.h>

#include "lib/auth/base64.h"

namespace estafette::auth {
namespace {

using Kind = SaslStep::Kind;

std::string b64(std::string_view s) {
  return base64_encode(s);
}

TEST(Sasl, MechanismNames) {
  EXPECT_EQ(mechanism_named("PLAIN"), Mechanism::Plain);
  EXPECT_EQ(mechanism_named("plain"), Mechanism::Plain);
  EXPECT_EQ(mechanism_named("LoGiN"), Mechanism::Login);
  EXPECT_FALSE(mechanism_named("CRAM-MD5"));
  EXPECT_FALSE(mechanism_named("PLAINX"));
  EXPECT_FALSE(mechanism_named(""));
  EXPECT_EQ(mechanism_name(Mechanism::Login), "LOGIN");
}

TEST(Sasl, PlainWithInitialResponse) {
  SaslExchange x(Mechanism::Plain);
  auto step = x.start(b64(std::string("\0alice\0secret", 13)));
  ASSERT_EQ(step.kind, Kind::Credentials);
  EXPECT_EQ(step.credentials.authzid, "");
  EXPECT_EQ(step.credentials.username, "alice");
  EXPECT_EQ(step.credentials.password, "secret");
}

TEST(Sasl, PlainWithAuthzidAfterAnEmptyChallenge) {
  SaslExchange x(Mechanism::Plain);
  auto step = x.start(std::nullopt);
  ASSERT_EQ(step.kind, Kind::Challenge);
  EXPECT_EQ(step.challenge, "");  // "334 " then the client's response
  step = x.respond(b64(std::string("boss\0alice\0pw", 13)));
  ASSERT_EQ(step.kind, Kind::Credentials);
  EXPECT_EQ(step.credentials.authzid, "boss");
  EXPECT_EQ(step.credentials.username, "alice");
  EXPECT_EQ(step.credentials.password, "pw");
}

TEST(Sasl, LoginAsksUsernameThenPassword) {
  SaslExchange x(Mechanism::Login);
  auto step = x.start(std::nullopt);
  ASSERT_EQ(step.kind, Kind::Challenge);
  EXPECT_EQ(*base64_decode(step.challenge), "Username:");
  step = x.respond(b64("alice"));
  ASSERT_EQ(step.kind, Kind::Challenge);
  EXPECT_EQ(*base64_decode(step.challenge), "Password:");
  step = x.respond(b64("secret"));
  ASSERT_EQ(step.kind, Kind::Credentials);
  EXPECT_EQ(step.credentials.username, "alice");
  EXPECT_EQ(step.credentials.password, "secret");
}

TEST(Sasl, LoginWithTheUsernameAsInitialResponse) {
  SaslExchange x(Mechanism::Login);
  auto step = x.start(b64("alice"));
  ASSERT_EQ(step.kind, Kind::Challenge);
  EXPECT_EQ(*base64_decode(step.challenge), "Password:");
  step = x.respond(b64("pw"));
  ASSERT_EQ(step.kind, Kind::Credentials);
  EXPECT_EQ(step.credentials.username, "alice");
}

TEST(Sasl, StarCancelsAtAnyChallenge) {
  SaslExchange plain(Mechanism::Plain);
  plain.start(std::nullopt);
  EXPECT_EQ(plain.respond("*").kind, Kind::Cancelled);
  SaslExchange login(Mechanism::Login);
  login.start(std::nullopt);
  login.respond(b64("alice"));
  EXPECT_EQ(login.respond("*").kind, Kind::Cancelled);
}

struct BadCase {
  const char* what;
  Mechanism mechanism;
  std::optional<std::string> initial;
  std::vector<std::string> responses;  // the last one's step must be Malformed
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.what;
}

class SaslMalformed : public ::testing::TestWithParam<BadCase> {};

TEST_P(SaslMalformed, IsRefused) {
  const auto& c = GetParam();
  SaslExchange x(c.mechanism);
  SaslStep step = x.start(c.initial ? std::optional<std::string_view>(*c.initial) : std::nullopt);
  for (const auto& r : c.responses) {
    ASSERT_EQ(step.kind, Kind::Challenge) << c.what;
    step = x.respond(r);
  }
  EXPECT_EQ(step.kind, Kind::Malformed) << c.what;
  EXPECT_FALSE(step.reason.empty());
  EXPECT_EQ(step.reason.find("secret"), std::string::npos);  // never the secret
}

const std::string k256(256, 'u');

INSTANTIATE_TEST_SUITE_P(
    Table, SaslMalformed,
    ::testing::Values(
        BadCase{"initial response not base64", Mechanism::Plain, "not base64!", {}},
        BadCase{"initial '=' is empty: no NUL", Mechanism::Plain, "=", {}},
        BadCase{"response with a space", Mechanism::Plain, std::nullopt, {"AGFsaWNl AHB3"}},
        BadCase{"PLAIN without NUL", Mechanism::Plain, b64("alicesecret"), {}},
        BadCase{"PLAIN with one NUL", Mechanism::Plain, b64(std::string("alice\0secret", 12)), {}},
        BadCase{"PLAIN empty user", Mechanism::Plain, b64(std::string("\0\0secret", 8)), {}},
        BadCase{"PLAIN empty password", Mechanism::Plain, b64(std::string("\0alice\0", 7)), {}},
        BadCase{
            "PLAIN a third NUL", Mechanism::Plain, b64(std::string("\0alice\0sec\0ret", 14)), {}},
        BadCase{
            "PLAIN user over 255", Mechanism::Plain, b64("\0" + k256 + std::string("\0p", 2)), {}},
        BadCase{"LOGIN empty username", Mechanism::Login, "=", {}},
        BadCase{"LOGIN username over 255", Mechanism::Login, std::nullopt, {b64(k256)}},
        BadCase{
            "LOGIN password not base64", Mechanism::Login, std::nullopt, {b64("alice"), "secret"}},
        BadCase{"LOGIN empty password", Mechanism::Login, std::nullopt, {b64("alice"), ""}}));

}  // namespace
}  // namespace estafette::auth
