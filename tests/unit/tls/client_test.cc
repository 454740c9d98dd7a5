// lib/tls's client side against lib/tls's server over real sockets (a socketpair, both ends
// non-blocking, driven by poll()): handshake, resumption by destination key, verification of
// the server's certificate with a CA made here (right name, wrong name, expired, untrusted),
// the session cache's bound, a TLS 1.0-only server refused by the default client, and DANE
// (TLSA records made from the test's certificates: DANE-EE, DANE-TA, resumption).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/fd.h"
#include "lib/dns/tlsa.h"
#include "lib/tls/context.h"
#include "lib/tls/stream.h"
#include "tests/unit/queue/queue_test_util.h"  // TempDir

namespace estafette::tls {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

// A certificate for `name` (CN and SAN), signed by `issuer` (itself when null), valid from
// now + `from` to now + `to` seconds.
struct Made {
  Key key;
  Cert cert;
};

Made make_cert(const std::string& name, const Made* issuer, bool ca, long from = -3600,
               long to = 86400) {
  Made m;
  m.key.reset(EVP_EC_gen("P-256"));
  m.cert.reset(X509_new());
  X509* x = m.cert.get();
  X509_set_version(x, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), from);
  X509_gmtime_adj(X509_getm_notAfter(x), to);
  X509_set_pubkey(x, m.key.get());
  X509_NAME* subject = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert.get()) : subject);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer->cert.get() : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  };
  if (ca) {
    add(NID_basic_constraints, "critical,CA:TRUE");
    add(NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add(NID_basic_constraints, "CA:FALSE");
    add(NID_subject_alt_name, "DNS:" + name);
  }
  X509_sign(x, issuer ? issuer->key.get() : m.key.get(), EVP_sha256());
  return m;
}

void write_pem(const std::string& path, const Made& m) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_X509(f, m.cert.get());
  PEM_write_PrivateKey(f, m.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

class TlsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = make_cert("Test CA", nullptr, true);
    write_pem(tmp_.sub("ca.pem"), ca_);
    write_pem(tmp_.sub("mx.pem"), make_cert("mx.test", &ca_, false));
    write_pem(tmp_.sub("expired.pem"), make_cert("mx.test", &ca_, false, -86400, -3600));
    write_pem(tmp_.sub("self.pem"), make_cert("mx.test", nullptr, false));
  }

  std::shared_ptr<const ServerContext> server(const std::string& pem,
                                              const std::string& protocol = "") {
    ServerSettings s;
    s.certificates.push_back({tmp_.sub(pem), tmp_.sub(pem)});
    if (!protocol.empty()) {
      s.min_protocol = s.max_protocol = protocol;
      s.ciphers = "DEFAULT:@SECLEVEL=0";  // OpenSSL 3 allows TLS 1.0 only at level 0
    }
    return ServerContext::load(s);
  }

  ClientSettings trusting_ca() {
    ClientSettings s;
    s.ca_file = tmp_.sub("ca.pem");
    return s;
  }

  std::shared_ptr<ClientContext> caching(std::size_t sessions, const char* max = "TLSv1.3") {
    ClientSettings s = trusting_ca();
    s.session_cache_size = sessions;
    s.max_protocol = max;
    return ClientContext::load(s);
  }

  // One connection: handshake both ends, the server says a line (a TLS 1.3 ticket comes with
  // it), the client reads it, both close. Returns the client's SessionInfo; `failed` gets the
  // client's reason when its handshake failed.
  SessionInfo connect(std::shared_ptr<const ServerContext> server_context,
                      std::shared_ptr<ClientContext> client_context, ClientOptions options,
                      std::string* failed = nullptr, bool close_notify = true) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    base::UniqueFd server_fd(fds[0]), client_fd(fds[1]);
    Stream server_stream(std::move(server_context), server_fd.get());
    Stream client(std::move(client_context), client_fd.get(), std::move(options));
    bool server_done = false, client_done = false;
    for (int round = 0; round < 500 && !(server_done && client_done); ++round) {
      if (!server_done) {
        auto s = server_stream.handshake();
        if (s == Stream::Status::Failed) {
          server_done = true;  // the client's side says why
        } else if (s == Stream::Status::Ok) {
          server_done = true;
          EXPECT_EQ(server_stream.write("220 hi\r\n", 8).status, Stream::Status::Ok);
        }
      }
      if (!client_done) {
        auto s = client.handshake();
        if (s == Stream::Status::Failed) {
          if (failed) *failed = client.reason();
          return {};
        }
        client_done = s == Stream::Status::Ok;
      }
      pollfd p[2] = {{server_fd.get(), POLLIN, 0}, {client_fd.get(), POLLIN, 0}};
      ::poll(p, 2, 10);
    }
    EXPECT_TRUE(server_done && client_done) << client.reason();
    std::string got;
    for (int round = 0; round < 500 && got.size() < 8; ++round) {
      char buffer[64];
      auto r = client.read(buffer, sizeof buffer);
      if (r.status == Stream::Status::Ok) got.append(buffer, r.bytes);
      if (r.status == Stream::Status::Failed || r.status == Stream::Status::Closed) break;
      pollfd p = {client_fd.get(), POLLIN, 0};
      ::poll(&p, 1, 10);
    }
    EXPECT_EQ(got, "220 hi\r\n");
    if (failed) failed->clear();
    if (close_notify) {
      client.shutdown();
      server_stream.shutdown();
    }
    return client.info();
  }

  queue::testing::TempDir tmp_;
  Made ca_;
};

