// parse.cc: the pure parts of checks.h: DNS-list answer filters and query names, the IDENT reply
// parser, result texts. No I/O; table-tested in tests/unit/checks/parse_test.cc and fuzzed by
// tests/fuzz/ident_reply_fuzz.cc.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "lib/checks/checks.h"
#include "lib/checks/ip.h"

namespace estafette::checks {

namespace {

constexpr std::size_t kMaxIdentLine = 1000;
constexpr std::size_t kMaxUser = 64;
constexpr std::size_t kMaxOs = 32;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// A decimal number of 1..digits digits, nothing else; false otherwise.
bool parse_number(std::string_view s, std::size_t digits, unsigned long& out) {
  if (s.empty() || s.size() > digits) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Printable ASCII that cannot break out of a header comment or an address: everything else
// becomes '?'. At most max characters.
std::string sanitise(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    bool ok = c > ' ' && c < 0x7f && !std::strchr("()<>[]{}\"'`@\\", c);
    out += ok ? c : '?';
  }
  return out;
}

}  // namespace

const char* to_string(RdnsStatus status) {
  switch (status) {
    case RdnsStatus::Off:
      return "off";
    case RdnsStatus::Confirmed:
      return "confirmed";
    case RdnsStatus::Unconfirmed:
      return "unconfirmed";
    case RdnsStatus::NoPtr:
      return "no-ptr";
    case RdnsStatus::TempFail:
      return "tempfail";
  }
  return "?";
}

const char* to_string(IdentStatus status) {
  switch (status) {
    case IdentStatus::Off:
      return "off";
    case IdentStatus::Ok:
      return "ok";
    case IdentStatus::NoUser:
      return "no-user";
    case IdentStatus::Refused:
      return "refused";
    case IdentStatus::Timeout:
      return "timeout";
    case IdentStatus::Error:
      return "error";
  }
  return "?";
}

// --- DNS lists

std::optional<AnswerFilter> AnswerFilter::parse(std::string_view text) {
  AnswerFilter f;
  f.text_ = std::string(text);
  if (text.empty()) return f;
  std::string_view rest = text;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (rest.empty() || rest.front() != '.') return std::nullopt;
      rest.remove_prefix(1);
    }
    std::vector<std::pair<int, int>> ranges;
    auto number = [&rest](int& out) {
      std::size_t n = 0;
      while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
      unsigned long v = 0;
      if (!parse_number(rest.substr(0, n), 3, v) || v > 255) return false;
      out = static_cast<int>(v);
      rest.remove_prefix(n);
      return true;
    };
    if (!rest.empty() && rest.front() == '[') {
      rest.remove_prefix(1);
      for (;;) {
        int lo = 0, hi = 0;
        if (!number(lo)) return std::nullopt;
        hi = lo;
        if (rest.starts_with("..")) {
          rest.remove_prefix(2);
          if (!number(hi) || hi < lo) return std::nullopt;
        }
        ranges.emplace_back(lo, hi);
        if (rest.starts_with(";")) {
          rest.remove_prefix(1);
          continue;
        }
        if (rest.starts_with("]")) {
          rest.remove_prefix(1);
          break;
        }
        return std::nullopt;
      }
    } else {
      int v = 0;
      if (!number(v)) return std::nullopt;
      ranges.emplace_back(v, v);
    }
    f.octets_.push_back(std::move(ranges));
  }
  if (!rest.empty()) return std::nullopt;
  return f;
}

std::string dnsbl_filter_error(std::string_view where, std::string_view filter) {
  if (AnswerFilter::parse(filter)) return "";
  return std::string(where) + ": bad answer filter '" + std::string(filter) +
         "' (expected e.g. 127.0.0.2 or 127.0.0.[2..11])";
}

bool AnswerFilter::matches(std::string_view ipv4) const {
  unsigned char a[4];
  std::string text(ipv4);
  if (::inet_pton(AF_INET, text.c_str(), a) != 1) return false;
  if (octets_.empty()) return true;
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& ranges = octets_[i];
    if (std::none_of(ranges.begin(), ranges.end(),
                     [v = int{a[i]}](const auto& r) { return v >= r.first && v <= r.second; }))
      return false;
  }
  return true;
}

std::string dnsbl_query_name(std::string_view ip, std::string_view zone) {
  if (!zone.empty() && zone.back() == '.') zone.remove_suffix(1);
  if (zone.empty() || zone.front() == '.') return "";
  auto addr = parse_ip(ip);
  if (!addr) return "";
  const auto& a = addr->bytes;
  std::string out;
  if (addr->length == 4) {
    for (int i = 3; i >= 0; --i) out += std::to_string(a[i]) + ".";
  } else {
    static const char kHex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
      out += kHex[a[i] & 0xf];
      out += '.';
      out += kHex[a[i] >> 4];
      out += '.';
    }
  }
  return out.append(zone);
}

std::string DnsblResult::reply_text() const {
  const DnsListHit* best = nullptr;
  for (const auto& hit : hits) {
    if (hit.weight > 0 && (!best || hit.weight > best->weight)) best = &hit;
  }
  return best ? best->reply : "";
}

// --- IDENT

IdentResult parse_ident_reply(std::string_view line, std::uint16_t client_port,
                              std::uint16_t server_port) {
  IdentResult error{IdentStatus::Error, "", ""};
  if (line.size() > kMaxIdentLine) return error;
  // <port-pair> : <type> : <rest>
  std::size_t c1 = line.find(':');
  if (c1 == std::string_view::npos) return error;
  std::string_view pair = line.substr(0, c1);
  std::size_t comma = pair.find(',');
  if (comma == std::string_view::npos) return error;
  unsigned long p1 = 0, p2 = 0;
  if (!parse_number(trim(pair.substr(0, comma)), 5, p1) ||
      !parse_number(trim(pair.substr(comma + 1)), 5, p2))
    return error;
  if (p1 != client_port || p2 != server_port) return error;

  std::string_view rest = line.substr(c1 + 1);
  std::size_t c2 = rest.find(':');
  if (c2 == std::string_view::npos) return error;
  std::string_view type = trim(rest.substr(0, c2));
  rest = rest.substr(c2 + 1);
  if (iequals(type, "ERROR")) {
    std::string_view what = trim(rest);
    if (what.empty()) return error;
    return IdentResult{IdentStatus::NoUser, "", ""};
  }
  if (!iequals(type, "USERID")) return error;
  // <opsys>[,<charset>] : <user-id> (the user id is everything after the third colon)
  std::size_t c3 = rest.find(':');
  if (c3 == std::string_view::npos) return error;
  std::string_view os = rest.substr(0, c3);
  os = trim(os.substr(0, os.find(',')));
  std::string_view user = trim(rest.substr(c3 + 1));
  if (os.empty() || user.empty()) return error;
  return IdentResult{IdentStatus::Ok, sanitise(user, kMaxUser), sanitise(os, kMaxOs)};
}

}  // namespace estafette::checks
