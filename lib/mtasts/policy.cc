#include "lib/mtasts/policy.h"

#include <charconv>

namespace estafette::mtasts {
namespace {

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}
bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim_wsp(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

// sts-ext-name / sts-policy-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
bool is_ext_name(std::string_view s) {
  if (s.empty() || s.size() > 32 || !is_alnum(s[0])) return false;
  for (char c : s)
    if (!is_alnum(c) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

// sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E)
bool is_ext_value(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e || c == ';' || c == '=') return false;
  }
  return true;
}

// Whether a TXT record claims to be MTA-STS's: it begins with "v=STSv1" and then ends, or goes
// on with whitespace or ';' (3.1: other records are discarded).
bool is_sts_record(std::string_view r) {
  constexpr std::string_view kVersion = "v=STSv1";
  if (!r.starts_with(kVersion)) return false;
  return r.size() == kVersion.size() || r[kVersion.size()] == ';' || is_wsp(r[kVersion.size()]);
}

// "name: value" where the policy needs a host-name pattern: labels of letters, digits, '-' and
// '_' (1..63 each), an optional "*." as the whole leftmost label.
std::optional<std::string> mx_pattern(std::string_view v) {
  std::string_view rest = v;
  std::string out;
  if (rest.starts_with("*.")) {
    out = "*.";
    rest.remove_prefix(2);
  }
  auto name = normalize_domain(rest);
  if (!name || rest.ends_with('.')) return std::nullopt;  // no trailing dot in a pattern
  if (name->find('.') == std::string::npos && !out.empty()) return std::nullopt;  // "*.com"
  return out + *name;
}

}  // namespace

const char* to_string(Mode mode) {
  switch (mode) {
    case Mode::None:
      return "none";
    case Mode::Testing:
      return "testing";
    case Mode::Enforce:
      return "enforce";
  }
  return "?";
}

std::optional<std::string> normalize_domain(std::string_view domain) {
  if (domain.ends_with('.')) domain.remove_suffix(1);
  if (domain.empty() || domain.size() > 253) return std::nullopt;
  std::string out;
  out.reserve(domain.size());
  std::size_t label = 0;
  for (char c : domain) {
    if (c == '.') {
      if (label == 0) return std::nullopt;
      label = 0;
    } else if (is_alnum(c) || c == '-' || c == '_') {
      if (++label > 63) return std::nullopt;
    } else {
      return std::nullopt;
    }
    out += lower(c);
  }
  if (label == 0) return std::nullopt;
  return out;
}

TxtResult parse_txt_record(std::string_view record) {
  TxtResult r;
  if (!is_sts_record(record)) {
    r.reason = "not a v=STSv1 record";
    return r;
  }
  std::string_view rest = record.substr(7);  // after "v=STSv1"
  bool have_id = false;
  while (true) {
    rest = trim_wsp(rest);
    if (rest.empty()) break;
    if (rest.front() != ';') {
      r.reason = "malformed record (expected ';')";
      return r;
    }
    rest.remove_prefix(1);
    rest = trim_wsp(rest);
    if (rest.empty()) break;  // a trailing delimiter
    std::size_t end = rest.find(';');
    std::string_view field = trim_wsp(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    std::size_t eq = field.find('=');
    if (eq == std::string_view::npos) {
      r.reason = "malformed field (no '=')";
      return r;
    }
    std::string_view name = trim_wsp(field.substr(0, eq));
    std::string_view value = trim_wsp(field.substr(eq + 1));
    if (name == "id") {
      if (value.empty() || value.size() > 32) {
        r.reason = "bad id (1 to 32 letters and digits)";
        return r;
      }
      for (char c : value) {
        if (!is_alnum(c)) {
          r.reason = "bad id (1 to 32 letters and digits)";
          return r;
        }
      }
      if (!have_id) r.id = std::string(value);  // of repeated fields the first counts
      have_id = true;
    } else if (!is_ext_name(name) || !is_ext_value(value)) {
      r.reason = "malformed field";
      return r;
    }
  }
  if (!have_id) {
    r.reason = "no id field";
    return r;
  }
  r.ok = true;
  return r;
}

TxtResult parse_txt_records(const std::vector<std::string>& records) {
  const std::string* found = nullptr;
  std::size_t count = 0;
  for (const auto& record : records) {
    if (!is_sts_record(record)) continue;
    found = &record;
    ++count;
  }
  TxtResult none;
  if (count == 0) {
    none.reason = kNoStsRecord;
    return none;
  }
  if (count > 1) {
    none.reason = std::to_string(count) + " v=STSv1 TXT records (RFC 8461 3.1: none is used)";
    return none;
  }
  return parse_txt_record(*found);
}

PolicyResult parse_policy(std::string_view body) {
  PolicyResult r;
  if (body.size() > kMaxPolicySize) {
    r.reason = "policy larger than 64 KiB";
    return r;
  }
  bool have_version = false, have_mode = false, have_max_age = false;
  std::size_t line_number = 0;
  while (!body.empty()) {
    ++line_number;
    std::size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    auto fail = [&](const std::string& why) {
      r.reason = "line " + std::to_string(line_number) + ": " + why;
      return r;
    };
    if (trim_wsp(line).empty()) continue;  // blank lines (a trailing one is common) say nothing
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail("not a key: value line");
    std::string_view key = line.substr(0, colon);
    std::string_view value = trim_wsp(line.substr(colon + 1));
    for (char c : line)
      if (c == '\r' || c == '\0') return fail("control character");
    if (key == "version") {
      if (have_version) continue;
      if (value != "STSv1") return fail("version is not STSv1");
      have_version = true;
    } else if (key == "mode") {
      if (have_mode) continue;
      if (value == "enforce")
        r.policy.mode = Mode::Enforce;
      else if (value == "testing")
        r.policy.mode = Mode::Testing;
      else if (value == "none")
        r.policy.mode = Mode::None;
      else
        return fail("mode is not enforce, testing or none");
      have_mode = true;
    } else if (key == "max_age") {
      if (have_max_age) continue;
      std::uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || value.size() > 10 ||
          n > kMaxMaxAge)
        return fail("max_age is not a number from 0 to 31557600");
      r.policy.max_age = static_cast<std::uint32_t>(n);
      have_max_age = true;
    } else if (key == "mx") {
      auto pattern = mx_pattern(value);
      if (!pattern) return fail("mx is not a host name or *.domain pattern");
      if (r.policy.mx.size() >= kMaxMxPatterns) return fail("more than 100 mx lines");
      r.policy.mx.push_back(std::move(*pattern));
    } else if (!is_ext_name(key)) {
      return fail("malformed key");
    }  // other keys: extensions, ignored
  }
  if (!have_version)
    r.reason = "no version: STSv1";
  else if (!have_mode)
    r.reason = "no mode";
  else if (!have_max_age)
    r.reason = "no max_age";
  else if (r.policy.mode != Mode::None && r.policy.mx.empty())
    r.reason = "no mx";
  else
    r.ok = true;
  return r;
}

std::string format_policy(const Policy& policy) {
  std::string out = "version: STSv1\nmode: ";
  out += to_string(policy.mode);
  out += '\n';
  for (const auto& mx : policy.mx) out += "mx: " + mx + '\n';
  out += "max_age: " + std::to_string(policy.max_age) + '\n';
  return out;
}

bool mx_matches(std::string_view pattern, std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  auto equal = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (lower(a[i]) != lower(b[i])) return false;
    return true;
  };
  if (!pattern.starts_with("*.")) return !host.empty() && equal(pattern, host);
  std::string_view suffix = pattern.substr(1);  // ".example.net"
  if (host.size() <= suffix.size()) return false;
  std::string_view first = host.substr(0, host.size() - suffix.size());
  return first.find('.') == std::string_view::npos &&
         equal(host.substr(host.size() - suffix.size()), suffix);
}

bool mx_allowed(const Policy& policy, std::string_view host) {
  for (const auto& pattern : policy.mx)
    if (mx_matches(pattern, host)) return true;
  return false;
}

}  // namespace estafette::mtasts
