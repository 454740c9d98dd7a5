#include "lib/config/cidr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace estafette::config {

namespace {
// Parses an address into 16 bytes; IPv4 as the first 4. Returns the family or 0.
int parse_ip(std::string_view text, std::array<std::uint8_t, 16>& out) {
  std::string s(text);
  out.fill(0);
  if (inet_pton(AF_INET, s.c_str(), out.data()) == 1) return AF_INET;
  if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) return AF_INET6;
  return 0;
}
}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  auto slash = text.find('/');
  c.family_ = parse_ip(text.substr(0, slash), c.addr_);
  if (c.family_ == 0) return std::nullopt;
  int max = c.family_ == AF_INET ? 32 : 128;
  c.prefix_ = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), c.prefix_);
    if (ec != std::errc() || p != digits.data() + digits.size() || c.prefix_ < 0 ||
        c.prefix_ > max || digits.empty())
      return std::nullopt;
  }
  return c;
}

bool Cidr::contains(std::string_view ip) const {
  std::array<std::uint8_t, 16> a;
  int family = parse_ip(ip, a);
  if (family == AF_INET6 && family_ == AF_INET) {
    // An IPv4-mapped IPv6 client (::ffff:1.2.3.4) matches IPv4 networks.
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!std::equal(kMapped, kMapped + 12, a.begin())) return false;
    std::copy(a.begin() + 12, a.end(), a.begin());
    family = AF_INET;
  }
  if (family != family_) return false;
  int full = prefix_ / 8, rest = prefix_ % 8;
  for (int i = 0; i < full; ++i)
    if (a[i] != addr_[i]) return false;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (addr_[full] & mask);
}

Cidr Cidr::network() const {
  Cidr n = *this;
  int bytes = family_ == AF_INET ? 4 : 16;
  for (int i = 0; i < bytes; ++i) {
    int keep = std::clamp(prefix_ - 8 * i, 0, 8);  // bits of this byte inside the prefix
    n.addr_[i] &= static_cast<std::uint8_t>(0xff00 >> keep);
  }
  return n;
}

std::string host_bits_error(const Cidr& network, std::string_view as_written) {
  if (!network.has_host_bits()) return "";
  return "host bits set in '" + std::string(as_written) + "' (the network is " +
         network.network().to_string() + ")";
}

std::string Cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family_, addr_.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_);
}

bool any_contains(const std::vector<Cidr>& networks, std::string_view ip) {
  for (const auto& n : networks)
    if (n.contains(ip)) return true;
  return false;
}

}  // namespace estafette::config
