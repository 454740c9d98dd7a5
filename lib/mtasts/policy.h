// policy.h: MTA-STS (RFC 8461) as pure functions: the `_mta-sts.<domain>` TXT record (3.1), the
// policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (3.2), and the matching
// of an MX host name against the policy's mx patterns (4.1).
// No I/O, no clock, no allocation beyond the results; any thread. The parsers take untrusted bytes
// (DNS answers, an HTTPS body, a cache file another process wrote) and are bounded: a policy body
// over kMaxPolicySize or with more than kMaxMxPatterns mx lines is refused. Errors: a result with
// ok == false and a one-line reason for logs (printable ASCII, no input echoed unbounded).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::mtasts {

inline constexpr std::size_t kMaxPolicySize = 64 * 1024;  // RFC 8461 3.3: 64 KiB at most
inline constexpr std::size_t kMaxMxPatterns = 100;
inline constexpr std::uint32_t kMaxMaxAge = 31557600;  // one year (3.2)

enum class Mode { None, Testing, Enforce };
const char* to_string(Mode mode);

// The TXT record's answer: the policy id (1 to 32 letters and digits), or why there is none.
struct TxtResult {
  bool ok = false;
  std::string id;
  std::string reason;  // !ok: "no v=STSv1 record", "2 v=STSv1 records", "bad id", ...
};

// One TXT string (the character-strings of a record concatenated) against 3.1's grammar:
// "v=STSv1" first, then ";"-separated fields, exactly one usable "id". Unknown fields are ignored.
TxtResult parse_txt_record(std::string_view record);
inline constexpr std::string_view kNoStsRecord = "no v=STSv1 TXT record";
// All TXT records of `_mta-sts.<domain>`: those that do not start with "v=STSv1" are other
// records and are skipped; more than one that does means none is usable (3.1).
TxtResult parse_txt_records(const std::vector<std::string>& records);

struct Policy {
  Mode mode = Mode::None;
  std::uint32_t max_age = 0;    // seconds
  std::vector<std::string> mx;  // patterns, lower-case, no trailing dot; "*.example.net"
};

struct PolicyResult {
  bool ok = false;
  Policy policy;
  std::string reason;
};

// The policy file: "key: value" lines ended by LF or CRLF (the last one may lack it); version
// STSv1, mode, max_age required (0..kMaxMaxAge), at least one mx unless mode is none; mx patterns
// are host names with an optional "*." as the whole leftmost label. Unknown keys are ignored; of
// a repeated key other than mx the first counts.
PolicyResult parse_policy(std::string_view body);

// The policy as a canonical file body (what parse_policy reads back to the same Policy).
std::string format_policy(const Policy& policy);

// Whether `host` (an MX host name, any case, with or without a trailing dot) matches `pattern`
// (from a Policy): equal, or "*.rest" and host is one label followed by ".rest" (4.1).
bool mx_matches(std::string_view pattern, std::string_view host);
// Whether any of the policy's patterns matches `host`.
bool mx_allowed(const Policy& policy, std::string_view host);

// Lower-case `domain` without its trailing dot when it is a plausible DNS name (letters, digits,
// '-', '_' and dots between non-empty labels of at most 63, at most 253 in all), else nullopt.
// Used for cache file names too, so it never yields '/', "." or "..".
std::optional<std::string> normalize_domain(std::string_view domain);

}  // namespace estafette::mtasts