ClientOptions to(const std::string& name, const std::string& destination = "") {
  ClientOptions o;
  o.server_name = name;
  o.verify_names = {name};
  o.destination = destination;
  return o;
}

TEST_F(TlsClientTest, HandshakeWithTheServerAndTheRightNameVerifies) {
  auto info = connect(server("mx.pem"), ClientContext::load(trusting_ca()), to("mx.test"));
  EXPECT_EQ(info.version, "TLSv1.3");
  EXPECT_FALSE(info.cipher.empty());
  EXPECT_EQ(info.server_name, "mx.test");
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Verified) << info.verify_error;
  EXPECT_EQ(info.peer_subject, "CN=mx.test");
  EXPECT_FALSE(info.resumed);
}

TEST_F(TlsClientTest, WrongNameFailsWithOpenSslsReason) {
  auto info = connect(server("mx.pem"), ClientContext::load(trusting_ca()), to("other.test"));
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Failed);
  EXPECT_EQ(info.verify_error, X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH));
}

TEST_F(TlsClientTest, NoPartialWildcards) {
  // OpenSSL wants two labels after a wildcard's: "m*.test" would be refused for that alone.
  write_pem(tmp_.sub("partial.pem"), make_cert("m*.example.test", &ca_, false));
  auto info =
      connect(server("partial.pem"), ClientContext::load(trusting_ca()), to("mx.example.test"));
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Failed);
  EXPECT_EQ(info.verify_error, X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH));
}

TEST_F(TlsClientTest, ExpiredCertificateFails) {
  auto info = connect(server("expired.pem"), ClientContext::load(trusting_ca()), to("mx.test"));
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Failed);
  EXPECT_EQ(info.verify_error, X509_verify_cert_error_string(X509_V_ERR_CERT_HAS_EXPIRED));
}

TEST_F(TlsClientTest, UntrustedSelfSignedFails) {
  auto info = connect(server("self.pem"), ClientContext::load(trusting_ca()), to("mx.test"));
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Failed);
  EXPECT_EQ(info.verify_error,
            X509_verify_cert_error_string(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT));
}

TEST_F(TlsClientTest, VerificationOffAsksNothing) {
  ClientSettings s;
  s.verify_peer = false;
  auto info = connect(server("self.pem"), ClientContext::load(s), to(""));
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::NotAsked);
  EXPECT_EQ(info.server_name, "");
}

// Resumption, on each protocol version (TLS 1.3 tickets after the handshake, TLS 1.2 tickets
// at its end).
class TlsClientResumeTest : public TlsClientTest,
                            public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    TlsClientTest::SetUp();
    mx_ = server("mx.pem");
    client_ = caching(ClientSettings{}.session_cache_size, GetParam());
  }
  SessionInfo again(const std::string& destination, bool close_notify = true) {
    return connect(mx_, client_, to("mx.test", destination), nullptr, close_notify);
  }
  std::shared_ptr<const ServerContext> mx_;
  std::shared_ptr<ClientContext> client_;
};

