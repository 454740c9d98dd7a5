// context.h: TLS contexts (OpenSSL). ServerContext: built from estafette.conf's tls_* settings,
// for esmtpd. ClientContext (below): the client side, for esmtpclient's outbound TLS (issue 15)
// and estafette-bench's source. ServerContext is immutable once loaded and shared
// (std::shared_ptr): SIGHUP loads a new one and new handshakes use it, while a tls::Stream keeps
// the context it started with alive.
// Certificates come in (certificate file, key file) pairs; each certificate file holds the leaf
// then its chain (PEM). Pairs whose certificates carry the same DNS names (an RSA and an ECDSA
// certificate for one host) share one SSL_CTX, and OpenSSL picks by the client's signature
// algorithms. Pairs for other names get an SSL_CTX of their own, chosen by the client's SNI
// (exact name or "*." wildcard, case-insensitive); the first pair's names are the default.
// Protocols: the range of tls_protocols (TLSv1 .. TLSv1.3); renegotiation off; ECDHE with
// tls_groups (or OpenSSL's default) and automatic DHE parameters; a server session cache and
// session tickets (the keys of ServerSettings::ticket_keys, shared by esmtpd's processes, else
// this context's own: a ticket then resumes only where it was issued).
// Client certificates (tls_client_ca_file): every site asks for one (without requiring it) and
// verifies it against that CA file; the handshake goes on whatever the outcome, which
// Stream::info() reports. relay_clientcerts, read with the certificates so that SIGHUP reloads
// both, lists the fingerprints that trusts_client() grants.
// Any thread while loading; the result is read-only. Errors: tls::Error naming the file and
// OpenSSL's reason (missing file, bad PEM, key that does not match its certificate, unknown
// cipher list or group, a CA file without certificates); config::ConfigError with file:line for
// a bad relay_clientcerts; the process is never ended here.
#pragma once

#include <chrono>
#include <cstddef>
#include <ctime>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/config/config.h"
#include "lib/config/fingerprints.h"
#include "lib/tls/ticket_keys.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
typedef struct X509_name_st X509_NAME;

namespace estafette::tls {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// OpenSSL's errors queued on this thread, as one line ("" when none); clears the queue.
std::string openssl_errors();

// A certificate's subject or issuer for logs, milter macros and check-config: RFC 2253, printable
// ASCII only (RFC 2253 escapes what OpenSSL would print raw; anything left becomes '?'), at
// most kMaxNameLength bytes.
inline constexpr std::size_t kMaxNameLength = 512;
std::string name_text(const X509_NAME* name);

struct ServerSettings {
  struct Pair {
    std::string cert_file;  // leaf, then its chain
    std::string key_file;   // its private key (may be the same file)
  };
  std::vector<Pair> certificates;
  std::string min_protocol = "TLSv1.2";  // TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3
  std::string max_protocol = "TLSv1.3";
  std::string ciphers;       // OpenSSL cipher list for TLS <= 1.2; "": OpenSSL's default
  std::string ciphersuites;  // TLS 1.3 suites; "": OpenSSL's default
  std::string groups;        // key exchange groups, "X25519:P-256"; "": OpenSSL's default
  bool session_tickets = true;
  std::chrono::seconds session_timeout{3600};
  // Ticket keys shared with other processes (ticket_keys.h); none: the context's own.
  std::optional<TicketKeys> ticket_keys;
  std::string client_ca_file;     // "": no client certificate asked for
  std::string relay_clientcerts;  // "": no fingerprint trusted
};

// The server settings of a config (tls_cert_file, tls_key_file, tls_protocols, ...); no
// certificate when tls_cert_file is empty.
ServerSettings server_settings(const config::Config& config);

// What a loaded certificate says, for logs and check-config.
struct CertificateInfo {
  std::string file;
  std::string subject;             // one line, RFC 2253
  std::vector<std::string> names;  // DNS names (SAN, else CN), lower-case
  std::string key_type;            // "RSA", "EC", ...
  int key_bits = 0;
  std::time_t not_after = 0;
};

class ServerContext final {
 public:
  // Throws tls::Error; settings.certificates must not be empty.
  static std::shared_ptr<const ServerContext> load(const ServerSettings& settings);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // The context a new connection starts with (its SNI callback may switch to another).
  SSL_CTX* default_context() const { return sites_.front().ctx; }
  const std::vector<CertificateInfo>& certificates() const { return certificates_; }
  // Whether a client certificate with this SHA-256 fingerprint (canonical "AA:BB:..." form) is
  // in relay_clientcerts. The caller checks that the certificate verified.
  bool trusts_client(const std::string& fingerprint) const {
    return trusted_clients_.contains(fingerprint);
  }
  std::size_t trusted_client_count() const { return trusted_clients_.size(); }

