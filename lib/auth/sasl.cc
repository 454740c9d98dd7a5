#include "lib/auth/sasl.h"

#include <openssl/crypto.h>
#include <strings.h>

#include "lib/auth/base64.h"

namespace estafette::auth {

namespace {

constexpr std::string_view kUsernameChallenge = "VXNlcm5hbWU6";  // "Username:"
constexpr std::string_view kPasswordChallenge = "UGFzc3dvcmQ6";  // "Password:"

SaslStep malformed(std::string reason) {
  SaslStep step;
  step.kind = SaslStep::Kind::Malformed;
  step.reason = std::move(reason);
  return step;
}

SaslStep challenge(std::string_view text) {
  SaslStep step;
  step.kind = SaslStep::Kind::Challenge;
  step.challenge = text;
  return step;
}

bool field_ok(std::string_view field, bool may_be_empty) {
  if (field.size() > kMaxSaslField) return false;
  if (field.empty()) return may_be_empty;
  return field.find('\0') == std::string_view::npos;
}

}  // namespace

void wipe_secret(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

Credentials::~Credentials() {
  wipe_secret(password);
}

std::optional<Mechanism> mechanism_named(std::string_view name) {
  if (name.size() == 5 && ::strncasecmp(name.data(), "PLAIN", 5) == 0) return Mechanism::Plain;
  if (name.size() == 5 && ::strncasecmp(name.data(), "LOGIN", 5) == 0) return Mechanism::Login;
  if (name.size() == 13 && ::strncasecmp(name.data(), "SCRAM-SHA-256", 13) == 0)
    return Mechanism::ScramSha256;
  return std::nullopt;
}

std::string_view mechanism_name(Mechanism mechanism) {
  switch (mechanism) {
    case Mechanism::Plain:
      return "PLAIN";
    case Mechanism::Login:
      return "LOGIN";
    case Mechanism::ScramSha256:
      return "SCRAM-SHA-256";
  }
  return "?";
}

SaslStep SaslExchange::start(std::optional<std::string_view> initial_response) {
  if (!initial_response) {
    return mechanism_ == Mechanism::Plain ? challenge("") : challenge(kUsernameChallenge);
  }
  std::string_view text = *initial_response == "=" ? std::string_view() : *initial_response;
  auto decoded = base64_decode(text);
  if (!decoded) return malformed("initial response is not base64");
  SaslStep step = mechanism_ == Mechanism::Plain ? plain(*decoded) : login_username(*decoded);
  wipe_secret(*decoded);
  return step;
}

SaslStep SaslExchange::respond(std::string_view line) {
  if (line == "*") {
    SaslStep step;
    step.kind = SaslStep::Kind::Cancelled;
    return step;
  }
  auto decoded = base64_decode(line);
  if (!decoded) return malformed("response is not base64");
  SaslStep step;
  if (mechanism_ == Mechanism::Plain) {
    step = plain(*decoded);
  } else if (!awaiting_password_) {
    step = login_username(*decoded);
  } else if (!field_ok(*decoded, false)) {
    step = malformed("LOGIN password empty, too long or with NUL");
  } else {
    step.kind = SaslStep::Kind::Credentials;
    step.credentials.username = std::move(username_);
    step.credentials.password = *decoded;
  }
  wipe_secret(*decoded);
  return step;
}

// [authzid] NUL authcid NUL passwd (RFC 4616 section 2).
SaslStep SaslExchange::plain(std::string_view message) {
  const auto first = message.find('\0');
  if (first == std::string_view::npos) return malformed("PLAIN message without NUL");
  const auto second = message.find('\0', first + 1);
  if (second == std::string_view::npos) return malformed("PLAIN message with one NUL");
  std::string_view authzid = message.substr(0, first);
  std::string_view authcid = message.substr(first + 1, second - first - 1);
  std::string_view passwd = message.substr(second + 1);
  if (!field_ok(authzid, true) || !field_ok(authcid, false) || !field_ok(passwd, false))
    return malformed("PLAIN field empty, too long or with NUL");
  SaslStep step;
  step.kind = SaslStep::Kind::Credentials;
  step.credentials.authzid = authzid;
  step.credentials.username = authcid;
  step.credentials.password = passwd;
  return step;
}

SaslStep SaslExchange::login_username(std::string_view decoded) {
  if (!field_ok(decoded, false)) return malformed("LOGIN username empty, too long or with NUL");
  username_ = decoded;
  awaiting_password_ = true;
  return challenge(kPasswordChallenge);
}

}  // namespace estafette::auth
