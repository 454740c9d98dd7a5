// destinations.h: per-destination limits from the `destinations` file (courierd's scheduler).
// Pure; any thread. One line per destination, then settings, in any order:
//   # destination          settings
//   example.com            concurrency=2 rate=30/m max_rcpt=50
//   [192.0.2.10]:25        concurrency=1
//   relay.example.net:587  rate=10/s
// A domain stands for the destination its mail goes to: the MX site of its MX hosts (shared by
// every domain with the same MX hosts), or its own name when the lookup failed. "[host]",
// "[host]:port" and "host:port" name a static route or the smarthost as esmtproutes/smarthost
// give it. Settings: concurrency=N (deliveries in progress at once, instead of MAXHOST; at most
// MAXDELS), rate=N/s|N/m|N/h (deliveries started per second, minute or hour, evenly spaced: one
// delivery is one SMTP transaction, one message to its recipients at that destination),
// max_rcpt=N (recipients per transaction, instead of MAXRCPT).
// Errors: ConfigError "file:line: reason" (bad destination, unknown or malformed setting,
// duplicate destination).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace estafette::config {

struct DestinationLimits {
  std::size_t concurrency = 0;            // 0: MAXHOST
  std::chrono::milliseconds interval{0};  // least time between two starts; 0: no rate
  std::size_t max_rcpt = 0;               // 0: MAXRCPT
  bool operator==(const DestinationLimits&) const = default;
};

// Per setting the stricter of the two (the smaller one that is set): when several lines name
// destinations that turn out to be one site.
DestinationLimits strictest(const DestinationLimits& a, const DestinationLimits& b);

struct DestinationTable {
  std::map<std::string, DestinationLimits> domains;  // lower-case domain
  std::map<std::string, DestinationLimits> routes;   // lower-case HostPort::to_string()
  std::map<std::string, std::string> where;          // destination -> "file:line"

  const DestinationLimits* for_domain(const std::string& domain) const;
  const DestinationLimits* for_route(const std::string& host_port) const;
  bool empty() const { return domains.empty() && routes.empty(); }
};

// Throws ConfigError with file:line.
DestinationTable parse_destinations(const std::string& text, const std::string& name);
// "10/s", "30/m", "100/h" -> the interval between two starts; nullopt when malformed, zero or
// faster than 1000/s.
std::optional<std::chrono::milliseconds> parse_rate(std::string_view text);

}  // namespace estafette::config
