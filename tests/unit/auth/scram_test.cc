// auth::ScramServer and the SCRAM-SHA-256 secret: RFC 7677's test vector end to end, a client
// written here (RFC 5802's formulas with OpenSSL) against the server for good and bad proofs,
// Dovecot's stored form (a line doveadm printed), and a table of malformed messages.
#include "lib/auth/scram.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>
#include <vector>

#include "lib/auth/base64.h"
#include "tests/unit/auth/rfc7677.h"

namespace estafette::auth {
namespace {

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[32];
  std::size_t size = 0;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, sizeof out,
            &size);
  return std::string(reinterpret_cast<char*>(out), size);
}

// A client's proof for the AuthMessage, from the password (RFC 5802 section 3).
std::string client_proof(std::string_view password, const ScramSecret& params,
                         std::string_view auth_message) {
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(params.salt.data()),
                    static_cast<int>(params.salt.size()), static_cast<int>(params.iterations),
                    EVP_sha256(), 32, salted);
  std::string client_key =
      hmac(std::string_view(reinterpret_cast<char*>(salted), 32), "Client Key");
  unsigned char stored[32];
  unsigned int n = 0;
  EVP_Digest(client_key.data(), client_key.size(), stored, &n, EVP_sha256(), nullptr);
  std::string signature = hmac(std::string_view(reinterpret_cast<char*>(stored), 32), auth_message);
  for (std::size_t i = 0; i < 32; ++i) client_key[i] ^= signature[i];
  return client_key;
}

using namespace rfc7677;  // the example exchange

ScramSecret pencil() {
  return pencil_secret();
}

TEST(Scram, Rfc7677TestVector) {
  ScramServer server;
  std::string reason;
  ASSERT_TRUE(server.client_first(kClientFirst, &reason)) << reason;
  EXPECT_EQ(server.username(), "user");
  EXPECT_EQ(server.server_first(pencil(), true, kServerNonce), kServerFirst);
  EXPECT_EQ(server.client_final(kClientFinal, &reason), ScramServer::Verdict::Accepted) << reason;
  EXPECT_EQ(server.server_final(), kServerFinal);
}

TEST(Scram, TheRightProofOfAnUnknownUserIsStillRefused) {
  ScramServer server;
  ASSERT_TRUE(server.client_first(kClientFirst, nullptr));
  server.server_first(pencil(), /*known=*/false, kServerNonce);
  EXPECT_EQ(server.client_final(kClientFinal, nullptr), ScramServer::Verdict::Refused);
  EXPECT_EQ(server.server_final(), "");
}

TEST(Scram, WrongProofIsRefused) {
  for (std::string_view password : {"pencil2", "Pencil", ""}) {
    ScramServer server;
    ASSERT_TRUE(server.client_first(kClientFirst, nullptr));
    server.server_first(pencil(), true, kServerNonce);
    std::string without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO" + std::string(kServerNonce);
    std::string auth_message =
        "n=user,r=rOprNGfwEbeRWgbNEkqO," + std::string(kServerFirst) + "," + without_proof;
    std::string proof = client_proof(password, pencil(), auth_message);
    EXPECT_EQ(server.client_final(without_proof + ",p=" + base64_encode(proof), nullptr),
              ScramServer::Verdict::Refused)
        << password;
  }
}

