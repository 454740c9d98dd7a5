#include "lib/auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <stdexcept>
#include <vector>

#include "lib/auth/base64.h"
#include "lib/auth/sasl.h"

namespace estafette::auth {

namespace {

constexpr std::size_t kServerNonceBytes = 18;

std::string_view as_view(const ScramKey& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

ScramKey hmac(std::string_view key, std::string_view data) {
  ScramKey out{};
  std::size_t size = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                out.size(), &size) == nullptr ||
      size != out.size())
    throw std::runtime_error("HMAC-SHA-256 failed");
  return out;
}

// RFC 5802's SaltedPassword: PBKDF2-HMAC-SHA-256. Blocks for `iterations` rounds.
ScramKey salted_password(std::string_view password, std::string_view salt,
                         std::uint32_t iterations) {
  ScramKey salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data()) != 1)
    throw std::runtime_error("PBKDF2-HMAC-SHA-256 failed");
  return salted;
}

ScramKey sha256(std::string_view data) {
  ScramKey out{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != out.size())
    throw std::runtime_error("SHA-256 failed");
  return out;
}

std::string random_bytes(std::size_t n) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("no random bytes from the OS");
  return bytes;
}

bool decode_key(std::string_view text, ScramKey* key) {
  auto raw = base64_decode(text);
  if (!raw || raw->size() != key->size()) return false;
  std::copy(raw->begin(), raw->end(), key->begin());
  return true;
}

// Splits at the first ',' (the whole rest when there is none).
std::string_view next_attribute(std::string_view& text) {
  auto comma = text.find(',');
  std::string_view attr = text.substr(0, comma);
  text.remove_prefix(comma == std::string_view::npos ? text.size() : comma + 1);
  return attr;
}

// RFC 5802 saslname: "=2C" is ',', "=3D" is '=', any other '=' is an error; no NUL or control.
std::optional<std::string> decode_saslname(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '=') {
      std::string_view escape = text.substr(i + 1, 2);
      if (escape == "2C") {
        out.push_back(',');
      } else if (escape == "3D") {
        out.push_back('=');
      } else {
        return std::nullopt;
      }
      i += 2;
      continue;
    }
    if (c < 0x20 || c == 0x7f) return std::nullopt;
    out.push_back(static_cast<char>(c));
  }
  if (out.empty() || out.size() > kMaxScramUser) return std::nullopt;
  return out;
}

