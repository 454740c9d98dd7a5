// sasl.h: the server side of SMTP AUTH's SASL exchange (RFC 4954) for PLAIN (RFC 4616) and
// LOGIN (draft-murchison-sasl-login), as a pure state machine: it is given the AUTH command's
// initial response and each client line, and says what to send or what to verify. No I/O and no
// verification here (the session asks an auth backend with the Credentials).
// Errors are steps (Cancelled, Malformed); nothing throws. Secrets are wiped on destruction.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace estafette::auth {

// ScramSha256 is named here so that the session has one list of mechanisms; its exchange is
// ScramServer (scram.h), never a SaslExchange.
enum class Mechanism { Plain, Login, ScramSha256 };

// "PLAIN", "LOGIN" or "SCRAM-SHA-256", any case; nullopt for anything else.
std::optional<Mechanism> mechanism_named(std::string_view name);
std::string_view mechanism_name(Mechanism mechanism);

// Overwrites a secret's bytes (OPENSSL_cleanse: not optimised away) and empties it.
void wipe_secret(std::string& secret);

struct Credentials {
  Credentials() = default;
  Credentials(const Credentials&) = default;
  Credentials(Credentials&&) = default;
  Credentials& operator=(const Credentials&) = default;
  Credentials& operator=(Credentials&&) = default;
  ~Credentials();  // wipes the password

  std::string authzid;   // PLAIN's authorization identity; "" = the username's own
  std::string username;  // the authentication identity
  std::string password;
};

struct SaslStep {
  enum class Kind {
    Challenge,    // send "334 " + challenge, then feed the client's line to respond()
    Credentials,  // verify credentials: 235 or 535
    Cancelled,    // the client sent "*": 501 5.0.0
    Malformed,    // not base64, or not what the mechanism allows: 501 5.5.2
  };
  Kind kind = Kind::Malformed;
  std::string challenge;  // Challenge: base64 ("" for PLAIN's empty challenge)
  Credentials credentials;
  std::string reason;  // Malformed: what was wrong, for the log (never a secret)
};

// The limits RFC 4616 sets for PLAIN (and that this applies to LOGIN too): each field at most
// 255 octets, username and password not empty, no NUL inside a field.
inline constexpr std::size_t kMaxSaslField = 255;

class SaslExchange final {
 public:
  // PLAIN or LOGIN only.
  explicit SaslExchange(Mechanism mechanism) : mechanism_(mechanism) {}

  // After "AUTH <mechanism> [initial-response]": nullopt when there was none; "=" stands for
  // an empty one (RFC 4954 section 4).
  SaslStep start(std::optional<std::string_view> initial_response);
  // The client's line (without CRLF) while a challenge is pending. "*" cancels.
  SaslStep respond(std::string_view line);

 private:
  SaslStep plain(std::string_view message);
  SaslStep login_username(std::string_view decoded);

  Mechanism mechanism_;
  bool awaiting_password_ = false;  // LOGIN: the username is in
  std::string username_;
};

}  // namespace estafette::auth
