// backend.h: where esmtpd checks SMTP AUTH credentials (auth_backend): the interface the session
// uses, and the `file:` backend (a passwd file, passwd_file.h). Dovecot's auth-client socket is
// the other backend (dovecot_backend.h).
//
// Loop thread: construct, verify(), reload() and destroy there; Done runs on the loop thread,
// never inside verify(). The file backend hashes on an event::BlockingPool (yescrypt takes tens of
// ms: never on the loop), checks an unknown user against dummy_hash() so that the time taken does
// not tell unknown users from known ones, and answers Unavailable (451 4.7.0) when its queue is
// full or a check times out. A SCRAM-SHA-256 entry is checked for PLAIN/LOGIN by PBKDF2 of the
// password (also on the pool). SCRAM-SHA-256 itself (scram_secret()) needs no hashing here: the
// file backend answers from memory (posted to the loop), with a fake secret (fake_scram_secret()
// under PasswdFile::fake_scram_key()) for an unknown user or a crypt(3) one.
// Ownership: the caller keeps what Done touches alive or guards it (event::CallbackGuard);
// destruction calls no pending Done.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "lib/auth/passwd_file.h"
#include "lib/auth/sasl.h"
#include "lib/auth/scram.h"
#include "lib/event/blocking_pool.h"

namespace estafette::auth {

enum class Verdict {
  Accepted,     // 235 2.7.0
  Refused,      // 535 5.7.8: bad credentials, unknown user, or an authzid other than the user
  Unavailable,  // 451 4.7.0: the backend cannot answer now
};

// The SMTP client the credentials come from (Dovecot logs it and applies its penalties by it).
struct ClientInfo {
  std::string local_ip, remote_ip;
  std::uint16_t local_port = 0, remote_port = 0;
  bool secured = false;  // under TLS
};

class Backend {
 public:
  // user: the authenticated name (Accepted only).
  using Done = std::function<void(Verdict verdict, const std::string& user)>;
  using ScramDone = std::function<void(const ScramLookup& lookup)>;
  virtual ~Backend() = default;
  virtual void verify(Credentials credentials, const ClientInfo& client, Done done) = 0;
  // Whether scram_secret() can find secrets (the session then offers SCRAM-SHA-256).
  virtual bool offers_scram() const = 0;
  // The SCRAM-SHA-256 secret of user (the name the client gave); Done as verify()'s.
  virtual void scram_secret(const std::string& user, const ClientInfo& client, ScramDone done) = 0;
};

class FileBackend final : public Backend {
 public:
  FileBackend(event::Loop& loop, std::shared_ptr<const PasswdFile> file,
              event::BlockingPool::Options options = {
                  .threads = 2, .max_queued = 64, .timeout = std::chrono::seconds(10)});
  // A reloaded file; checks in progress finish against the one they started with.
  void reload(std::shared_ptr<const PasswdFile> file) { file_ = std::move(file); }
  void verify(Credentials credentials, const ClientInfo& client, Done done) override;
  // True while the file has a SCRAM-SHA-256 entry.
  bool offers_scram() const override { return file_->has_scram(); }
  void scram_secret(const std::string& user, const ClientInfo& client, ScramDone done) override;

 private:
  event::Loop& loop_;
  event::CallbackGuard guard_;
  std::shared_ptr<const PasswdFile> file_;
  event::BlockingPool pool_;
};

}  // namespace estafette::auth
