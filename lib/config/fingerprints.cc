#include "lib/config/fingerprints.h"

#include <cctype>

#include "lib/config/config.h"
#include "lib/config/values.h"

namespace estafette::config {
namespace {
constexpr std::size_t kSha256Bytes = 32;
}  // namespace

std::string canonical_fingerprint(std::string_view text) {
  // Either 64 hex digits, or 32 pairs with a ':' between each: no mixing, no other separator.
  const bool colons = text.find(':') != std::string_view::npos;
  const std::size_t expected = colons ? kSha256Bytes * 3 - 1 : kSha256Bytes * 2;
  if (text.size() != expected) return {};
  std::string out;
  out.reserve(kSha256Bytes * 3 - 1);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (colons && i % 3 == 2) {
      if (c != ':') return {};
      continue;
    }
    if (!std::isxdigit(static_cast<unsigned char>(c))) return {};
    if (!colons && i > 0 && i % 2 == 0) out += ':';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (colons && i % 3 == 1 && i + 1 < text.size()) out += ':';
  }
  return out;
}

Fingerprints parse_fingerprints(const std::string& text, const std::string& name) {
  Fingerprints out;
  for_each_line(text, name, [&](const std::string& where, std::string_view body) {
    std::size_t end = 0;
    while (end < body.size() && !std::isspace(static_cast<unsigned char>(body[end]))) ++end;
    std::string_view word = body.substr(0, end);
    std::string canonical = canonical_fingerprint(word);
    if (canonical.empty())
      fail(where, "'" + std::string(word.substr(0, 100)) +
                      "' is not a SHA-256 fingerprint (AA:BB:... with 32 pairs, or 64 hex digits)");
    out.insert(std::move(canonical));
  });
  return out;
}

Fingerprints load_fingerprints(const std::string& path) {
  return parse_fingerprints(read_file(path), path);  // read_file: ConfigError "path: ..."
}

}  // namespace estafette::config
