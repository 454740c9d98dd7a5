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
// max_rcpt=N (recipients per transaction, instead of MAXRCPT); and for esmtpclient tls=LEVEL
// (instead of tls_policy: none, may, dane, encrypt, dane-only, verify, secure, mta-sts; Postfix's
// smtp_tls_security_level
// names), tls_match=NAME,... (the names verify and secure check the certificate against, instead
// of the MX host name or the next-hop domain; ".example.com" matches any name below it),
// implicit_tls=yes|no (TLS from the first byte, as on port 465; the default for port 465).
// Errors: ConfigError "file:line: reason" (bad destination, unknown or malformed setting,
// duplicate destination).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::config {

// Outbound TLS, weakest first (the order strictest() relies on). none: no STARTTLS; may:
// STARTTLS when offered, a failed handshake retried in plaintext; dane: DANE (RFC 7672) where
// the MX host has usable DNSSEC-signed TLSA records, else may; encrypt: TLS or defer;
// dane-only: DANE or defer; verify: a trusted certificate for the MX host name (or route
// host); secure: a trusted certificate for the next-hop domain (or a name below it), whatever
// DNS says the MX host is.
// MtaSts: an enforced MTA-STS policy (RFC 8461) is required, even with mta_sts = no; a domain
// without one is deferred (4.7.5), never sent under a weaker rule.
enum class TlsLevel { None, May, Dane, Encrypt, DaneOnly, Verify, Secure, MtaSts };
std::optional<TlsLevel> parse_tls_level(std::string_view text);
const char* to_string(TlsLevel level);

struct DestinationLimits {
  std::size_t concurrency = 0;              // 0: MAXHOST
  std::chrono::milliseconds interval{0};    // least time between two starts; 0: no rate
  std::size_t max_rcpt = 0;                 // 0: MAXRCPT
  std::optional<TlsLevel> tls = {};         // nullopt: tls_policy
  std::vector<std::string> tls_match = {};  // lower-case; empty: the level's own names
  std::optional<bool> implicit_tls = {};    // nullopt: yes for port 465
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
