#include "lib/auth/passwd_file.h"

#include <crypt.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>

#include "lib/auth/sasl.h"
#include "lib/base/fd.h"
#include "lib/base/lines.h"

namespace estafette::auth {

namespace {

constexpr std::size_t kMaxFileSize = 16 * 1024 * 1024;
constexpr std::size_t kMaxUserLength = 255;

// The hash without a Dovecot scheme prefix that means crypt(3); nullopt for another scheme.
std::optional<std::string_view> crypt_hash(std::string_view field) {
  if (field.empty() || field.front() != '{') return field;
  auto close = field.find('}');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view scheme = field.substr(1, close - 1);
  for (std::string_view ok : {"CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "MD5-CRYPT"})
    if (scheme == ok) return field.substr(close + 1);
  return std::nullopt;
}

// A whole hash, not only a setting (crypt_checksalt() looks at the setting only, and takes
// "hunter2" for a DES salt): "$id$...$<hash>" with something after the last '$', or a
// traditional DES hash (13 characters) or a BSDi one ("_" and 19 more).
bool looks_like_hash(std::string_view hash) {
  for (unsigned char c : hash)
    if (c < 0x21 || c == 0x7f || c == ':') return false;
  if (!hash.empty() && hash.front() == '$') return hash.back() != '$' && hash.rfind('$') > 0;
  if (!hash.empty() && hash.front() == '_') return hash.size() == 20;
  return hash.size() == 13;
}

// crypt_rn into a buffer wiped afterwards; "" when libcrypt refuses the setting.
std::string run_crypt(std::string_view password, const std::string& setting) {
  auto data = std::make_unique<crypt_data>();
  std::string phrase(password);
  std::string out;
  if (::crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof *data) != nullptr &&
      data->output[0] != '*')
    out = data->output;
  OPENSSL_cleanse(data.get(), sizeof *data);
  wipe_secret(phrase);
  return out;
}

}  // namespace

std::optional<PasswdFile> PasswdFile::parse(std::string_view text, std::string* error) {
  PasswdFile file;
  std::map<std::uint32_t, std::size_t> iteration_counts;
  {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
      if (error) *error = "SHA-256 failed";
      return std::nullopt;
    }
    file.fake_scram_key_.assign(reinterpret_cast<const char*>(digest.data()), size);
  }
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    std::string_view line = base::next_line(text);
    auto bad = [&](const char* why) {
      if (error) *error = "line " + std::to_string(line_no) + ": " + why;
      return std::nullopt;
    };
    auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return bad("expected user:hash");
    std::string_view user = line.substr(0, colon);
    std::string_view rest = line.substr(colon + 1);
    std::string_view field = rest.substr(0, rest.find(':'));
    if (!valid_passwd_user(user))
      return bad("user name empty, too long or with spaces or controls");
    if (field.starts_with(kScramScheme)) {
      std::string why;
      auto secret = parse_scram_secret(field.substr(kScramScheme.size()), &why);
      if (!secret) return bad(why.c_str());
      ++iteration_counts[secret->iterations];
      PasswdEntry entry;
      entry.scram = std::move(*secret);
      if (!file.entries_.emplace(std::string(user), std::move(entry)).second)
        return bad("user listed twice");
      ++file.scram_entries_;
      continue;
    }
    auto hash = crypt_hash(field);
    if (!hash) return bad("not a crypt(3) scheme (plaintext passwords are not accepted)");
    const std::string stored(*hash);
    if (!looks_like_hash(stored)) return bad("not a crypt(3) hash this system can check");
    switch (::crypt_checksalt(stored.c_str())) {
      case CRYPT_SALT_OK:
        break;
      case CRYPT_SALT_METHOD_LEGACY:
      case CRYPT_SALT_TOO_CHEAP:
        file.legacy_lines_.push_back(line_no);
        break;
      default:
        return bad("not a crypt(3) hash this system can check");
    }
    if (!file.entries_.emplace(std::string(user), PasswdEntry{stored, std::nullopt}).second)
      return bad("user listed twice");
  }
  std::size_t most = 0;
  for (const auto& [iterations, count] : iteration_counts) {
    if (count > most) {
      most = count;
      file.usual_iterations_ = iterations;
    }
  }
  return file;
}

std::optional<std::string> read_auth_file(const std::string& path, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = path + ": " + why;
    return std::nullopt;
  };
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) return fail(base::errno_text(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(base::errno_text(errno));
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  if (static_cast<std::size_t>(st.st_size) > kMaxFileSize) return fail("larger than 16 MiB");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(base::errno_text(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

std::optional<PasswdFile> PasswdFile::load(const std::string& path, std::string* error) {
  auto text = read_auth_file(path, error);
  if (!text) return std::nullopt;
  std::string why;
  auto file = parse(*text, &why);
  wipe_secret(*text);
  if (!file && error) *error = path + ": " + why;
  return file;
}

bool valid_passwd_user(std::string_view user) {
  if (user.empty() || user.size() > kMaxUserLength) return false;
  for (unsigned char c : user)
    if (c < 0x21 || c == 0x7f || c == ':') return false;  // no controls, no spaces
  return true;
}

const PasswdEntry* PasswdFile::entry_of(std::string_view user) const {
  auto it = entries_.find(std::string(user));
  return it == entries_.end() ? nullptr : &it->second;
}

const std::string* PasswdFile::hash_of(std::string_view user) const {
  const PasswdEntry* entry = entry_of(user);
  return entry && !entry->scram ? &entry->crypt_hash : nullptr;
}

bool verify_password(std::string_view password, const std::string& hash) {
  if (hash.empty() || hash.front() == '*' || hash.front() == '!') return false;
  std::string computed = run_crypt(password, hash);
  return !computed.empty() && computed.size() == hash.size() &&
         CRYPTO_memcmp(computed.data(), hash.data(), hash.size()) == 0;
}

const std::string& dummy_hash() {
  static const std::string hash = [] {
    std::array<unsigned char, 24> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
      throw std::runtime_error("no random bytes for the dummy password hash");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string password;
    for (unsigned char b : bytes) {
      password.push_back(kHex[b >> 4]);
      password.push_back(kHex[b & 0xf]);
    }
    std::string hash = hash_password(password);
    wipe_secret(password);
    return hash;
  }();
  return hash;
}

std::string hash_password(std::string_view password) {
  if (password.find('\0') != std::string_view::npos)
    throw std::invalid_argument("a password cannot contain NUL");
  // Named, not libcrypt's "preferred" (nullptr), so that a distribution that changes its
  // preference does not change what we write. EINVAL from gensalt: no such method here.
  for (const char* prefix : {"$y$", "$6$"}) {
    std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> setting{};
    if (::crypt_gensalt_rn(prefix, 0, nullptr, 0, setting.data(),
                           static_cast<int>(setting.size())) == nullptr) {
      if (errno == EINVAL) continue;
      throw std::runtime_error(std::string("crypt_gensalt: ") + base::errno_text(errno));
    }
    std::string out = run_crypt(password, setting.data());
    if (!out.empty()) return out;
  }
  throw std::runtime_error("crypt: neither yescrypt nor SHA-512-crypt is available");
}

}  // namespace estafette::auth
