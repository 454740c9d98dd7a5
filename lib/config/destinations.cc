#include "lib/config/destinations.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "lib/config/config.h"
#include "lib/smtp/address.h"

namespace estafette::config {

namespace {

std::optional<std::size_t> parse_count(std::string_view s) {
  std::size_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0) return std::nullopt;
  return v;
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  return std::all_of(d.begin(), d.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

std::size_t smaller_set(std::size_t a, std::size_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

}  // namespace

DestinationLimits strictest(const DestinationLimits& a, const DestinationLimits& b) {
  DestinationLimits out;
  out.concurrency = smaller_set(a.concurrency, b.concurrency);
  out.max_rcpt = smaller_set(a.max_rcpt, b.max_rcpt);
  out.interval = std::max(a.interval, b.interval);  // the longer interval is the lower rate
  out.tls = !a.tls ? b.tls : !b.tls ? a.tls : std::max(*a.tls, *b.tls);
  out.tls_match = a.tls_match.empty() ? b.tls_match : a.tls_match;
  out.implicit_tls = a.implicit_tls ? a.implicit_tls : b.implicit_tls;
  return out;
}

namespace {
constexpr std::pair<TlsLevel, const char*> kTlsLevels[] = {
    {TlsLevel::None, "none"},          {TlsLevel::May, "may"},
    {TlsLevel::Dane, "dane"},          {TlsLevel::Encrypt, "encrypt"},
    {TlsLevel::DaneOnly, "dane-only"}, {TlsLevel::Verify, "verify"},
    {TlsLevel::Secure, "secure"},      {TlsLevel::MtaSts, "mta-sts"},
};
}  // namespace

std::optional<TlsLevel> parse_tls_level(std::string_view text) {
  for (const auto& [level, name] : kTlsLevels)
    if (text == name) return level;
  return std::nullopt;
}

const char* to_string(TlsLevel level) {
  for (const auto& [l, name] : kTlsLevels)
    if (l == level) return name;
  return "?";
}

const DestinationLimits* DestinationTable::for_domain(const std::string& domain) const {
  auto it = domains.find(domain);
  return it == domains.end() ? nullptr : &it->second;
}

const DestinationLimits* DestinationTable::for_route(const std::string& host_port) const {
  auto it = routes.find(host_port);
  return it == routes.end() ? nullptr : &it->second;
}

std::optional<std::chrono::milliseconds> parse_rate(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto n = parse_count(text.substr(0, slash));
  auto unit = text.substr(slash + 1);
  std::int64_t unit_ms = unit == "s" ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000 : 0;
  if (!n || unit_ms == 0 || *n > static_cast<std::size_t>(unit_ms)) return std::nullopt;
  return std::chrono::milliseconds(unit_ms / static_cast<std::int64_t>(*n));
}

DestinationTable parse_destinations(const std::string& text, const std::string& name) {
  DestinationTable table;
  for_each_line(text, name, [&](const std::string& where, std::string_view line) {
    auto fail = [&](const std::string& why) { throw ConfigError(where + ": " + why); };
    line = trim(line.substr(0, line.find('#')));  // a comment may follow the settings
    auto end = line.find_first_of(" \t");
    std::string dest(line.substr(0, end));
    std::string_view rest = end == std::string_view::npos ? "" : trim(line.substr(end));
    if (rest.empty()) fail("expected 'destination setting=value...'");

    DestinationLimits limits;
    while (!rest.empty()) {
      auto sp = rest.find_first_of(" \t");
      std::string_view item = rest.substr(0, sp);
      rest = sp == std::string_view::npos ? "" : trim(rest.substr(sp));
      auto eq = item.find('=');
      if (eq == std::string_view::npos)
        fail("expected setting=value, not '" + std::string(item) + "'");
      std::string key(item.substr(0, eq));
      std::string_view value = item.substr(eq + 1);
      if (key == "concurrency") {
        auto n = parse_count(value);
        if (!n) fail("concurrency: expected a positive number, not '" + std::string(value) + "'");
        limits.concurrency = *n;
      } else if (key == "rate") {
        auto interval = parse_rate(value);
        if (!interval)
          fail("rate: expected N/s, N/m or N/h (at most 1000/s), not '" + std::string(value) + "'");
        limits.interval = *interval;
      } else if (key == "max_rcpt") {
        auto n = parse_count(value);
        if (!n) fail("max_rcpt: expected a positive number, not '" + std::string(value) + "'");
        limits.max_rcpt = *n;
      } else if (key == "tls") {
        limits.tls = parse_tls_level(value);
        if (!limits.tls)
          fail(
              "tls: expected none, may, dane, encrypt, dane-only, verify, secure or mta-sts, not "
              "'" +
              std::string(value) + "'");
      } else if (key == "tls_match") {
        for (std::string_view rest_names = value; !rest_names.empty();) {
          auto comma = rest_names.find(',');
          std::string name = smtp::to_lower(std::string(rest_names.substr(0, comma)));
          rest_names = comma == std::string_view::npos ? "" : rest_names.substr(comma + 1);
          std::string_view bare = name;
          if (bare.starts_with('.')) bare.remove_prefix(1);
          if (!valid_domain(bare)) fail("tls_match: bad name '" + name + "'");
          limits.tls_match.push_back(name);
        }
        if (limits.tls_match.empty()) fail("tls_match: expected NAME,...");
      } else if (key == "implicit_tls") {
        if (value != "yes" && value != "no")
          fail("implicit_tls: expected yes or no, not '" + std::string(value) + "'");
        limits.implicit_tls = value == "yes";
      } else {
        fail("unknown setting '" + std::string(item) +
             "' (expected concurrency=N, rate=N/s|N/m|N/h, max_rcpt=N, tls=LEVEL, "
             "tls_match=NAME,... or implicit_tls=yes|no)");
      }
    }

    std::string key;
    if (dest[0] == '[' || dest.find(':') != std::string::npos) {
      auto hp = parse_host_port(dest, 25);
      if (!hp) fail("bad destination '" + dest + "' (expected a domain, [host]:port or host:port)");
      key = smtp::to_lower(hp->to_string());
      if (!table.routes.emplace(key, limits).second)
        fail("duplicate destination '" + key + "' (first at " + table.where[key] + ")");
    } else {
      key = smtp::to_lower(dest);
      if (!valid_domain(key)) fail("bad domain '" + dest + "'");
      if (!table.domains.emplace(key, limits).second)
        fail("duplicate destination '" + key + "' (first at " + table.where[key] + ")");
    }
    table.where[key] = where;
  });
  return table;
}

}  // namespace estafette::config
