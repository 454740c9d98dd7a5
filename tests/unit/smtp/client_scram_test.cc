// The client session's AUTH SCRAM-SHA-256 (RFC 5802/7677 over RFC 4954): RFC 7677's exchange
// as SMTP replies; a server whose final signature is wrong is not believed (the exchange is
// cancelled, nothing falls back to PLAIN); a 535 to the proof falls back to PLAIN once (an
// account with a crypt hash); 235 without the server's signature is refused.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "lib/auth/base64.h"
#include "lib/smtp/client_session.h"
#include "tests/unit/auth/rfc7677.h"

namespace estafette::smtp {
namespace {

using namespace auth::rfc7677;

std::string sent(const Actions& actions) {
  std::string out;
  for (const auto& a : actions) {
    if (auto* s = std::get_if<SendBytes>(&a)) out += s->bytes;
    if (auto* d = std::get_if<TransactionDone>(&a)) out += "DONE " + d->summary + "\n";
  }
  return out;
}

Actions feed(ClientSession& s, const std::string& replies) {
  ReplyParser parser;
  parser.feed(replies);
  Actions out;
  while (auto r = parser.next()) {
    auto more = s.on_reply(*r);
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

// A session through EHLO with SCRAM-SHA-256 and PLAIN offered: AUTH SCRAM-SHA-256 is sent.
std::unique_ptr<ClientSession> scram_session() {
  ClientSecurity security;
  security.credentials = ClientCredentials{"user", "pencil"};
  security.auth_without_tls = true;
  security.scram_nonce = "rOprNGfwEbeRWgbNEkqO";
  auto s = std::make_unique<ClientSession>("client.test", ClientTimeouts{}, security);
  s->start({"s@a.test", {"x@b.test"}, 10});
  s->on_connected();
  feed(*s, "220 mx\r\n");
  EXPECT_EQ(sent(feed(*s, "250-mx\r\n250 AUTH PLAIN SCRAM-SHA-256\r\n")),
            "AUTH SCRAM-SHA-256 " + auth::base64_encode(kClientFirst) + "\r\n");
  EXPECT_EQ(sent(feed(*s, "334 " + auth::base64_encode(kServerFirst) + "\r\n")),
            auth::base64_encode(kClientFinal) + "\r\n");
  return s;
}

TEST(ClientScram, Rfc7677ExchangeThenMail) {
  auto session = scram_session();
  ClientSession& s = *session;
  EXPECT_EQ(sent(feed(s, "334 " + auth::base64_encode(kServerFinal) + "\r\n")), "\r\n");
  EXPECT_EQ(sent(feed(s, "235 2.7.0 ok\r\n")), "MAIL FROM:<s@a.test>\r\n");
  EXPECT_TRUE(s.authenticated());
}

TEST(ClientScram, WrongServerSignatureCancelsWithoutFallback) {
  auto session = scram_session();
  ClientSession& s = *session;
  EXPECT_EQ(
      sent(feed(s, "334 " + auth::base64_encode("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=") +
                       "\r\n")),
      "*\r\n");
  std::string out = sent(feed(s, "501 5.7.0 cancelled\r\n"));
  EXPECT_NE(out.find("SCRAM server signature is wrong"), std::string::npos) << out;
  EXPECT_EQ(out.find("AUTH PLAIN"), std::string::npos) << out;
  EXPECT_FALSE(s.authenticated());
}

TEST(ClientScram, RefusedProofFallsBackToPlainOnce) {
  auto session = scram_session();
  ClientSession& s = *session;
  EXPECT_EQ(sent(feed(s, "535 5.7.8 no\r\n")),
            "AUTH PLAIN " + auth::base64_encode(std::string("\0user\0pencil", 12)) + "\r\n");
  std::string out = sent(feed(s, "535 5.7.8 still no\r\n"));
  EXPECT_NE(out.find("DONE authentication failed: 535"), std::string::npos) << out;
}

TEST(ClientScram, SuccessWithoutServerSignatureIsRefused) {
  auto session = scram_session();
  ClientSession& s = *session;
  std::string out = sent(feed(s, "235 2.7.0 trust me\r\n"));
  EXPECT_NE(out.find("without the SCRAM server signature"), std::string::npos) << out;
  EXPECT_FALSE(s.authenticated());
}

}  // namespace
}  // namespace estafette::smtp
