// ip.h: client and server addresses in normalised binary form for the connection checks:
// IPv4 as 4 bytes, IPv6 as 16, and an IPv4-mapped IPv6 address ("::ffff:1.2.3.4") as IPv4, so
// that addresses compare equal whatever form they were written in. Pure; any thread.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace estafette::checks {

struct IpAddress {
  int length = 0;  // 4 or 16
  std::array<unsigned char, 16> bytes{};

  bool operator==(const IpAddress& other) const = default;
  int family() const { return length == 4 ? AF_INET : AF_INET6; }
  std::string text() const;  // "127.0.0.1", "::1"
  // A socket address for connect()/bind(); returns its length.
  socklen_t to_sockaddr(std::uint16_t port, sockaddr_storage& out) const;
};

std::optional<IpAddress> parse_ip(std::string_view text);  // nullopt when malformed

}  // namespace estafette::checks
