// fingerprints.h: relay_clientcerts, the file of client certificate fingerprints that may relay
// (Postfix's relay_clientcerts with permit_tls_clientcerts). Each line: the SHA-256 fingerprint
// of a certificate as "AA:BB:..." (32 pairs) or 64 plain hex digits, any case, then optionally
// white space and a note (Postfix's table value, ignored); blank lines and '#' lines are skipped.
// Pure apart from load_fingerprints' read; any thread. Errors: ConfigError "name:line: reason"
// (not a SHA-256 fingerprint), or the file that cannot be read.
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace estafette::config {

// Fingerprints in one canonical form: upper-case pairs joined by ':' ("AA:BB:...:FF").
using Fingerprints = std::set<std::string, std::less<>>;

// `text` in `name` (for errors); throws ConfigError with name:line.
Fingerprints parse_fingerprints(const std::string& text, const std::string& name);
// Reads and parses the file at `path`; throws ConfigError.
Fingerprints load_fingerprints(const std::string& path);
// One fingerprint in the canonical form, or "" when `text` is not a SHA-256 fingerprint.
std::string canonical_fingerprint(std::string_view text);

}  // namespace estafette::config
