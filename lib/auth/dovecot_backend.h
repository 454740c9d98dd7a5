// dovecot_backend.h: the `dovecot:` auth backend (auth_backend = dovecot:/path/to/auth-client):
// credentials checked by a running Dovecot over its auth-client socket, the protocol Postfix's
// smtpd_sasl_type = dovecot speaks (dovecot_protocol.h), asynchronously on the event loop.
//
// One connection, opened on the first verify() and again after it is lost; requests made while
// the handshake runs are sent after its DONE. Each request is PLAIN with the initial response
// (the session has the credentials, whatever mechanism the SMTP client used), service=smtp,
// nologin, the client's addresses and `secured` under TLS.
// SCRAM-SHA-256 is not offered with this backend (the exchange is not proxied to Dovecot).
// Answers: OK -> Accepted with Dovecot's user=; FAIL -> Refused, or Unavailable when Dovecot says
// the failure is temporary; no answer within `timeout`, Dovecot down, a lost connection, a
// handshake without PLAIN or another major version, or a line over 16 KiB -> Unavailable (the
// session answers 451 4.7.0 and goes on).
// Bounds: at most `max_pending` requests wait; more are Unavailable at once. Input is buffered up
// to one line of kMaxLineLength.
// Loop thread only; Done runs on the loop thread, never inside verify(), never after
// destruction. Errors are logged under "auth" (never a password).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "lib/auth/backend.h"
#include "lib/base/fd.h"
#include "lib/event/loop.h"

namespace estafette::auth {

class DovecotBackend final : public Backend {
 public:
  struct Options {
    std::string socket_path;
    std::chrono::milliseconds timeout{10000};
    std::size_t max_pending = 256;
  };

  DovecotBackend(event::Loop& loop, Options options);
  ~DovecotBackend() override;
  DovecotBackend(const DovecotBackend&) = delete;
  DovecotBackend& operator=(const DovecotBackend&) = delete;

  void verify(Credentials credentials, const ClientInfo& client, Done done) override;
  // SCRAM-SHA-256 is not proxied to Dovecot (yet): not offered, and a lookup is Unavailable.
  bool offers_scram() const override { return false; }
  void scram_secret(const std::string& user, const ClientInfo& client, ScramDone done) override;

 private:
  struct Pending {
    Done done;
    event::TimerId timer = 0;
    std::string request;  // the AUTH line, until it is sent (then wiped)
    std::string username;
  };
  bool connect();
  void on_io(std::uint32_t events);
  void on_line(std::string_view line);
  void send_waiting();  // after the handshake: every request not sent yet
  void flush();
  // The connection is gone or unusable: every pending request is Unavailable.
  void disconnect(const std::string& why);
  void finish(std::uint32_t id, Verdict verdict, const std::string& user);
  void later(Done done, Verdict verdict);  // Done from the loop, not from inside verify()

  event::Loop& loop_;
  Options options_;
  event::CallbackGuard guard_;
  base::UniqueFd fd_;
  bool handshake_done_ = false;
  bool offers_plain_ = false;
  std::string in_, out_;
  std::uint32_t next_id_ = 1;
  std::map<std::uint32_t, Pending> pending_;
};

}  // namespace estafette::auth
