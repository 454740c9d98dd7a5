#include "lib/tls/context.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace estafette::tls {
namespace {

// Fixed for every context, so that a session resumes in whichever of our contexts SNI picks.
constexpr unsigned char kSessionIdContext[] = "estafette-esmtpd";

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int protocol_version(const std::string& name) {
  if (name == "TLSv1") return TLS1_VERSION;
  if (name == "TLSv1.1") return TLS1_1_VERSION;
  if (name == "TLSv1.2") return TLS1_2_VERSION;
  if (name == "TLSv1.3") return TLS1_3_VERSION;
  throw Error("unknown TLS protocol '" + name + "'");
}

std::unique_ptr<std::FILE, FileCloser> open_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "re"));
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  return f;
}

X509Ptr read_leaf(const std::string& path) {
  auto f = open_file(path);
  X509Ptr x(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!x) throw Error(path + ": no PEM certificate: " + openssl_errors());
  return x;
}

PkeyPtr read_key(const std::string& path) {
  auto f = open_file(path);
  PkeyPtr k(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
  if (!k) throw Error(path + ": no PEM private key: " + openssl_errors());
  return k;
}

std::vector<std::string> dns_names(X509* x) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const auto* s = n->d.dNSName;
      names.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                        static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0)
      names.push_back(lower(cn));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::time_t time_of(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

bool name_matches(const std::string& pattern, const std::string& name) {
  if (pattern == name) return true;
  if (pattern.starts_with("*.")) {
    auto dot = name.find('.');
    return dot != std::string::npos && dot > 0 && name.substr(dot) == pattern.substr(1);
  }
  return false;
}

// Client certificates are asked for, never required (a client without one is served as before),
// and a chain that fails to verify does not end the handshake: Stream::info() reports it and
// only a verified certificate counts (Postfix's smtpd_tls_ask_ccert).
int accept_any_chain(int, X509_STORE_CTX*) {
  return 1;
}

// Postfix's smtpd_tls_ccert_verifydepth.
constexpr int kClientVerifyDepth = 9;

void ask_client_certificates(SSL_CTX* ctx, const std::string& ca_file) {
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1)
    throw Error(ca_file + ": no CA certificates: " + openssl_errors());
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_file.c_str());
  if (!names) throw Error(ca_file + ": no CA certificates: " + openssl_errors());
  SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_chain);
  SSL_CTX_set_verify_depth(ctx, kClientVerifyDepth);
}

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

[[noreturn]] void fail(const std::string& what) {
  std::string why = openssl_errors();
  throw Error(what + (why.empty() ? "" : ": " + why));
}

CtxPtr new_ctx(const SSL_METHOD* method) {
  CtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) fail("SSL_CTX_new");
  return ctx;
}

// What both sides take from tls_protocols, tls_ciphers, tls_ciphersuites and tls_groups.
template <typename Settings>
void set_protocols(SSL_CTX* ctx, const Settings& s) {
  if (!SSL_CTX_set_min_proto_version(ctx, protocol_version(s.min_protocol)) ||
      !SSL_CTX_set_max_proto_version(ctx, protocol_version(s.max_protocol)))
    fail("tls_protocols");
  if (!s.ciphers.empty() && !SSL_CTX_set_cipher_list(ctx, s.ciphers.c_str()))
    fail("tls_ciphers '" + s.ciphers + "'");
  if (!s.ciphersuites.empty() && !SSL_CTX_set_ciphersuites(ctx, s.ciphersuites.c_str()))
    fail("tls_ciphersuites '" + s.ciphersuites + "'");
  if (!s.groups.empty() && !SSL_CTX_set1_groups_list(ctx, s.groups.c_str()))
    fail("tls_groups '" + s.groups + "'");
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

SSL_CTX* new_context(const ServerSettings& s) {
  CtxPtr owner = new_ctx(TLS_server_method());
  SSL_CTX* ctx = owner.get();
  set_protocols(ctx, s);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  if (!s.session_tickets) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  // One TLS 1.3 ticket per handshake, not OpenSSL's two: an SMTP client holds one session per
  // destination, and each ticket costs an encryption, an HMAC and a record on every handshake.
  SSL_CTX_set_num_tickets(ctx, 1);
  // Read whole socket buffers, not a 5-byte record header and then its body: half the read()
  // calls per record (Stream::pending() uses SSL_has_pending, which sees read-ahead bytes).
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_dh_auto(ctx, 1);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_timeout(ctx, static_cast<long>(s.session_timeout.count()));
  return owner.release();
}

}  // namespace

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out;
}

