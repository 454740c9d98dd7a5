#include "bench/kit/client_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace estafette::bench {

ClientContext::ClientContext(bool resume, int max_version) : resume_(resume) {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ctx_) throw tls::Error("SSL_CTX_new: " + tls::openssl_errors());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx_, max_version);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_app_data(ctx_, this);
  if (resume_) {
    // The callback sees each session once it is complete: for TLS 1.3 when the ticket arrives
    // after the handshake, for TLS 1.2 at its end. No internal cache: we keep the newest one.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx_, &ClientContext::on_new_session);
  } else {
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
  }
}

ClientContext::~ClientContext() {
  SSL_CTX_free(ctx_);
}

int ClientContext::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<ClientContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  // Kept serialized: each connection then resumes from its own copy, which OpenSSL may mark
  // "not resumable" (a connection freed without close_notify, a newer ticket arriving) without
  // spoiling the one we keep for the next connection.
  int size = i2d_SSL_SESSION(session, nullptr);
  if (size > 0) {
    self->session_.resize(static_cast<std::size_t>(size));
    unsigned char* at = self->session_.data();
    i2d_SSL_SESSION(session, &at);
  }
  return 0;  // OpenSSL keeps its reference
}

ClientStream::ClientStream(ClientContext& context, int fd, const std::string& server_name) {
  ERR_clear_error();
  ssl_ = SSL_new(context.ctx());
  if (!ssl_ || SSL_set_fd(ssl_, fd) != 1) {
    std::string why = tls::openssl_errors();
    if (ssl_) SSL_free(ssl_);
    throw tls::Error("SSL_new: " + why);
  }
  if (!server_name.empty()) SSL_set_tlsext_host_name(ssl_, server_name.c_str());
  if (context.resume() && context.has_session()) {
    const unsigned char* at = context.session().data();
    if (SSL_SESSION* copy =
            d2i_SSL_SESSION(nullptr, &at, static_cast<long>(context.session().size()))) {
      SSL_set_session(ssl_, copy);
      SSL_SESSION_free(copy);
    }
  }
  SSL_set_connect_state(ssl_);
}

ClientStream::~ClientStream() {
  SSL_free(ssl_);
}

ClientStream::Status ClientStream::status_of(int ret, const char* what) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      return Status::WantRead;
    case SSL_ERROR_WANT_WRITE:
      return Status::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Status::Closed;
    case SSL_ERROR_SYSCALL: {
      int e = errno;
      std::string queued = tls::openssl_errors();
      if (e == EINTR) return Status::WantRead;
      reason_ = std::string(what) + ": " +
                (!queued.empty() ? queued
                 : e             ? std::strerror(e)
                                 : "connection closed");
      return Status::Failed;
    }
    default:
      reason_ = std::string(what) + ": " + tls::openssl_errors();
      return Status::Failed;
  }
}

ClientStream::Status ClientStream::handshake() {
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

ClientStream::Result ClientStream::read(char* buffer, std::size_t size) {
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
    if (total > 0) return {Status::Ok, total};  // a close or error comes with the next read
    return {s, 0};
  }
  return {Status::Ok, total};
}

ClientStream::Result ClientStream::write(const char* data, std::size_t size) {
  ERR_clear_error();
  std::size_t put = 0;
  int r = SSL_write_ex(ssl_, data, size, &put);
  if (r == 1) return {Status::Ok, put};
  return {status_of(r, "write"), 0};
}

void ClientStream::shutdown() {
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool ClientStream::resumed() const {
  return SSL_session_reused(ssl_) == 1;
}

}  // namespace estafette::bench
