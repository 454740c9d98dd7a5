#include "lib/base/self_addresses.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>

namespace estafette::base {

namespace {

bool is_wildcard(const std::string& host) {
  return host.empty() || host == "*" || canonical_ip(host) == "0.0.0.0" ||
         canonical_ip(host) == "::";
}

// 127.0.0.0/8 and ::1: always this host, whatever the interfaces say.
bool is_loopback(const std::string& canonical) {
  return canonical.starts_with("127.") || canonical == "::1";
}

std::string text_of(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  else if (sa->sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  else
    return {};
  return canonical_ip(buf).value_or("");
}

}  // namespace

std::optional<std::string> canonical_ip(std::string_view ip) {
  std::string text(ip);
  char buf[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    ::inet_ntop(AF_INET, &v4, buf, sizeof buf);
    return std::string(buf);
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return std::nullopt;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4, &v6.s6_addr[12], sizeof v4);
    ::inet_ntop(AF_INET, &v4, buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, &v6, buf, sizeof buf);
  }
  return std::string(buf);
}

SelfAddresses::SelfAddresses(const std::vector<ListenEndpoint>& listen,
                             const std::vector<std::string>& interfaces) {
  for (const auto& l : listen) {
    if (is_wildcard(l.host))
      wildcard_ports_.insert(l.port);
    else if (auto ip = canonical_ip(l.host))
      exact_.emplace(*ip, l.port);
  }
  for (const auto& i : interfaces)
    if (auto ip = canonical_ip(i)) interfaces_.insert(*ip);
}

bool SelfAddresses::contains(std::string_view ip, std::uint16_t port) const {
  auto c = canonical_ip(ip);
  if (!c) return false;
  if (exact_.count({*c, port})) return true;
  if (!wildcard_ports_.count(port)) return false;
  return is_loopback(*c) || interfaces_.count(*c) > 0 || *c == "0.0.0.0" || *c == "::";
}

std::vector<std::string> interface_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> guard(list, ::freeifaddrs);
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    std::string text = text_of(i->ifa_addr);
    if (!text.empty()) out.push_back(std::move(text));
  }
  return out;
}

SelfAddresses load_self_addresses(const std::vector<ListenEndpoint>& listen) {
  std::vector<ListenEndpoint> numeric;
  for (const auto& l : listen) {
    if (is_wildcard(l.host) || canonical_ip(l.host)) {
      numeric.push_back(l);
      continue;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    if (::getaddrinfo(l.host.c_str(), nullptr, &hints, &res) != 0) continue;
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
    for (addrinfo* a = res; a; a = a->ai_next) {
      std::string text = text_of(a->ai_addr);
      if (!text.empty()) numeric.push_back({text, l.port});
    }
  }
  return SelfAddresses(numeric, interface_addresses());
}

}  // namespace estafette::base