std::string name_text(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len > 0 ? len : 0));
  BIO_free(bio);
  if (out.size() > kMaxNameLength) out.resize(kMaxNameLength);
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}

ClientSettings client_settings(const config::Config& c) {
  ClientSettings s;
  s.min_protocol = c.tls_protocols.front();
  s.max_protocol = c.tls_protocols.back();
  s.ciphers = c.tls_ciphers;
  s.ciphersuites = c.tls_ciphersuites;
  s.groups = c.tls_groups;
  s.ca_file = c.tls_ca_file;
  return s;
}

ServerSettings server_settings(const config::Config& c) {
  ServerSettings s;
  for (std::size_t i = 0; i < c.tls_cert_files.size(); ++i)
    s.certificates.push_back({c.tls_cert_files[i], i < c.tls_key_files.size()
                                                       ? c.tls_key_files[i]
                                                       : c.tls_cert_files[i]});
  if (!c.tls_protocols.empty()) {
    s.min_protocol = c.tls_protocols.front();
    s.max_protocol = c.tls_protocols.back();
  }
  s.ciphers = c.tls_ciphers;
  s.ciphersuites = c.tls_ciphersuites;
  s.groups = c.tls_groups;
  s.session_tickets = c.tls_session_tickets;
  s.session_timeout = c.tls_session_timeout;
  s.client_ca_file = c.tls_client_ca_file;
  s.relay_clientcerts = c.relay_clientcerts;
  return s;
}

std::shared_ptr<const ServerContext> ServerContext::load(const ServerSettings& settings) {
  if (settings.certificates.empty()) throw Error("no certificate configured (tls_cert_file)");
  ERR_clear_error();
  std::shared_ptr<ServerContext> out(new ServerContext());
  for (const auto& pair : settings.certificates) {
    X509Ptr leaf = read_leaf(pair.cert_file);
    PkeyPtr key = read_key(pair.key_file);
    if (X509_check_private_key(leaf.get(), key.get()) != 1) {
      ERR_clear_error();
      throw Error(pair.key_file + ": the key does not match the certificate in " + pair.cert_file);
    }
    CertificateInfo info;
    info.file = pair.cert_file;
    info.subject = name_text(X509_get_subject_name(leaf.get()));
    info.names = dns_names(leaf.get());
    info.key_type = OBJ_nid2sn(EVP_PKEY_get_base_id(key.get()));
    info.key_bits = EVP_PKEY_get_bits(key.get());
    info.not_after = time_of(X509_get0_notAfter(leaf.get()));
    auto site = std::find_if(out->sites_.begin(), out->sites_.end(),
                             [&](const Site& s) { return s.names == info.names; });
    if (site == out->sites_.end()) {
      out->sites_.push_back({new_context(settings), info.names});
      site = std::prev(out->sites_.end());
      // Every site: after an SNI switch OpenSSL verifies with the new SSL_CTX's store.
      if (!settings.client_ca_file.empty())
        ask_client_certificates(site->ctx, settings.client_ca_file);
    }
    if (SSL_CTX_use_certificate_chain_file(site->ctx, pair.cert_file.c_str()) != 1)
      throw Error(pair.cert_file + ": " + openssl_errors());
    if (SSL_CTX_use_PrivateKey(site->ctx, key.get()) != 1 ||
        SSL_CTX_check_private_key(site->ctx) != 1)
      throw Error(pair.key_file + ": " + openssl_errors());
    out->certificates_.push_back(std::move(info));
  }
  if (!settings.relay_clientcerts.empty())
    out->trusted_clients_ = config::load_fingerprints(settings.relay_clientcerts);
  if (out->sites_.size() > 1) {
    // The first context sees every ClientHello: it picks the site by SNI. Every context shares
    // its ticket keys (OpenSSL uses the initial context's), so resumption works on any site.
    SSL_CTX_set_tlsext_servername_callback(out->default_context(), &ServerContext::on_servername);
    SSL_CTX_set_tlsext_servername_arg(out->default_context(), out.get());
  }
  if (settings.session_tickets && settings.ticket_keys) {
    auto keys = *settings.ticket_keys;  // OpenSSL's macro takes a non-const pointer
    for (auto& site : out->sites_)
      if (SSL_CTX_set_tlsext_ticket_keys(site.ctx, keys.data(), keys.size()) != 1)
        throw Error("session ticket keys: " + openssl_errors());
    OPENSSL_cleanse(keys.data(), keys.size());
  }
  return out;
}

