// client_tls.h: the client side of TLS for estafette-bench's source (lib/tls has the server
// side only). ClientContext: one SSL_CTX per run, no certificate verification (the targets are
// loopback test instances with self-signed certificates), TLS 1.2 and 1.3; with resumption on,
// it keeps the newest session the server handed out (serialized) (TLS 1.3 ticket or TLS 1.2
// session) and offers it on every later connection. ClientStream: one connection over a connected,
// non-blocking socket, same contract as tls::Stream (nothing blocks; Want* says what the socket
// must allow next).
// Loop thread of the source only. The owner keeps the fd; the context must outlive its streams.
// Errors: the constructors throw tls::Error (OpenSSL out of memory); afterwards Failed with
// reason().
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "lib/tls/stream.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

namespace estafette::bench {

class ClientContext final {
 public:
  // max_version: TLS1_2_VERSION or TLS1_3_VERSION.
  ClientContext(bool resume, int max_version);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  bool resume() const { return resume_; }
  // The session to offer next (DER, i2d_SSL_SESSION), empty when none yet.
  const std::vector<unsigned char>& session() const { return session_; }
  bool has_session() const { return !session_.empty(); }

 private:
  static int on_new_session(SSL* ssl, SSL_SESSION* session);

  SSL_CTX* ctx_ = nullptr;
  bool resume_;
  std::vector<unsigned char> session_;
};

class ClientStream final {
 public:
  using Status = tls::Stream::Status;
  using Result = tls::Stream::Result;

  ClientStream(ClientContext& context, int fd, const std::string& server_name);
  ~ClientStream();
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

  Status handshake();
  Result read(char* buffer, std::size_t size);  // reads until the socket has no more
  Result write(const char* data, std::size_t size);
  bool resumed() const;
  // Sends close_notify if the socket takes it now (so that neither side drops the session).
  void shutdown();
  const std::string& reason() const { return reason_; }

 private:
  Status status_of(int ret, const char* what);

  SSL* ssl_ = nullptr;
  std::string reason_;
};

}  // namespace estafette::bench
