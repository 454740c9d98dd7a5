// passwd_file.h: the data of the `file:` auth backend (auth_backend = file:/etc/estafette/passwd)
// and password hashing with libcrypt (libxcrypt: yescrypt, SHA-512-crypt, bcrypt, ...).
//
// Format: one "user:HASH" per line, '#' comments and blank lines ignored; fields after HASH
// (":uid:gid:..." as in Dovecot's passwd-file) are ignored. HASH is a crypt(3) string, optionally
// prefixed by a Dovecot scheme name that means crypt(3): {CRYPT}, {SHA512-CRYPT}, {BLF-CRYPT}
// or {SHA256-CRYPT}; or a SCRAM-SHA-256 secret in Dovecot's form, "{SCRAM-SHA-256}ITER,SALT,
// STOREDKEY,SERVERKEY" (scram.h; ITER from 4096 to 1000000), which serves SCRAM-SHA-256 and, by
// PBKDF2 of the password, PLAIN and LOGIN. Plaintext ({PLAIN}, {CLEAR}) and anything libcrypt
// does not take are refused when the file loads, naming the line but never echoing its content.
//
// parse()/load() are pure apart from reading the file. verify_password() and hash_password()
// BLOCK for the hash's cost (tens of ms for yescrypt): call them on a worker thread, never on a
// loop. All functions are thread-safe. Errors: parse/load return nullopt with a message;
// hash_password throws std::runtime_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/auth/scram.h"

namespace estafette::auth {

// One user's entry: a crypt(3) hash, or a SCRAM-SHA-256 secret.
struct PasswdEntry {
  std::string crypt_hash;  // without a scheme prefix; "" for a SCRAM entry
  std::optional<ScramSecret> scram;
};

class PasswdFile final {
 public:
  // nullopt on the first bad line: *error says "line N: why".
  static std::optional<PasswdFile> parse(std::string_view text, std::string* error);
  // Reads path (a regular file of at most 16 MiB) and parses it; *error names the path.
  static std::optional<PasswdFile> load(const std::string& path, std::string* error);

  // user's entry; nullptr when unknown.
  const PasswdEntry* entry_of(std::string_view user) const;
  // The crypt(3) hash of user (without a scheme prefix); nullptr when unknown or a SCRAM entry.
  const std::string* hash_of(std::string_view user) const;
  std::size_t size() const { return entries_.size(); }
  // Some entry has a SCRAM-SHA-256 secret (the file backend then offers SCRAM-SHA-256).
  bool has_scram() const { return scram_entries_ > 0; }
  // The iteration count most SCRAM entries use (kMinScramIterations when none): what a fake
  // secret for an unknown user says, so that it looks like the others.
  std::uint32_t usual_scram_iterations() const { return usual_iterations_; }
  // The key of fake_scram_secret() for users without a SCRAM entry: SHA-256 of the file's
  // text, which holds random salts and keys, so outsiders cannot compute it; the same in every
  // esmtpd process and across restarts (a per-process random key would give an unknown user
  // a different salt on each process, which a real user never gets). It changes with the file.
  const std::string& fake_scram_key() const { return fake_scram_key_; }
  // Lines whose hash uses a method libcrypt calls legacy (DES, MD5, ...): accepted, but
  // check-config warns about them.
  const std::vector<std::size_t>& legacy_lines() const { return legacy_lines_; }

 private:
  std::unordered_map<std::string, PasswdEntry> entries_;
  std::vector<std::size_t> legacy_lines_;
  std::size_t scram_entries_ = 0;
  std::uint32_t usual_iterations_ = kMinScramIterations;
  std::string fake_scram_key_;
};

// Whether user can be a passwd file's user name: 1 to 255 bytes, no ':', no space, no control
// character (parse refuses the same).
bool valid_passwd_user(std::string_view user);

// True when password matches the crypt(3) hash (the outputs compared in constant time). False
// for a hash libcrypt does not take. Blocks (see above).
bool verify_password(std::string_view password, const std::string& hash);

// The text of path, a regular file of at most 16 MiB (the auth files: passwd, sender_login_map);
// nullopt with *error "path: why" otherwise. Blocking file I/O.
std::optional<std::string> read_auth_file(const std::string& path, std::string* error);

// A hash to check the password of an unknown user against, so that the time taken does not
// tell unknown users from known ones: yescrypt of random bytes, made once per process.
const std::string& dummy_hash();

// A new hash for `estafette passwd`: yescrypt ($y$, Debian's default), or SHA-512-crypt ($6$)
// where libcrypt has no yescrypt; libcrypt's default cost, random salt from the OS. Throws
// std::runtime_error (std::invalid_argument for a password with NUL).
std::string hash_password(std::string_view password);

}  // namespace estafette::auth