INSTANTIATE_TEST_SUITE_P(Versions, TlsClientResumeTest, ::testing::Values("TLSv1.3", "TLSv1.2"));

TEST_P(TlsClientResumeTest, OnlyForTheSameDestination) {
  EXPECT_FALSE(again("mx.test:25").resumed);
  EXPECT_TRUE(client_->has_session("mx.test:25"));
  auto info = again("mx.test:25");
  EXPECT_TRUE(info.resumed);
  EXPECT_EQ(info.version, GetParam());
  // The session keeps the verification outcome of its full handshake.
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Verified);
  EXPECT_FALSE(again("mx.test:587").resumed);
  EXPECT_FALSE(again("").resumed);  // no key: no cache
  EXPECT_EQ(client_->cached_sessions(), 2u);
}

// OpenSSL marks a connection's session not resumable when it ends without close_notify; the
// cached session must not be that object.
TEST_P(TlsClientResumeTest, AConnectionEndedWithoutCloseNotifyDoesNotSpoilTheCache) {
  again("mx", false);
  EXPECT_TRUE(again("mx", false).resumed);
  EXPECT_TRUE(again("mx").resumed);
}

TEST_F(TlsClientTest, NoCacheNoResumption) {
  auto mx = server("mx.pem");
  auto client = caching(0);
  connect(mx, client, to("mx.test", "mx.test:25"));
  EXPECT_FALSE(connect(mx, client, to("mx.test", "mx.test:25")).resumed);
  EXPECT_EQ(client->cached_sessions(), 0u);
}

TEST_F(TlsClientTest, SessionCacheIsBoundedAndDropsTheLeastRecentlyUsed) {
  auto mx = server("mx.pem");
  auto client = caching(2);
  for (const char* key : {"a", "b"}) connect(mx, client, to("mx.test", key));
  EXPECT_TRUE(connect(mx, client, to("mx.test", "a")).resumed);  // a: the newest now
  connect(mx, client, to("mx.test", "c"));                       // b goes
  EXPECT_EQ(client->cached_sessions(), 2u);
  EXPECT_TRUE(client->has_session("a"));
  EXPECT_FALSE(client->has_session("b"));
  EXPECT_TRUE(client->has_session("c"));
  EXPECT_FALSE(connect(mx, client, to("mx.test", "b")).resumed);
  EXPECT_EQ(client->cached_sessions(), 2u);
}

TEST_F(TlsClientTest, DefaultClientRefusesATls10Server) {
  auto old_server = server("mx.pem", "TLSv1");
  // The server itself works: a client that allows TLS 1.0 gets through.
  ClientSettings allow = trusting_ca();
  allow.min_protocol = "TLSv1";
  allow.ciphers = "DEFAULT:@SECLEVEL=0";
  std::string failed;
  auto info = connect(old_server, ClientContext::load(allow), to("mx.test"), &failed);
  EXPECT_EQ(failed, "");
  EXPECT_EQ(info.version, "TLSv1");
  // The same client with the default protocol range (the security level would refuse it too).
  ClientSettings by_default = trusting_ca();
  by_default.ciphers = allow.ciphers;
  connect(old_server, ClientContext::load(by_default), to("mx.test"), &failed);
  EXPECT_NE(failed.find("handshake"), std::string::npos) << failed;
  EXPECT_NE(failed.find("protocol version"), std::string::npos) << failed;
}

TEST_F(TlsClientTest, BadSettingsThrow) {
  ClientSettings s;
  s.ca_file = tmp_.sub("missing.pem");
  EXPECT_THROW(ClientContext::load(s), Error);
  s = ClientSettings{};
  s.min_protocol = "SSLv3";
  EXPECT_THROW(ClientContext::load(s), Error);
  s = ClientSettings{};
  s.cert_file = tmp_.sub("ca.pem");
  s.key_file = tmp_.sub("mx.pem");  // not its key
  EXPECT_THROW(ClientContext::load(s), Error);
}

// --- DANE (RFC 7672 3): TLSA records made from the test's certificates; the client does not
// trust the test CA, so only DANE can verify.

