// scram.h: the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) for SMTP AUTH, and the stored
// secret it checks against, in Dovecot's passwd-file format ("{SCRAM-SHA-256}ITER,SALT,
// STOREDKEY,SERVERKEY", base64, what `doveadm pw -s SCRAM-SHA-256` prints).
//
// ScramServer is a pure state machine over the decoded SASL messages: client-first in, the
// session fetches the user's secret (the auth backend), server-first out, client-final in, the
// proof checked against StoredKey (constant time), server-final ("v=...") out. No I/O, no clock,
// no randomness of its own: the server nonce is given (scram_server_nonce() makes one).
// Channel binding (-PLUS) is not offered: a client-first with "p=" is refused. The user name
// and the password are used as they come (no SASLprep), as Dovecot does.
// derive_scram_secret(), verify_scram_password() and hash_scram_password() run PBKDF2 and BLOCK
// for `iterations` rounds: call them off the event loop. Everything is thread-safe; errors are
// return values (reasons never echo a secret or a proof); only the random-byte makers throw
// std::runtime_error when the OS has none.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace estafette::auth {

inline constexpr std::string_view kScramMechanism = "SCRAM-SHA-256";
inline constexpr std::string_view kScramScheme = "{SCRAM-SHA-256}";
// RFC 7677 section 4 asks for at least 4096; more than a million rounds would make a PLAIN login
// against such an entry take seconds of a worker thread.
inline constexpr std::uint32_t kMinScramIterations = 4096;
inline constexpr std::uint32_t kMaxScramIterations = 1'000'000;
inline constexpr std::size_t kScramSaltSize = 16;  // what doveadm writes
inline constexpr std::size_t kMaxScramSalt = 64;
// A decoded client message (client-first, client-final) is at most this long.
inline constexpr std::size_t kMaxScramMessage = 2048;
inline constexpr std::size_t kMaxScramNonce = 256;  // the client's part of the nonce
inline constexpr std::size_t kMaxScramUser = 255;   // decoded, as PLAIN's fields

using ScramKey = std::array<unsigned char, 32>;  // a SHA-256 output

struct ScramSecret {
  std::uint32_t iterations = 0;
  std::string salt;  // raw bytes
  ScramKey stored_key{};
  ScramKey server_key{};
  bool operator==(const ScramSecret&) const = default;
};

// What the auth backend has for a SCRAM user name.
struct ScramLookup {
  enum class Kind {
    Found,        // secret is the user's
    Unknown,      // no such user, or one without a SCRAM secret: secret is a fake, always 535
    Unavailable,  // the backend cannot answer now: 454 4.7.0
  };
  Kind kind = Kind::Unavailable;
  ScramSecret secret;
};

// The text after "{SCRAM-SHA-256}": "ITER,SALT_B64,STOREDKEY_B64,SERVERKEY_B64". nullopt with
// *error (never the text) when malformed or the iteration count is outside the bounds above.
std::optional<ScramSecret> parse_scram_secret(std::string_view text, std::string* error);
// The whole passwd-file field: kScramScheme + "ITER,SALT,STOREDKEY,SERVERKEY".
std::string format_scram_secret(const ScramSecret& secret);
// PBKDF2-HMAC-SHA-256 of the password, then RFC 5802's StoredKey and ServerKey. Blocks.
ScramSecret derive_scram_secret(std::string_view password, std::string_view salt,
                                std::uint32_t iterations);
// True when password gives the secret's StoredKey (compared in constant time). Blocks.
bool verify_scram_password(std::string_view password, const ScramSecret& secret);
// A new passwd-file field for `estafette passwd --scheme scram-sha-256`: random 16-byte salt,
// kMinScramIterations rounds. Blocks; throws std::runtime_error without random bytes,
// std::invalid_argument for a password with NUL.
std::string hash_scram_password(std::string_view password);
// A secret for a user the backend does not know (or knows without SCRAM): salt and keys are an
// HMAC of the user name under `key` (secret, the same in every process: the file backend's is
// PasswdFile::fake_scram_key()), so server-first looks the same for the same name each time
// and does not tell unknown users from known ones.
ScramSecret fake_scram_secret(std::string_view key, std::string_view user,
                              std::uint32_t iterations);
// The server's part of the nonce: base64 of 18 random bytes. Throws std::runtime_error.
std::string scram_server_nonce();

class ScramServer final {
 public:
  enum class Verdict {
    Malformed,  // 501 5.5.2; reason says why
    Accepted,   // the proof is good: send server_final(), then 235
    Refused,    // wrong proof or unknown user: 535 5.7.8
  };

  // The decoded client-first-message. False (and *reason) when malformed or asking for
  // channel binding; then the exchange is over.
  bool client_first(std::string_view message, std::string* reason);
  // After a good client_first(): the user to look up. An authzid ("a=") other than the user
  // makes client_final() Refused, as PLAIN's does (535, not 501).
  const std::string& username() const { return username_; }
  // The server-first-message for the looked-up secret (`known`: Kind::Found) and the server's
  // nonce part (printable, no ','). Call once, after a good client_first().
  std::string server_first(const ScramSecret& secret, bool known, std::string_view server_nonce);
  // The decoded client-final-message.
  Verdict client_final(std::string_view message, std::string* reason);
  // After Accepted: "v=" + base64(ServerSignature).
  const std::string& server_final() const { return server_final_; }

 private:
  enum class Step { ClientFirst, ServerFirst, ClientFinal, Done };
  Step step_ = Step::ClientFirst;
  std::string gs2_header_;    // "n,," or "y,,a=user,"
  std::string first_bare_;    // client-first-message-bare
  std::string server_first_;  // as sent
  std::string nonce_;         // client nonce + server nonce
  std::string username_;
  bool authzid_ok_ = true;
  ScramSecret secret_;
  bool known_ = false;
  std::string server_final_;
};

// The client side, for esmtpclient's AUTH to a smarthost (RFC 5802 without channel binding,
// "n,,"). A pure state machine over the decoded messages, except that server_first() runs PBKDF2
// for the server's iteration count: it BLOCKS, which is why a count over
// kMaxScramClientIterations is refused (a hostile server must not stall the caller's loop); a
// count below kMinScramIterations too (RFC 7677 4). The nonce is given (scram_server_nonce()
// makes a good one). server_final() checks the server's signature: a server that cannot prove it
// knows the secret is refused even if it says 235.
inline constexpr std::uint32_t kMaxScramClientIterations = 100'000;

class ScramClient final {
 public:
  ScramClient(std::string user, std::string password, std::string nonce);
  ~ScramClient();  // wipes the password and the keys
  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;

  // "n,,n=USER,r=NONCE" (',' and '=' in the user escaped as =2C and =3D).
  std::string client_first();
  // The client-final-message for the decoded server-first, or nullopt and *reason (a nonce that
  // does not extend ours, a bad salt, an iteration count out of bounds, a mandatory extension).
  std::optional<std::string> server_first(std::string_view message, std::string* reason);
  // True when the decoded server-final is "v=" and the server's signature; false and *reason
  // for "e=..." or a wrong signature.
  bool server_final(std::string_view message, std::string* reason);

 private:
  std::string user_;
  std::string password_;
  std::string nonce_;
  std::string first_bare_;
  std::string auth_message_;
  ScramKey server_key_{};
  bool answered_ = false;  // server_first() produced the client-final
};

}  // namespace estafette::auth