ServerContext::~ServerContext() {
  for (auto& s : sites_) SSL_CTX_free(s.ctx);
}

const ServerContext::Site* ServerContext::site_for(const std::string& name) const {
  for (const auto& site : sites_)
    for (const auto& pattern : site.names)
      if (name_matches(pattern, name)) return &site;
  return nullptr;
}

int ServerContext::on_servername(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_NOACK;
  const Site* site = self->site_for(lower(name));
  if (site && site->ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, site->ctx);
  return SSL_TLSEXT_ERR_OK;  // no match: the default certificate, as most servers do
}

}  // namespace estafette::tls

namespace estafette::tls {

void ClientContext::SessionFree::operator()(SSL_SESSION* s) const {
  SSL_SESSION_free(s);
}

std::shared_ptr<ClientContext> ClientContext::load(const ClientSettings& settings) {
  ERR_clear_error();
  std::shared_ptr<ClientContext> out(new ClientContext());
  CtxPtr owner = new_ctx(TLS_client_method());
  SSL_CTX* ctx = owner.get();
  set_protocols(ctx, settings);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (settings.verify_peer) {
    if (!settings.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, settings.ca_file.c_str(), nullptr) != 1)
        fail(settings.ca_file + ": no CA certificates");
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      fail("the system's CA certificates");
    }
    // Verified or not, the handshake goes on: Stream::info() says which, the caller decides.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_chain);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  // DANE's digest tables; each connection that has TLSA records turns DANE on for itself.
  if (SSL_CTX_dane_enable(ctx) <= 0) fail("DANE");
  if (!settings.cert_file.empty()) {
    const std::string& key = settings.key_file.empty() ? settings.cert_file : settings.key_file;
    if (SSL_CTX_use_certificate_chain_file(ctx, settings.cert_file.c_str()) != 1)
      fail(settings.cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
      fail(key);
  }
  out->cache_size_ = settings.session_cache_size;
  if (out->cache_size_ > 0) {
    // OpenSSL's client cache is keyed by nothing we choose: ours is keyed by destination.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &ClientContext::on_new_session);
    SSL_CTX_set_app_data(ctx, out.get());
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  }
  out->ctx_ = owner.release();
  return out;
}

ClientContext::~ClientContext() {
  SSL_CTX_free(ctx_);
}

int ClientContext::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<ClientContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const auto* destination = static_cast<const std::string*>(SSL_get_app_data(ssl));
  // A copy, not OpenSSL's reference: the connection still holds `session` and marks it not
  // resumable when it ends without close_notify (or a newer ticket comes), which must not
  // spoil the one kept for the next connection.
  if (self && destination && !destination->empty()) {
    if (SSL_SESSION* copy = SSL_SESSION_dup(session)) self->remember(*destination, copy);
  }
  return 0;  // OpenSSL keeps its reference
}

void ClientContext::remember(const std::string& destination, SSL_SESSION* session) {
  SessionPtr owned(session);  // ours now
  if (auto it = sessions_.find(destination); it != sessions_.end()) {
    it->second->session = std::move(owned);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (sessions_.size() >= cache_size_) {
    sessions_.erase(lru_.back().destination);
    lru_.pop_back();
  }
  lru_.push_front({destination, std::move(owned)});
  sessions_.emplace(destination, lru_.begin());
}

SSL_SESSION* ClientContext::session_for(const std::string& destination) {
  auto it = sessions_.find(destination);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION* kept = it->second->session.get();
  long age = static_cast<long>(std::time(nullptr)) - SSL_SESSION_get_time(kept);
  if (!SSL_SESSION_is_resumable(kept) || age > SSL_SESSION_get_timeout(kept)) {
    lru_.erase(it->second);
    sessions_.erase(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  // A copy for each connection, for the same reason as in on_new_session().
  return SSL_SESSION_dup(kept);
}

}  // namespace estafette::tls
