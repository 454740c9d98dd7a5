// transport.h: how mail for a local or hosted mailbox is delivered (`local_transport`, and a
// `transport=` word on a line of locals(5) or hosteddomains(5)):
//   maildir              estafette-local writes the Maildir itself (the default)
//   lmtp:unix:/path      LMTP (RFC 2033) to a server's unix socket (Dovecot's lmtp)
//   lmtp:inet:host:port  LMTP over TCP ("[v6]:port" for IPv6 addresses)
// A value type with a pure parser (no I/O); to_string() gives the canonical text, which courierd
// uses as the destination key, so one LMTP server is one destination (its limits and backoff).
// Errors: parse_transport returns nullopt and says why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace estafette::config {

// sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
inline constexpr std::size_t kMaxUnixPath = 107;

struct Transport {
  enum class Kind { Maildir, LmtpUnix, LmtpInet };
  Kind kind = Kind::Maildir;
  std::string path;  // LmtpUnix: an absolute path of at most kMaxUnixPath bytes
  std::string host;  // LmtpInet: a name or address (without brackets)
  std::uint16_t port = 0;

  bool lmtp() const { return kind != Kind::Maildir; }
  // "maildir", "lmtp:unix:/run/dovecot/lmtp", "lmtp:inet:127.0.0.1:24", "lmtp:inet:[::1]:24"
  std::string to_string() const;
  bool operator==(const Transport&) const = default;
};

std::optional<Transport> parse_transport(std::string_view text, std::string* why = nullptr);

}  // namespace estafette::config