std::string digest(const unsigned char* der, int length, const EVP_MD* md = EVP_sha256()) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(der, static_cast<std::size_t>(length), out, &size, md, nullptr);
  return std::string(reinterpret_cast<const char*>(out), size);
}
std::string spki_sha256(X509* x) {  // selector 1, matching type 1
  unsigned char* der = nullptr;
  int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
  std::string d = digest(der, n);
  OPENSSL_free(der);
  return d;
}
std::string cert_sha256(X509* x) {  // selector 0, matching type 1
  unsigned char* der = nullptr;
  int n = i2d_X509(x, &der);
  std::string d = digest(der, n);
  OPENSSL_free(der);
  return d;
}

class TlsDaneTest : public TlsClientTest {
 protected:
  void SetUp() override {
    TlsClientTest::SetUp();
    leaf_ = make_cert("mx.test", &ca_, false);
    write_pem(tmp_.sub("leaf.pem"), leaf_);
    // The leaf, the CA (DANE-TA 2 0 1 matches a certificate the server sends), the key.
    std::FILE* f = std::fopen(tmp_.sub("chain.pem").c_str(), "w");
    ASSERT_NE(f, nullptr);
    PEM_write_X509(f, leaf_.cert.get());
    PEM_write_X509(f, ca_.cert.get());
    PEM_write_PrivateKey(f, leaf_.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
  }
  // A client that trusts nothing of the test's: the system store only.
  std::shared_ptr<ClientContext> client(std::size_t sessions = 0) {
    ClientSettings s;
    s.session_cache_size = sessions;
    return ClientContext::load(s);
  }
  static ClientOptions dane(std::vector<dns::TlsaRecord> tlsa, const std::string& base = "mx.test",
                            const std::string& destination = "") {
    ClientOptions o;
    o.server_name = "mx.test";
    o.dane_base_domain = base;
    o.destination = destination;
    o.tlsa = std::move(tlsa);
    return o;
  }
  dns::TlsaRecord ee() const { return {3, 1, 1, spki_sha256(leaf_.cert.get())}; }
  dns::TlsaRecord ta() const { return {2, 0, 1, cert_sha256(ca_.cert.get())}; }
  Made leaf_;
};

TEST_F(TlsDaneTest, WithoutDaneTheCaIsNotTrusted) {
  auto info = connect(server("leaf.pem"), client(), to("mx.test"));
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Failed);
  EXPECT_EQ(info.dane, SessionInfo::Dane::NotAsked);
}

TEST_F(TlsDaneTest, DaneEeMatchingVerifiesWithoutANameCheck) {
  // Base domain other.test: DANE-EE(3) checks no name (RFC 7672 3.1.1).
  auto info = connect(server("leaf.pem"), client(), dane({ee()}, "other.test"));
  EXPECT_EQ(info.dane, SessionInfo::Dane::Verified) << info.verify_error;
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Verified);
  EXPECT_EQ(info.dane_match, "3 1 1 at depth 0");
  EXPECT_EQ(info.peer_subject, "CN=mx.test");
}

TEST_F(TlsDaneTest, DaneEeFullCertificateAndSha512Match) {
  unsigned char* der = nullptr;
  int n = i2d_X509(leaf_.cert.get(), &der);
  dns::TlsaRecord full{3, 0, 0, std::string(reinterpret_cast<const char*>(der), n)};
  dns::TlsaRecord sha512{3, 0, 2, digest(der, n, EVP_sha512())};
  OPENSSL_free(der);
  EXPECT_EQ(connect(server("leaf.pem"), client(), dane({full})).dane, SessionInfo::Dane::Verified);
  EXPECT_EQ(connect(server("leaf.pem"), client(), dane({sha512})).dane_match, "3 0 2 at depth 0");
}

TEST_F(TlsDaneTest, DaneEeNotMatchingFails) {
  dns::TlsaRecord wrong = ee();
  wrong.data[0] = static_cast<char>(wrong.data[0] ^ 1);
  auto info = connect(server("leaf.pem"), client(), dane({wrong}));
  EXPECT_EQ(info.dane, SessionInfo::Dane::Failed);
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Failed);
  EXPECT_EQ(info.verify_error, X509_verify_cert_error_string(X509_V_ERR_DANE_NO_MATCH));
  EXPECT_EQ(info.dane_match, "");
}