 private:
  struct Site {
    SSL_CTX* ctx = nullptr;
    std::vector<std::string> names;  // lower-case; "*.example.org" allowed
  };
  ServerContext() = default;
  static int on_servername(SSL* ssl, int* alert, void* arg);
  const Site* site_for(const std::string& name) const;

  std::vector<Site> sites_;  // [0]: the default
  std::vector<CertificateInfo> certificates_;
  config::Fingerprints trusted_clients_;
};

// The client side. ClientContext: one SSL_CTX for every outbound connection of a process
// (TLS_client_method, protocol range, ciphers, CA trust, an optional client certificate) and a
// bounded cache of the newest session per destination: a key the caller picks
// ("mx.example.org:25"), so that a later connection to the same place resumes. Sessions come
// from OpenSSL's new-session callback (TLS 1.2: at the end of the handshake; TLS 1.3: each
// ticket, after it); the least recently used destination goes when the cache is full. DANE is
// enabled on the context (SSL_CTX_dane_enable); a Stream with TLSA records turns it on for itself.
// Not shared between threads: it is mutable (the cache), owned by one loop thread through a
// std::shared_ptr that each client tls::Stream also holds. Errors: load() throws tls::Error
// naming the file or setting and OpenSSL's reason; nothing after it throws.
struct ClientSettings {
  std::string min_protocol = "TLSv1.2";  // as ServerSettings
  std::string max_protocol = "TLSv1.3";
  std::string ciphers;
  std::string ciphersuites;
  std::string groups;
  // Verify the server's chain (the handshake goes on either way: Stream::info() reports it and
  // the caller decides, as Postfix's smtp_tls_security_level does). false: not even asked.
  bool verify_peer = true;
  std::string ca_file;                    // trusted CAs (PEM); "": the system store
  std::string cert_file;                  // client certificate and chain; "": none
  std::string key_file;                   // its key; "": in cert_file
  std::size_t session_cache_size = 1000;  // destinations kept; 0: no resumption at all
};

// esmtpclient's settings from the config: tls_protocols, the cipher lists, tls_ca_file.
ClientSettings client_settings(const config::Config& config);

class ClientContext final {
 public:
  static std::shared_ptr<ClientContext> load(const ClientSettings& settings);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  SSL_CTX* context() const { return ctx_; }
  // A copy of the newest session for `destination` to offer (the caller frees it, as
  // SSL_set_session leaves its own reference), or null: none, or expired. Marks it recently used.
  SSL_SESSION* session_for(const std::string& destination);
  bool has_session(const std::string& destination) const { return sessions_.contains(destination); }
  std::size_t cached_sessions() const { return sessions_.size(); }

 private:
  struct SessionFree {
    void operator()(SSL_SESSION* s) const;
  };
  using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;
  struct Entry {
    std::string destination;
    SessionPtr session;
  };
  ClientContext() = default;
  static int on_new_session(SSL* ssl, SSL_SESSION* session);
  void remember(const std::string& destination, SSL_SESSION* session);

  SSL_CTX* ctx_ = nullptr;
  std::size_t cache_size_ = 0;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> sessions_;
};

}  // namespace estafette::tls