// RFC 5802 "printable": %x21-7E without ','.
bool printable_nonce(std::string_view nonce) {
  if (nonce.empty() || nonce.size() > kMaxScramNonce) return false;
  for (unsigned char c : nonce)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

// An optional extension: "x=value" with x a letter.
bool extension_ok(std::string_view attr) {
  if (attr.size() < 2 || attr[1] != '=') return false;
  char c = attr[0];
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

std::optional<ScramSecret> parse_scram_secret(std::string_view text, std::string* error) {
  auto fail = [&](const char* why) {
    if (error) *error = why;
    return std::nullopt;
  };
  std::string_view iter_text = next_attribute(text);
  std::string_view salt_text = next_attribute(text);
  std::string_view stored_text = next_attribute(text);
  std::string_view server_text = next_attribute(text);
  if (server_text.empty() || !text.empty())
    return fail("SCRAM-SHA-256 secret is not ITERATIONS,SALT,STOREDKEY,SERVERKEY");
  ScramSecret secret;
  auto [end, ec] =
      std::from_chars(iter_text.data(), iter_text.data() + iter_text.size(), secret.iterations);
  if (ec == std::errc::result_out_of_range) return fail("SCRAM-SHA-256 iteration count too high");
  if (ec != std::errc() || end != iter_text.data() + iter_text.size())
    return fail("SCRAM-SHA-256 iteration count is not a number");
  if (secret.iterations < kMinScramIterations)
    return fail("SCRAM-SHA-256 iteration count below 4096");
  if (secret.iterations > kMaxScramIterations)
    return fail("SCRAM-SHA-256 iteration count above 1000000");
  auto salt = base64_decode(salt_text);
  if (!salt || salt->empty() || salt->size() > kMaxScramSalt)
    return fail("SCRAM-SHA-256 salt is not base64 of 1 to 64 bytes");
  secret.salt = std::move(*salt);
  if (!decode_key(stored_text, &secret.stored_key) || !decode_key(server_text, &secret.server_key))
    return fail("SCRAM-SHA-256 keys are not base64 of 32 bytes");
  return secret;
}

std::string format_scram_secret(const ScramSecret& secret) {
  return std::string(kScramScheme) + std::to_string(secret.iterations) + ',' +
         base64_encode(secret.salt) + ',' + base64_encode(as_view(secret.stored_key)) + ',' +
         base64_encode(as_view(secret.server_key));
}

ScramSecret derive_scram_secret(std::string_view password, std::string_view salt,
                                std::uint32_t iterations) {
  ScramKey salted = salted_password(password, salt, iterations);
  std::string_view salted_view(reinterpret_cast<const char*>(salted.data()), salted.size());
  ScramSecret secret;
  secret.iterations = iterations;
  secret.salt = salt;
  ScramKey client_key = hmac(salted_view, "Client Key");
  secret.stored_key = sha256(as_view(client_key));
  secret.server_key = hmac(salted_view, "Server Key");
  OPENSSL_cleanse(client_key.data(), client_key.size());
  OPENSSL_cleanse(salted.data(), salted.size());
  return secret;
}

bool verify_scram_password(std::string_view password, const ScramSecret& secret) {
  ScramSecret computed = derive_scram_secret(password, secret.salt, secret.iterations);
  return CRYPTO_memcmp(computed.stored_key.data(), secret.stored_key.data(),
                       secret.stored_key.size()) == 0;
}

std::string hash_scram_password(std::string_view password) {
  if (password.find('\0') != std::string_view::npos)
    throw std::invalid_argument("a password cannot contain NUL");
  return format_scram_secret(
      derive_scram_secret(password, random_bytes(kScramSaltSize), kMinScramIterations));
}

ScramSecret fake_scram_secret(std::string_view key, std::string_view user,
                              std::uint32_t iterations) {
  ScramSecret secret;
  secret.iterations = iterations;
  // One key, three uses: a label and a NUL before the name keep them apart.
  auto labelled = [&](std::string label) { return label + '\0' + std::string(user); };
  ScramKey salt = hmac(key, labelled("salt"));
  secret.salt.assign(reinterpret_cast<const char*>(salt.data()), kScramSaltSize);
  secret.stored_key = hmac(key, labelled("stored"));
  secret.server_key = hmac(key, labelled("server"));
  return secret;
}

std::string scram_server_nonce() {
  return base64_encode(random_bytes(kServerNonceBytes));
}

// gs2-header client-first-message-bare (RFC 5802 section 7).
bool ScramServer::client_first(std::string_view message, std::string* reason) {
  auto bad = [&](const char* why) {
    step_ = Step::Done;
    if (reason) *reason = why;
    return false;
  };
  if (step_ != Step::ClientFirst) return bad("SCRAM client-first out of turn");
  if (message.size() > kMaxScramMessage) return bad("SCRAM client-first too long");
  std::string_view rest = message;
  std::string_view flag = next_attribute(rest);
  if (flag.starts_with("p=")) return bad("SCRAM channel binding requested (no -PLUS offered)");
  if (flag != "n" && flag != "y") return bad("SCRAM gs2 channel-binding flag is not n or y");
  std::string_view authzid_attr = next_attribute(rest);
  std::optional<std::string> authzid;
  if (!authzid_attr.empty()) {
    if (!authzid_attr.starts_with("a=")) return bad("SCRAM gs2 header authzid is not a=");
    authzid = decode_saslname(authzid_attr.substr(2));
    if (!authzid) return bad("SCRAM authzid empty, too long or badly escaped");
  }
  const std::size_t header_size = message.size() - rest.size();
  if (header_size < 3 || message[header_size - 1] != ',') return bad("SCRAM gs2 header incomplete");
  std::string_view bare = rest;
  std::string_view user_attr = next_attribute(rest);
  if (user_attr.starts_with("m=")) return bad("SCRAM mandatory extension not supported");
  if (!user_attr.starts_with("n=")) return bad("SCRAM client-first without n=");
  auto user = decode_saslname(user_attr.substr(2));
  if (!user) return bad("SCRAM user name empty, too long or badly escaped");
  std::string_view nonce_attr = next_attribute(rest);
  if (!nonce_attr.starts_with("r=")) return bad("SCRAM client-first without r=");
  if (!printable_nonce(nonce_attr.substr(2)))
    return bad("SCRAM client nonce empty or not printable");
  if (bare.ends_with(',')) return bad("SCRAM client-first with an empty extension");
  while (!rest.empty())
    if (!extension_ok(next_attribute(rest))) return bad("SCRAM client-first extension malformed");
  gs2_header_ = message.substr(0, header_size);
  first_bare_ = bare;
  nonce_ = nonce_attr.substr(2);
  username_ = std::move(*user);
  authzid_ok_ = !authzid || *authzid == username_;
  step_ = Step::ServerFirst;
  return true;
}

std::string ScramServer::server_first(const ScramSecret& secret, bool known,
                                      std::string_view server_nonce) {
  if (step_ != Step::ServerFirst) throw std::logic_error("SCRAM server-first out of turn");
  secret_ = secret;
  known_ = known;
  nonce_ += server_nonce;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(secret.salt) +
                  ",i=" + std::to_string(secret.iterations);
  step_ = Step::ClientFinal;
  return server_first_;
}

// channel-binding "," nonce ["," extensions] "," proof (RFC 5802 section 7).
ScramServer::Verdict ScramServer::client_final(std::string_view message, std::string* reason) {
  auto bad = [&](const char* why) {
    step_ = Step::Done;
    if (reason) *reason = why;
    return Verdict::Malformed;
  };
  if (step_ != Step::ClientFinal) return bad("SCRAM client-final out of turn");
  step_ = Step::Done;
  if (message.size() > kMaxScramMessage) return bad("SCRAM client-final too long");
  const auto proof_at = message.rfind(",p=");
  if (proof_at == std::string_view::npos) return bad("SCRAM client-final without p=");
  std::string_view without_proof = message.substr(0, proof_at);
  std::string_view rest = without_proof;
  std::string_view binding = next_attribute(rest);
  if (!binding.starts_with("c=")) return bad("SCRAM client-final without c=");
  auto header = base64_decode(binding.substr(2));
  if (!header || *header != gs2_header_) return bad("SCRAM channel binding is not the gs2 header");
  std::string_view nonce_attr = next_attribute(rest);
  if (!nonce_attr.starts_with("r=")) return bad("SCRAM client-final without r=");
  // Not secret; an ordinary compare is fine.
  if (nonce_attr.substr(2) != nonce_) return bad("SCRAM nonce is not the combined nonce");
  if (without_proof.ends_with(',')) return bad("SCRAM client-final with an empty extension");
  while (!rest.empty())
    if (!extension_ok(next_attribute(rest))) return bad("SCRAM client-final extension malformed");
  auto proof = base64_decode(message.substr(proof_at + 3));
  if (!proof || proof->size() != ScramKey().size()) return bad("SCRAM proof is not 32 bytes");

  const std::string auth_message =
      first_bare_ + ',' + server_first_ + ',' + std::string(without_proof);
  ScramKey client_key = hmac(as_view(secret_.stored_key), auth_message);  // ClientSignature
  for (std::size_t i = 0; i < client_key.size(); ++i)
    client_key[i] ^= static_cast<unsigned char>((*proof)[i]);
  ScramKey stored = sha256(as_view(client_key));
  const bool match = CRYPTO_memcmp(stored.data(), secret_.stored_key.data(), stored.size()) == 0;
  OPENSSL_cleanse(client_key.data(), client_key.size());
  wipe_secret(*proof);
  if (!match || !known_ || !authzid_ok_) return Verdict::Refused;
  server_final_ = "v=" + base64_encode(as_view(hmac(as_view(secret_.server_key), auth_message)));
  return Verdict::Accepted;
}

ScramClient::ScramClient(std::string user, std::string password, std::string nonce)
    : user_(std::move(user)), password_(std::move(password)), nonce_(std::move(nonce)) {}

ScramClient::~ScramClient() {
  wipe_secret(password_);
  OPENSSL_cleanse(server_key_.data(), server_key_.size());
}

std::string ScramClient::client_first() {
  std::string name;
  for (char c : user_) {
    if (c == ',')
      name += "=2C";
    else if (c == '=')
      name += "=3D";
    else
      name += c;
  }
  first_bare_ = "n=" + name + ",r=" + nonce_;
  return "n,," + first_bare_;
}

std::optional<std::string> ScramClient::server_first(std::string_view message,
                                                     std::string* reason) {
  auto bad = [&](const char* why) -> std::optional<std::string> {
    if (reason) *reason = why;
    return std::nullopt;
  };
  if (answered_ || first_bare_.empty()) return bad("SCRAM server-first out of turn");
  if (message.size() > kMaxScramMessage) return bad("SCRAM server-first too long");
  std::string_view rest = message;
  std::string_view nonce_attr = next_attribute(rest);
  if (nonce_attr.starts_with("m=")) return bad("SCRAM mandatory extension not supported");
  if (!nonce_attr.starts_with("r=")) return bad("SCRAM server-first without r=");
  std::string_view nonce = nonce_attr.substr(2);
  if (!nonce.starts_with(nonce_) || nonce.size() == nonce_.size() || !printable_nonce(nonce))
    return bad("SCRAM server nonce does not extend ours");
  std::string_view salt_attr = next_attribute(rest);
  if (!salt_attr.starts_with("s=")) return bad("SCRAM server-first without s=");
  auto salt = base64_decode(salt_attr.substr(2));
  if (!salt || salt->empty() || salt->size() > kMaxScramSalt) return bad("SCRAM salt malformed");
  std::string_view count_attr = next_attribute(rest);
  if (!count_attr.starts_with("i=")) return bad("SCRAM server-first without i=");
  std::uint64_t iterations = 0;
  std::string_view digits = count_attr.substr(2);
  if (digits.empty() || digits.size() > 9) return bad("SCRAM iteration count malformed");
  for (char c : digits) {
    if (c < '0' || c > '9') return bad("SCRAM iteration count malformed");
    iterations = iterations * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (iterations < kMinScramIterations || iterations > kMaxScramClientIterations)
    return bad("SCRAM iteration count out of bounds (4096 to 100000)");
  while (!rest.empty())
    if (!extension_ok(next_attribute(rest))) return bad("SCRAM server-first extension malformed");
  answered_ = true;

  ScramKey salted = salted_password(password_, *salt, static_cast<std::uint32_t>(iterations));
  std::string_view salted_view(reinterpret_cast<const char*>(salted.data()), salted.size());
  ScramKey client_key = hmac(salted_view, "Client Key");
  server_key_ = hmac(salted_view, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  const ScramKey stored = sha256(as_view(client_key));
  const std::string without_proof = "c=biws,r=" + std::string(nonce);  // biws: base64("n,,")
  auth_message_ = first_bare_ + ',' + std::string(message) + ',' + without_proof;
  ScramKey proof = hmac(as_view(stored), auth_message_);  // ClientSignature
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] ^= client_key[i];
  OPENSSL_cleanse(client_key.data(), client_key.size());
  std::string out = without_proof + ",p=" + base64_encode(as_view(proof));
  OPENSSL_cleanse(proof.data(), proof.size());
  return out;
}

bool ScramClient::server_final(std::string_view message, std::string* reason) {
  auto bad = [&](std::string why) {
    if (reason) *reason = std::move(why);
    return false;
  };
  if (!answered_) return bad("SCRAM server-final out of turn");
  if (message.starts_with("e=")) {
    std::string error(message.substr(2, 64));
    for (char& c : error)
      if (c < 0x20 || c > 0x7e) c = '?';
    return bad("SCRAM server error: " + error);
  }
  if (!message.starts_with("v=")) return bad("SCRAM server-final without v=");
  std::string_view rest = message.substr(2);
  rest = rest.substr(0, rest.find(','));
  auto signature = base64_decode(rest);
  const ScramKey expected = hmac(as_view(server_key_), auth_message_);
  if (!signature || signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0)
    return bad("SCRAM server signature is wrong: the server does not know our secret");
  return true;
}

}  // namespace estafette::auth
