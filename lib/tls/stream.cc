#include "lib/tls/stream.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace estafette::tls {
namespace {

std::string sha256_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    if (i) out += ':';
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

// The session cache key of a DANE connection: the destination and a digest of its TLSA records
// (ClientOptions::tlsa), so that a session verified otherwise is never offered to it.
std::string dane_destination(const std::string& destination,
                             const std::vector<dns::TlsaRecord>& tlsa) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1;
  for (const auto& r : tlsa) {
    unsigned char head[7] = {r.usage,
                             r.selector,
                             r.matching_type,
                             static_cast<unsigned char>(r.data.size() >> 24),
                             static_cast<unsigned char>(r.data.size() >> 16),
                             static_cast<unsigned char>(r.data.size() >> 8),
                             static_cast<unsigned char>(r.data.size())};
    ok = ok && EVP_DigestUpdate(md, head, sizeof head) == 1 &&
         EVP_DigestUpdate(md, r.data.data(), r.data.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(md, digest, &len) == 1;
  EVP_MD_CTX_free(md);
  if (!ok) return {};  // no digest: no resumption for this connection
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = destination + " dane=";
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

int accept_any_chain(int, X509_STORE_CTX*) {
  return 1;  // the handshake goes on; info() reports the outcome and the caller decides
}

}  // namespace

void Stream::attach(SSL_CTX* ctx, int fd) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx);
  if (!ssl_ || SSL_set_fd(ssl_, fd) != 1) {
    std::string why = openssl_errors();
    if (ssl_) SSL_free(ssl_);
    throw Error("SSL_new: " + why);
  }
}

Stream::Stream(std::shared_ptr<const ServerContext> context, int fd) : server_(std::move(context)) {
  attach(server_->default_context(), fd);
  SSL_set_accept_state(ssl_);
}

Stream::Stream(std::shared_ptr<ClientContext> context, int fd, ClientOptions options)
    : client_(std::move(context)), destination_(std::move(options.destination)) {
  attach(client_->context(), fd);
  bool ok = true;
  if (!options.server_name.empty())
    ok = SSL_set_tlsext_host_name(ssl_, options.server_name.c_str()) == 1;
  SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  std::string refused;  // the name OpenSSL would not take
  // With DANE, enable_dane() sets the names itself (DANE-TA checks them, DANE-EE does not).
  for (const auto& name :
       options.tlsa.empty() ? options.verify_names : std::vector<std::string>{}) {
    if (!ok) break;
    ok = SSL_add1_host(ssl_, name.c_str()) == 1;
    if (!ok) refused = name;
  }
  if (!ok) {
    std::string why = openssl_errors();
    SSL_free(ssl_);
    throw Error("server name '" + (refused.empty() ? options.server_name : refused) + "': " + why);
  }
  if (!options.tlsa.empty()) {
    try {
      enable_dane(options);
    } catch (const Error&) {
      SSL_free(ssl_);
      throw;
    }
    dane_ = true;
    if (!destination_.empty()) destination_ = dane_destination(destination_, options.tlsa);
  }
  SSL_set_app_data(ssl_, &destination_);  // for ClientContext::on_new_session
  if (!destination_.empty()) {
    if (SSL_SESSION* session = client_->session_for(destination_)) {
      SSL_set_session(ssl_, session);
      SSL_SESSION_free(session);
    }
  }
  SSL_set_connect_state(ssl_);
}

void Stream::enable_dane(const ClientOptions& options) {
  const std::string& base =
      options.dane_base_domain.empty() ? options.server_name : options.dane_base_domain;
  // Without one DANE-TA would check no name at all.
  if (base.empty()) throw Error("DANE needs the TLSA base domain (the MX host name)");
  SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  // The base domain is the first reference identifier (DANE-TA's name check); DANE-EE checks no
  // name (RFC 7672 3.1.1).
  if (SSL_dane_enable(ssl_, base.c_str()) <= 0)
    throw Error("DANE for '" + base + "': " + openssl_errors());
  SSL_dane_set_flags(ssl_, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
  for (const auto& name : options.verify_names) {
    if (name != base && SSL_add1_host(ssl_, name.c_str()) != 1)
      throw Error("server name '" + name + "': " + openssl_errors());
  }
  int taken = 0;
  for (const auto& r : options.tlsa) {
    int rc =
        SSL_dane_tlsa_add(ssl_, r.usage, r.selector, r.matching_type,
                          reinterpret_cast<const unsigned char*>(r.data.data()), r.data.size());
    if (rc < 0) throw Error("TLSA record " + dns::tlsa_text(r) + ": " + openssl_errors());
    if (rc > 0) ++taken;
  }
  // None taken would leave DANE off and the CA store in charge: never for a DANE connection.
  if (taken == 0) throw Error("no usable TLSA record");
  if (!(SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER))
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, accept_any_chain);
}

