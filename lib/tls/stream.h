// stream.h: one TLS connection, server side (esmtpd) or client side (esmtpclient, the bench's
// source), over a connected, non-blocking socket, driven by its owner's event loop. Both sides
// share everything after the constructor. Nothing here blocks or waits: handshake(), read() and
// write() do what the socket allows now and say what they need next (WantRead: call again when the
// fd is readable; WantWrite: when writable), which the owner turns into its epoll interest. A read
// may need the socket writable and a write readable (TLS 1.3 key updates); the owner honours that
// too. Loop thread of the owner. The owner keeps the fd and closes it after the Stream is gone; the
// Stream keeps its ServerContext or ClientContext (and so its SSL_CTX) alive; a client Stream
// puts the session the server hands out into its ClientContext's cache while it runs.
// A client Stream given TLSA records authenticates the server by DANE (RFC 7672, OpenSSL's
// DANE; ClientOptions::tlsa) instead of the CA store. Errors:
// Failed with reason() (the handshake or a record went wrong: OpenSSL's reason, or the errno),
// Closed when the peer ended the stream (close_notify, or end of file, which is not an error for
// SMTP: the protocol itself says where a message ends). Never throws after construction.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "lib/dns/tlsa.h"
#include "lib/tls/context.h"

typedef struct ssl_st SSL;

namespace estafette::tls {

// What the handshake agreed on: the Received header's "(using TLSv1.3 with cipher
// TLS_AES_256_GCM_SHA384 (256/256 bits))", logs and milter macros.
struct SessionInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
  int bits = 0;         // secret bits of the cipher
  int alg_bits = 0;     // bits of its algorithm
  bool resumed = false;
  std::string server_name;  // SNI the client sent, "" when none
  // Server side: the client certificate, when one was asked for (tls_client_ca_file). Client
  // side: the server's certificate, unless ClientSettings::verify_peer is off; Failed also when
  // it matches none of ClientOptions::verify_names (RFC 6125, no partial wildcards).
  enum class PeerCert { NotAsked, None, Verified, Failed };
  PeerCert peer_cert = PeerCert::NotAsked;
  std::string peer_subject;      // RFC 2253, one line of printable ASCII, bounded; "" if none
  std::string peer_issuer;       // likewise
  std::string peer_fingerprint;  // SHA-256, "AA:BB:..." as relay_clientcerts has it
  std::string verify_error;      // Failed: OpenSSL's reason
  // Failed: the kind of reason, as TLS reports (RFC 8460 4.3.1) tell it.
  enum class VerifyFailure { None, NameMismatch, Expired, NotTrusted, Other };
  VerifyFailure verify_failure = VerifyFailure::None;
  // Client side with ClientOptions::tlsa: DANE decided peer_cert (Verified: a TLSA record
  // matched, and for DANE-TA the name; Failed: verify_error says why, e.g. "no matching DANE
  // TLSA records"). NotAsked: no TLSA records were given, the CA store decided.
  enum class Dane { NotAsked, Verified, Failed };
  Dane dane = Dane::NotAsked;
  // Verified: "3 1 1 at depth 0", the matching record's usage, selector, matching type and the
  // chain depth it matched (0: the server's own certificate); "resumed" when the session was
  // resumed (it was verified with the same TLSA records when it was made).
  std::string dane_match;
};

// How a client Stream starts.
struct ClientOptions {
  std::string server_name;  // SNI; "": none (e.g. an IP address)
  // The certificate must carry one of these names; ".example.org" stands for any name below
  // example.org (OpenSSL's X509_check_host rule); empty: any name.
  std::vector<std::string> verify_names;
  std::string destination;  // session cache key ("mx.example.org:25"); "": no resumption
  // DANE (RFC 7672 3): the server's usable TLSA records (dns::DaneVerdict::records). Not empty:
  // they alone authenticate the server, with OpenSSL's DANE (no CA store, verification asked
  // for even when ClientSettings::verify_peer is off). DANE-EE(3) matches the server's own
  // certificate or key, without name or validity checks (RFC 7672 3.1.1); DANE-TA(2) needs a
  // chain to the matched trust anchor and the certificate to carry dane_base_domain or
  // one of verify_names (e.g. the next-hop domain; RFC 7672 3.2.2). Sessions are cached under
  // destination plus a digest of the records: a session made without DANE (or with other
  // records) is never offered, and a resumed one keeps the DANE outcome it was made with.
  std::vector<dns::TlsaRecord> tlsa = {};
  std::string dane_base_domain = {};  // the TLSA base domain (the MX host name); "": server_name
};

class Stream final {
 public:
  enum class Status { Ok, WantRead, WantWrite, Closed, Failed };
  struct Result {
    Status status;
    std::size_t bytes = 0;  // read into / written from the caller's buffer
  };

  // A server stream on `fd`; throws tls::Error when OpenSSL cannot make one (out of memory).
  Stream(std::shared_ptr<const ServerContext> context, int fd);
  // A client stream on `fd`, offering options.destination's cached session if there is one;
  // throws tls::Error (out of memory, a server name OpenSSL refuses, TLSA records of which
  // OpenSSL takes none: pass dns::usable_tlsa() ones; TLSA records without a base domain).
  Stream(std::shared_ptr<ClientContext> context, int fd, ClientOptions options);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Ok once the handshake is done; WantRead/WantWrite; Failed (garbage, a refused protocol,
  // the peer went away).
  Status handshake();
  // Up to `size` bytes, from as many records as are here: Ok with bytes > 0 (possibly fewer,
  // the rest needs the socket), WantRead/WantWrite with none, Closed, Failed.
  Result read(char* buffer, std::size_t size);
  // Ok with the bytes taken (maybe fewer than size), or a Want/Failed with none. A retry after
  // a Want passes the same bytes again (at a moved address and with more after them is fine).
  Result write(const char* data, std::size_t size);
  // Decrypted bytes wait inside OpenSSL (epoll will not say so).
  bool pending() const;
  // Sends close_notify if the socket takes it now; no waiting for the peer's.
  void shutdown();
  // What the handshake agreed on and the peer's certificate; after handshake() gave Ok.
  SessionInfo info() const;
  bool resumed() const;  // info().resumed, without the rest
  // Whether relay_clientcerts of the context this stream started with trusts `info`'s
  // certificate: it verified and its fingerprint is listed. Always false on the client side.
  bool client_trusted(const SessionInfo& info) const;
  const std::string& reason() const { return reason_; }

 private:
  void attach(SSL_CTX* ctx, int fd);
  void enable_dane(const ClientOptions& options);
  Status status_of(int ret, const char* what);

  std::shared_ptr<const ServerContext> server_;  // one of these two
  std::shared_ptr<ClientContext> client_;
  std::string destination_;  // client: where a new session goes (SSL's app data points here)
  bool dane_ = false;        // client: ClientOptions::tlsa was not empty
  SSL* ssl_ = nullptr;
  std::string reason_;
};

}  // namespace estafette::tls
