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
  // The network itself: the address with the bits past the prefix cleared. A config that
  // writes "127.0.0.1/8" means 127.0.0.0/8 or 127.0.0.1 -- not ours to guess (Postfix skips such
  // a rule with a warning), so the config parsers refuse it (host_bits_error).
  Cidr network() const;
  bool has_host_bits() const { return network().addr_ != addr_; }

 private:
  int family_ = 0;  // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> addr_{};
  int prefix_ = 0;
};

// "" for a network without host bits, else the reason the config parsers give:
// "host bits set in '127.0.0.1/8' (the network is 127.0.0.0/8)".
std::string host_bits_error(const Cidr& network, std::string_view as_written);

bool any_contains(const std::vector<Cidr>& networks, std::string_view ip);

}  // namespace estafette::config