Stream::~Stream() {
  SSL_free(ssl_);
}

Stream::Status Stream::status_of(int ret, const char* what) {
  int error = SSL_get_error(ssl_, ret);
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return Status::WantRead;
    case SSL_ERROR_WANT_WRITE:
      return Status::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Status::Closed;
    case SSL_ERROR_SYSCALL: {
      int e = errno;
      std::string queued = openssl_errors();
      if (e == EINTR) return Status::WantRead;  // nothing happened; the loop comes back
      reason_ = std::string(what) + ": " +
                (!queued.empty() ? queued
                 : e             ? std::strerror(e)
                                 : "connection closed");
      return Status::Failed;
    }
    default:
      reason_ = std::string(what) + ": " + openssl_errors();
      return Status::Failed;
  }
}

Stream::Status Stream::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) return Status::Ok;
  auto s = status_of(r, "handshake");
  if (s == Status::Closed) {
    reason_ = "handshake: connection closed";
    return Status::Failed;
  }
  return s;
}

Stream::Result Stream::read(char* buffer, std::size_t size) {
  std::size_t total = 0;
  while (total < size) {
    ERR_clear_error();
    std::size_t got = 0;
    int r = SSL_read_ex(ssl_, buffer + total, size - total, &got);
    if (r == 1) {
      total += got;
      continue;
    }
    auto s = status_of(r, "read");
    if (total > 0 && (s == Status::WantRead || s == Status::WantWrite)) break;
    if (total > 0) {  // give what we have; the close or error comes with the next read
      return {Status::Ok, total};
    }
    return {s, 0};
  }
  return {Status::Ok, total};
}

Stream::Result Stream::write(const char* data, std::size_t size) {
  ERR_clear_error();
  std::size_t put = 0;
  int r = SSL_write_ex(ssl_, data, size, &put);
  if (r == 1) return {Status::Ok, put};
  return {status_of(r, "write"), 0};
}

bool Stream::pending() const {
  return SSL_has_pending(ssl_) == 1;
}

void Stream::shutdown() {
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

SessionInfo Stream::info() const {
  SessionInfo i;
  i.version = SSL_get_version(ssl_);
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  if (c) {
    i.cipher = SSL_CIPHER_get_name(c);
    i.bits = SSL_CIPHER_get_bits(c, &i.alg_bits);
  }
  i.resumed = resumed();
  if (const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) i.server_name = name;
  if (!(SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER)) return i;
  X509* peer = SSL_get0_peer_certificate(ssl_);  // also after resumption: the session keeps it
  if (!peer) {
    i.peer_cert = SessionInfo::PeerCert::None;
    return i;
  }
  i.peer_subject = name_text(X509_get_subject_name(peer));
  i.peer_issuer = name_text(X509_get_issuer_name(peer));
  i.peer_fingerprint = sha256_fingerprint(peer);
  long result = SSL_get_verify_result(ssl_);
  if (result == X509_V_OK) {
    i.peer_cert = SessionInfo::PeerCert::Verified;
  } else {
    i.peer_cert = SessionInfo::PeerCert::Failed;
    i.verify_error = X509_verify_cert_error_string(result);
    switch (result) {
      case X509_V_ERR_HOSTNAME_MISMATCH:
        i.verify_failure = SessionInfo::VerifyFailure::NameMismatch;
        break;
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        i.verify_failure = SessionInfo::VerifyFailure::Expired;
        break;
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_CERT_UNTRUSTED:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        i.verify_failure = SessionInfo::VerifyFailure::NotTrusted;
        break;
      default:
        i.verify_failure = SessionInfo::VerifyFailure::Other;
        break;
    }
  }
  if (dane_) {
    // A resumed session carries the verify result of the handshake that made it, which was a
    // DANE one with the same records (the cache key says so): OpenSSL verifies nothing again.
    i.dane = result == X509_V_OK ? SessionInfo::Dane::Verified : SessionInfo::Dane::Failed;
    std::uint8_t usage = 0, selector = 0, mtype = 0;
    int depth = SSL_get0_dane_tlsa(ssl_, &usage, &selector, &mtype, nullptr, nullptr);
    if (i.dane == SessionInfo::Dane::Verified)
      i.dane_match = depth >= 0 ? std::to_string(usage) + " " + std::to_string(selector) + " " +
                                      std::to_string(mtype) + " at depth " + std::to_string(depth)
                                : "resumed";
  }
  return i;
}

bool Stream::resumed() const {
  return SSL_session_reused(ssl_) == 1;
}

bool Stream::client_trusted(const SessionInfo& info) const {
  return server_ && info.peer_cert == SessionInfo::PeerCert::Verified &&
         !info.peer_fingerprint.empty() && server_->trusts_client(info.peer_fingerprint);
}

}  // namespace estafette::tls
