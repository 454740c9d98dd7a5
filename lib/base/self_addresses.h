// self_addresses.h: is a next hop ourselves? The addresses and ports our esmtpd listens on, so
// that esmtpclient refuses to deliver to an MX or route that leads back to us (a mail loop:
// Postfix's "mail for DOMAIN loops back to myself").
// A listen host that is a wildcard ("", 0.0.0.0, ::) stands for every address of this host on
// that port: the addresses of its interfaces (getifaddrs), all of 127.0.0.0/8 (Linux answers the
// whole block on lo) and ::1. An IPv4-mapped IPv6 address counts as the IPv4 address.
// The class is an immutable value, any thread; its constructor is pure (the caller gives the
// interface addresses). load_self_addresses() reads them and resolves listen host names with
// getaddrinfo (blocking: call it at start-up); an interface list that cannot be read counts as
// empty (the loopback block and the exact listen addresses still count). Nothing throws.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace estafette::base {

struct ListenEndpoint {
  std::string host;  // numeric address, wildcard, or (load_self_addresses only) a name
  std::uint16_t port = 25;
};

// The canonical text of a numeric IPv4/IPv6 address ("::ffff:1.2.3.4" -> "1.2.3.4"), or nullopt.
std::optional<std::string> canonical_ip(std::string_view ip);

class SelfAddresses final {
 public:
  SelfAddresses() = default;
  // `listen` hosts are numeric or wildcards (others are ignored); `interfaces` are numeric.
  SelfAddresses(const std::vector<ListenEndpoint>& listen,
                const std::vector<std::string>& interfaces);

  // True when a connection to ip:port would reach one of our listeners.
  bool contains(std::string_view ip, std::uint16_t port) const;
  bool empty() const { return exact_.empty() && wildcard_ports_.empty(); }

 private:
  std::set<std::pair<std::string, std::uint16_t>> exact_;
  std::set<std::uint16_t> wildcard_ports_;
  std::set<std::string> interfaces_;
};

// This host's interface addresses (getifaddrs), canonical text; empty when they cannot be read.
std::vector<std::string> interface_addresses();

// SelfAddresses of `listen` with host names resolved and this host's interfaces.
SelfAddresses load_self_addresses(const std::vector<ListenEndpoint>& listen);

}  // namespace estafette::base
