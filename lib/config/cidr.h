// cidr.h: IPv4/IPv6 networks in CIDR notation ("127.0.0.0/8", "::1", "2001:db8::/32").
// Pure; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::config {

class Cidr final {
 public:
  // nullopt for a malformed network or prefix length.
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(std::string_view ip) const;  // false for a malformed address
  std::string to_string() const;
  int prefix() const { return prefix_; }

 private:
  int family_ = 0;  // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> addr_{};
  int prefix_ = 0;
};

bool any_contains(const std::vector<Cidr>& networks, std::string_view ip);

}  // namespace estafette::config