// The client written here gets the right answer with the right password, which checks it (and
// so the wrong-password test above tests the password, not the client).
TEST(Scram, ClientHereMatchesTheRfcProof) {
  std::string auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO," + std::string(kServerFirst) +
                             ",c=biws,r=rOprNGfwEbeRWgbNEkqO" + std::string(kServerNonce);
  EXPECT_EQ(base64_encode(client_proof("pencil", pencil(), auth_message)),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
}

TEST(Scram, AuthzidOtherThanTheUserIsRefusedItsOwnIsAccepted) {
  struct Case {
    std::string header;
    ScramServer::Verdict want;
  };
  for (const Case& c : {Case{"n,a=user,", ScramServer::Verdict::Accepted},
                        Case{"y,,", ScramServer::Verdict::Accepted},
                        Case{"n,a=root,", ScramServer::Verdict::Refused}}) {
    ScramServer server;
    std::string bare = "n=user,r=abc";
    ASSERT_TRUE(server.client_first(c.header + bare, nullptr)) << c.header;
    std::string first = server.server_first(pencil(), true, "xyz");
    std::string without_proof = "c=" + base64_encode(c.header) + ",r=abcxyz";
    std::string proof = client_proof("pencil", pencil(), bare + "," + first + "," + without_proof);
    EXPECT_EQ(server.client_final(without_proof + ",p=" + base64_encode(proof), nullptr), c.want)
        << c.header;
  }
}

TEST(Scram, SaslnameEscapesAndExtensions) {
  ScramServer server;
  std::string reason;
  ASSERT_TRUE(server.client_first("n,,n=a=2Cb=3Dc,r=n0nce,x=ext", &reason)) << reason;
  EXPECT_EQ(server.username(), "a,b=c");
}

// Dovecot's form: a line `doveadm pw -s SCRAM-SHA-256 -p pencil` printed.
TEST(Scram, DovecotSecretParsesAndVerifiesThePassword) {
  constexpr std::string_view kDoveadm =
      "4096,QW7KavEx8BfYhBmI9aerLA==,Blp1CJC+nY9hLV7Ly785bfDzlQyw+GxUULydK6tY2gE=,"
      "syfkt2vS8YTjbFsDyibdvVN2vHP0N1EFVCu6gBpLMSg=";
  std::string error;
  auto secret = parse_scram_secret(kDoveadm, &error);
  ASSERT_TRUE(secret) << error;
  EXPECT_EQ(secret->iterations, 4096u);
  EXPECT_EQ(secret->salt.size(), 16u);
  EXPECT_TRUE(verify_scram_password("pencil", *secret));
  EXPECT_FALSE(verify_scram_password("pencil ", *secret));
  EXPECT_EQ(format_scram_secret(*secret), "{SCRAM-SHA-256}" + std::string(kDoveadm));
  EXPECT_EQ(*secret, derive_scram_secret("pencil", secret->salt, 4096));
}

TEST(Scram, HashScramPasswordRoundTrips) {
  std::string field = hash_scram_password("hunter2");
  ASSERT_TRUE(field.starts_with("{SCRAM-SHA-256}4096,"));
  auto secret = parse_scram_secret(field.substr(kScramScheme.size()), nullptr);
  ASSERT_TRUE(secret);
  EXPECT_TRUE(verify_scram_password("hunter2", *secret));
  EXPECT_NE(hash_scram_password("hunter2"), field);  // a new salt each time
}

TEST(Scram, FakeSecretIsStablePerNameAndKey) {
  auto a = fake_scram_secret("key1", "nobody", 4096);
  EXPECT_EQ(a, fake_scram_secret("key1", "nobody", 4096));
  EXPECT_NE(a.salt, fake_scram_secret("key1", "nobody2", 4096).salt);
  EXPECT_NE(a.salt, fake_scram_secret("key2", "nobody", 4096).salt);
  EXPECT_EQ(a.salt.size(), kScramSaltSize);
  EXPECT_EQ(a.iterations, 4096u);
}

TEST(Scram, ServerNonceIs24PrintableCharacters) {
  std::string a = scram_server_nonce();
  EXPECT_EQ(a.size(), 24u);  // 18 bytes
  EXPECT_EQ(a.find(','), std::string::npos);
  EXPECT_NE(a, scram_server_nonce());
}

struct BadSecret {
  const char* name;
  std::string text;
  std::string reason_has;
};

class ScramBadSecret : public ::testing::TestWithParam<BadSecret> {};

TEST_P(ScramBadSecret, IsRefusedWithoutEchoingIt) {
  std::string error;
  EXPECT_FALSE(parse_scram_secret(GetParam().text, &error));
  EXPECT_NE(error.find(GetParam().reason_has), std::string::npos) << error;
  EXPECT_EQ(error.find("QW7K"), std::string::npos);
}

const std::string kSalt = "QW7KavEx8BfYhBmI9aerLA==";
const std::string kKeys =
    "Blp1CJC+nY9hLV7Ly785bfDzlQyw+GxUULydK6tY2gE=,"
    "syfkt2vS8YTjbFsDyibdvVN2vHP0N1EFVCu6gBpLMSg=";

INSTANTIATE_TEST_SUITE_P(
    Table, ScramBadSecret,
    ::testing::Values(
        BadSecret{"below4096", "4095," + kSalt + "," + kKeys, "below 4096"},
        BadSecret{"zero", "0," + kSalt + "," + kKeys, "below 4096"},
        BadSecret{"huge", "1000001," + kSalt + "," + kKeys, "above"},
        BadSecret{"overflow", "99999999999," + kSalt + "," + kKeys, "too high"},
        BadSecret{"notnumber", "4k," + kSalt + "," + kKeys, "not a number"},
        BadSecret{"negative", "-4096," + kSalt + "," + kKeys, "not a number"},
        BadSecret{"threefields", "4096," + kSalt + ",QW7KavEx8BfYhBmI9aerLA==", "not ITERATIONS"},
        BadSecret{"fivefields", "4096," + kSalt + "," + kKeys + ",x", "not ITERATIONS"},
        BadSecret{"emptysalt", "4096,," + kKeys, "salt"},
        BadSecret{"saltnotb64", "4096,QW7K!vEx," + kKeys, "salt"},
        BadSecret{"shortkey", "4096," + kSalt + "," + kSalt + "," + kSalt, "keys"}),
    [](const auto& info) { return std::string(info.param.name); });

// Malformed client messages: client-first alone, or client-final after the RFC's first steps.
struct BadMessage {
  const char* name;
  std::string client_first;
  std::string client_final;  // "" = the case is in client_first
};

class ScramMalformed : public ::testing::TestWithParam<BadMessage> {};

TEST_P(ScramMalformed, IsMalformed) {
  const BadMessage& c = GetParam();
  ScramServer server;
  std::string reason;
  bool first_ok = server.client_first(c.client_first, &reason);
  if (c.client_final.empty()) {
    EXPECT_FALSE(first_ok);
    EXPECT_FALSE(reason.empty());
    return;
  }
  ASSERT_TRUE(first_ok) << reason;
  server.server_first(pencil(), true, kServerNonce);
  EXPECT_EQ(server.client_final(c.client_final, &reason), ScramServer::Verdict::Malformed);
  EXPECT_FALSE(reason.empty());
  EXPECT_EQ(server.server_final(), "");
}

const std::string kGood = std::string(kClientFirst);
const std::string kNonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const std::string kProof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

INSTANTIATE_TEST_SUITE_P(
    Table, ScramMalformed,
    ::testing::Values(
        BadMessage{"empty", "", ""}, BadMessage{"no_header", "n=user,r=abc", ""},
        BadMessage{"channel_binding_p", "p=tls-unique,,n=user,r=abc", ""},
        BadMessage{"flag_x", "x,,n=user,r=abc", ""}, BadMessage{"one_comma", "n,n=user,r=abc", ""},
        BadMessage{"authzid_not_a", "n,b=user,n=user,r=abc", ""},
        BadMessage{"authzid_empty", "n,a=,n=user,r=abc", ""},
        BadMessage{"authzid_bad_escape", "n,a=us=2Xer,n=user,r=abc", ""},
        BadMessage{"mandatory_ext", "n,,m=ext,n=user,r=abc", ""},
        BadMessage{"no_user", "n,,r=abc", ""}, BadMessage{"empty_user", "n,,n=,r=abc", ""},
        BadMessage{"user_bad_escape", "n,,n=a=2c,r=abc", ""},
        BadMessage{"user_lone_equals", "n,,n=a=,r=abc", ""},
        BadMessage{"user_control", "n,,n=a\x01,r=abc", ""},
        BadMessage{"user_nul", std::string("n,,n=a\0b,r=abc", 14), ""},
        BadMessage{"user_256", "n,,n=" + std::string(256, 'u') + ",r=abc", ""},
        BadMessage{"no_nonce", "n,,n=user", ""}, BadMessage{"empty_nonce", "n,,n=user,r=", ""},
        BadMessage{"nonce_space", "n,,n=user,r=a b", ""},
        BadMessage{"nonce_del", "n,,n=user,r=a\x7f", ""},
        BadMessage{"nonce_257", "n,,n=user,r=" + std::string(257, 'n'), ""},
        BadMessage{"trailing_comma", "n,,n=user,r=abc,", ""},
        BadMessage{"bad_extension", "n,,n=user,r=abc,1=x", ""},
        BadMessage{"too_long", "n,,n=user,r=abc,x=" + std::string(2100, 'x'), ""},
        BadMessage{"final_no_proof", kGood, "c=biws," + kNonce},
        BadMessage{"final_no_c", kGood, kNonce + "," + kProof},
        BadMessage{"final_c_not_header", kGood, "c=eSws," + kNonce + "," + kProof},
        BadMessage{"final_c_not_b64", kGood, "c=biws!," + kNonce + "," + kProof},
        BadMessage{"final_nonce_client_only", kGood, "c=biws,r=rOprNGfwEbeRWgbNEkqO," + kProof},
        BadMessage{"final_nonce_other", kGood, "c=biws," + kNonce + "x," + kProof},
        BadMessage{"final_no_r", kGood, "c=biws," + kProof},
        BadMessage{"final_proof_short", kGood, "c=biws," + kNonce + ",p=dHzbZapW"},
        BadMessage{"final_proof_not_b64", kGood, "c=biws," + kNonce + ",p=****"},
        BadMessage{"final_empty_ext", kGood, "c=biws," + kNonce + ",," + kProof},
        BadMessage{"final_bad_ext", kGood, "c=biws," + kNonce + ",7=x," + kProof},
        BadMessage{"final_too_long", kGood,
                   "c=biws," + kNonce + ",x=" + std::string(2100, 'x') + "," + kProof}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Scram, StepsOutOfTurnAreMalformed) {
  ScramServer server;
  EXPECT_EQ(server.client_final(kClientFinal, nullptr), ScramServer::Verdict::Malformed);
  ScramServer twice;
  ASSERT_TRUE(twice.client_first(kClientFirst, nullptr));
  EXPECT_FALSE(twice.client_first(kClientFirst, nullptr));
  ScramServer done;
  ASSERT_TRUE(done.client_first(kClientFirst, nullptr));
  done.server_first(pencil(), true, kServerNonce);
  EXPECT_EQ(done.client_final(kClientFinal, nullptr), ScramServer::Verdict::Accepted);
  EXPECT_EQ(done.client_final(kClientFinal, nullptr), ScramServer::Verdict::Malformed);
}

// The client side (esmtpclient's AUTH to a smarthost): RFC 7677's exchange from the client's end.
TEST(ScramClient, Rfc7677TestVector) {
  ScramClient client("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(client.client_first(), kClientFirst);
  std::string reason;
  auto final = client.server_first(kServerFirst, &reason);
  ASSERT_TRUE(final) << reason;
  EXPECT_EQ(*final, kClientFinal);
  EXPECT_TRUE(client.server_final(kServerFinal, &reason)) << reason;
}

TEST(ScramClient, AgainstTheServerWithAnEscapedName) {
  const ScramSecret secret = derive_scram_secret("s3cret", "0123456789abcdef", 4096);
  for (std::string_view password : {"s3cret", "wrong"}) {
    ScramClient client("a,b=c", std::string(password), scram_server_nonce());
    ScramServer server;
    std::string reason;
    ASSERT_TRUE(server.client_first(client.client_first(), &reason)) << reason;
    EXPECT_EQ(server.username(), "a,b=c");
    auto final =
        client.server_first(server.server_first(secret, true, scram_server_nonce()), &reason);
    ASSERT_TRUE(final) << reason;
    const bool right = password == "s3cret";
    EXPECT_EQ(server.client_final(*final, &reason),
              right ? ScramServer::Verdict::Accepted : ScramServer::Verdict::Refused);
    if (right) {
      EXPECT_TRUE(client.server_final(server.server_final(), &reason)) << reason;
    }
  }
}

TEST(ScramClient, HostileServerFirstIsRefused) {
  const std::string ours = "rOprNGfwEbeRWgbNEkqO";
  const std::string salt = ",s=W22ZaJ0SNY7soEsUEjb6gQ==";
  for (const std::string& message : {
           "r=someoneelse" + salt + ",i=4096",      // not our nonce
           "r=" + ours + salt + ",i=4096",          // ours, not extended
           "r=" + ours + "x" + salt + ",i=4095",    // too few rounds
           "r=" + ours + "x" + salt + ",i=100001",  // too many: would stall the loop
           "r=" + ours + "x" + salt + ",i=99999999999",
           "r=" + ours + "x" + salt + ",i=",
           "r=" + ours + "x,s=!!!,i=4096",
           "r=" + ours + "x,s=,i=4096",
           "m=ext,r=" + ours + "x" + salt + ",i=4096",
           "r=" + ours + "x" + salt,
           std::string(5000, 'r'),
       }) {
    ScramClient client("user", "pencil", ours);
    client.client_first();
    std::string reason;
    EXPECT_FALSE(client.server_first(message, &reason)) << message;
    EXPECT_FALSE(reason.empty()) << message;
    EXPECT_FALSE(client.server_final(kServerFinal, &reason)) << message;
  }
}

TEST(ScramClient, ServerFinalMustProveTheServer) {
  for (std::string_view final : {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=", "v=", "v=!!",
                                 "e=invalid-proof", "x=1", ""}) {
    ScramClient client("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    client.client_first();
    ASSERT_TRUE(client.server_first(kServerFirst, nullptr));
    std::string reason;
    EXPECT_FALSE(client.server_final(final, &reason)) << final;
    EXPECT_FALSE(reason.empty());
  }
}

}  // namespace
}  // namespace estafette::auth
