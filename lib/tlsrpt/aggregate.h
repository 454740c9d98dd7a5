// aggregate.h: SMTP TLS reporting (RFC 8460) data: what esmtpclient counts per policy (4.3, 4.4)
// and the journal lines it keeps them in until `estafette tls-report` sends them.
// Aggregate: per policy (type, policy domain, policy strings, mx hosts) the successful and failed
// sessions, and the failures per (result type, sending IP, receiving MX and IP, additional
// information). Bounded: at most Limits::policies policies and Limits::details failure rows per
// policy; what does not fit is counted in dropped() (a failure beyond the detail rows still counts
// in the policy's failure total). Every text field is cut to a bound.
// Journal: one JSON object per policy per line ("\n"), written by one esmtpclient process and read
// by the report tool, which takes it as untrusted: lines over kMaxJournalLine, malformed or out
// of bounds are refused and counted, never fatal. Pure; any thread.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::tlsrpt {

enum class PolicyType { Tlsa, Sts, NoPolicyFound };
const char* to_string(PolicyType type);  // "tlsa", "sts", "no-policy-found"
std::optional<PolicyType> parse_policy_type(std::string_view text);

// RFC 8460 4.3.
enum class ResultType {
  StarttlsNotSupported,
  CertificateHostMismatch,
  CertificateExpired,
  CertificateNotTrusted,
  ValidationFailure,
  TlsaInvalid,
  DnssecInvalid,
  DaneRequired,
  StsPolicyFetchError,
  StsPolicyInvalid,
  StsWebpkiInvalid,
};
const char* to_string(ResultType type);  // "starttls-not-supported", ...
std::optional<ResultType> parse_result_type(std::string_view text);

struct Policy {
  PolicyType type = PolicyType::NoPolicyFound;
  std::string domain;                 // the policy domain: the recipients' domain, lower case
  std::vector<std::string> strings;   // policy-string: the STS policy's lines, or TLSA records
  std::vector<std::string> mx_hosts;  // the STS policy's mx patterns, or the TLSA policy's MX
  auto operator<=>(const Policy&) const = default;
};

struct Failure {
  ResultType result = ResultType::ValidationFailure;
  std::string sending_ip;    // our address on the connection; "" when there was none
  std::string receiving_mx;  // the MX host name
  std::string receiving_ip;  // "" when no connection was made
  std::string additional;    // additional-information: why, for the receiving domain's admins
  auto operator<=>(const Failure&) const = default;
};

struct Counts {
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;
  std::map<Failure, std::uint64_t> details;
};

struct Limits {
  std::size_t policies = 10000;
  std::size_t details = 100;  // failure rows per policy
};

inline constexpr std::size_t kMaxJournalLine = 256 * 1024;
inline constexpr std::size_t kMaxText = 1024;    // any one string field, in bytes
inline constexpr std::size_t kMaxStrings = 210;  // policy strings (an STS policy: 3 + 100 mx)
inline constexpr std::uint64_t kMaxCount = 1ull << 48;  // one line's counts, each

class Aggregate final {
 public:
  explicit Aggregate(Limits limits = {}) : limits_(limits) {}

  void add_success(const Policy& policy, std::uint64_t sessions = 1);
  void add_failure(const Policy& policy, const Failure& failure, std::uint64_t sessions = 1);

  const std::map<Policy, Counts>& policies() const { return policies_; }
  bool empty() const { return policies_.empty(); }
  std::uint64_t dropped() const { return dropped_; }  // sessions or rows that did not fit
  // The policy domains present, sorted.
  std::vector<std::string> domains() const;
  void clear() { policies_.clear(); }

  // Journal lines ("\n"-terminated), one per policy.
  std::string journal() const;
  // Adds the journal lines in text (a final line without "\n" counts as a line); returns how
  // many lines were refused.
  std::size_t merge_journal(std::string_view text);

 private:
  Counts* slot(const Policy& policy);
  Limits limits_;
  std::map<Policy, Counts> policies_;
  std::uint64_t dropped_ = 0;
};

// "YYYY-MM-DD" of a Unix time, UTC: the report day (and journal file name) of a session.
std::string utc_day(std::int64_t unix_time);

// A text field as it is kept: printable ASCII (other bytes become '?'), at most kMaxText bytes.
std::string bounded_text(std::string_view text);

}  // namespace estafette::tlsrpt
