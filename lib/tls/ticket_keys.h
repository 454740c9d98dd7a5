// ticket_keys.h: the TLS session-ticket keys every esmtpd process shares, so that a ticket one
// process issued resumes in any other (with SO_REUSEPORT a returning client lands in another
// process N-1 times in N). The keys live in a file of kTicketKeyBytes random bytes (OpenSSL's
// SSL_CTX_set_tlsext_ticket_keys layout: name 16, HMAC 32, AES 32) in esmtpd's run directory,
// mode 0600, owned by the user esmtpd runs as.
// Whoever finds the file missing, short or older than half of max_age (tls_session_timeout)
// writes new keys under an flock, so processes starting or rotating together agree on one set;
// a ticket made with the old keys then gets a full handshake, never an error.
// Hostile file system: the file is opened without following a symlink and refused (tls::Error)
// unless it is a regular file with one link, owned by this process's euid (or by `owner` when
// root creates it for that user) and with no permission for group or others.
// Blocking file I/O (small): at start and on reload, not per connection. Any thread.
#pragma once

#include <sys/types.h>
#include <array>
#include <chrono>
#include <optional>
#include <string>

namespace estafette::tls {

inline constexpr std::size_t kTicketKeyBytes = 80;
using TicketKeys = std::array<unsigned char, kTicketKeyBytes>;

struct FileOwner {
  uid_t uid;
  gid_t gid;
};

// The keys in `path`, made or renewed as above. `owner`: when this process is root, the file
// is given to this user (esmtpd reads the keys again after it drops to it). Throws tls::Error.
TicketKeys shared_ticket_keys(const std::string& path, std::chrono::seconds max_age,
                              std::optional<FileOwner> owner = std::nullopt);

}  // namespace estafette::tls