TEST_F(TlsDaneTest, DaneEeIgnoresExpiryAndSelfSigning) {
  Made expired = make_cert("mx.test", &ca_, false, -86400, -3600);
  write_pem(tmp_.sub("expired-leaf.pem"), expired);
  auto info = connect(server("expired-leaf.pem"), client(),
                      dane({{3, 1, 1, spki_sha256(expired.cert.get())}}));
  EXPECT_EQ(info.dane, SessionInfo::Dane::Verified) << info.verify_error;
  Made self = make_cert("self.test", nullptr, false);
  write_pem(tmp_.sub("self-leaf.pem"), self);
  info =
      connect(server("self-leaf.pem"), client(), dane({{3, 1, 1, spki_sha256(self.cert.get())}}));
  EXPECT_EQ(info.dane, SessionInfo::Dane::Verified) << info.verify_error;
}

TEST_F(TlsDaneTest, DaneTaNeedsTheMxName) {
  auto info = connect(server("chain.pem"), client(), dane({ta()}, "mx.test"));
  EXPECT_EQ(info.dane, SessionInfo::Dane::Verified) << info.verify_error;
  EXPECT_EQ(info.dane_match, "2 0 1 at depth 1");
  info = connect(server("chain.pem"), client(), dane({ta()}, "wrong.test"));
  EXPECT_EQ(info.dane, SessionInfo::Dane::Failed);
  EXPECT_EQ(info.verify_error, X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH));
}

TEST_F(TlsDaneTest, DaneTaWithAnotherCaFails) {
  Made other_ca = make_cert("Other CA", nullptr, true);
  auto info =
      connect(server("chain.pem"), client(), dane({{2, 0, 1, cert_sha256(other_ca.cert.get())}}));
  EXPECT_EQ(info.dane, SessionInfo::Dane::Failed);
}

TEST_F(TlsDaneTest, UnusableRecordsOnlyAreRefused) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  base::UniqueFd a(fds[0]), b(fds[1]);
  // A SHA-256 of the wrong length: OpenSSL takes none, so DANE would be off: refused.
  EXPECT_THROW(Stream(client(), a.get(), dane({{3, 1, 1, "short"}})), Error);
  // No base domain (no SNI either): DANE-TA would check no name.
  ClientOptions nameless = dane({ee()}, "");
  nameless.server_name.clear();
  EXPECT_THROW(Stream(client(), a.get(), nameless), Error);
}

// A session cached without DANE must not let a DANE connection skip its verification, and a
// DANE session resumes only for the same records.
TEST_F(TlsDaneTest, NoResumptionAcrossDaneAndOtherRecords) {
  auto mx = server("leaf.pem");
  ClientSettings s = trusting_ca();  // the non-DANE connection verifies with the CA
  auto shared = ClientContext::load(s);
  auto plain = connect(mx, shared, to("mx.test", "mx.test:25"));
  ASSERT_EQ(plain.peer_cert, SessionInfo::PeerCert::Verified);
  ASSERT_TRUE(shared->has_session("mx.test:25"));
  dns::TlsaRecord wrong = ee();
  wrong.data[0] = static_cast<char>(wrong.data[0] ^ 1);
  auto info = connect(mx, shared, dane({wrong}, "mx.test", "mx.test:25"));
  EXPECT_FALSE(info.resumed);
  EXPECT_EQ(info.dane, SessionInfo::Dane::Failed);
  EXPECT_EQ(info.peer_cert, SessionInfo::PeerCert::Failed);
  // The same records again: resumed, still failed (the session keeps its outcome).
  info = connect(mx, shared, dane({wrong}, "mx.test", "mx.test:25"));
  EXPECT_TRUE(info.resumed);
  EXPECT_EQ(info.dane, SessionInfo::Dane::Failed);
  // Matching records: a full handshake, verified; then resumed and verified.
  info = connect(mx, shared, dane({ee()}, "mx.test", "mx.test:25"));
  EXPECT_FALSE(info.resumed);
  EXPECT_EQ(info.dane, SessionInfo::Dane::Verified);
  info = connect(mx, shared, dane({ee()}, "mx.test", "mx.test:25"));
  EXPECT_TRUE(info.resumed);
  EXPECT_EQ(info.dane, SessionInfo::Dane::Verified);
  EXPECT_EQ(info.dane_match, "resumed");
}

}  // namespace
}  // namespace estafette::tls
