// net.h: socket set-up shared by the daemons (listening TCP/unix sockets, peer addresses).
// Any thread. Errors are thrown as std::system_error naming the address: they happen at start-up.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "lib/base/fd.h"

namespace estafette::base {

// A non-blocking, close-on-exec listening TCP socket with SO_REUSEADDR (and SO_REUSEPORT when
// reuse_port, so that several processes can share a port).
UniqueFd listen_tcp(const std::string& host, std::uint16_t port, bool reuse_port = false,
                    int backlog = 1024);

// A non-blocking listening unix stream socket with file mode `mode` whatever the umask (set on
// the socket before bind(), so no chmod by path follows: the directory may be another user's);
// a stale socket file is replaced.
UniqueFd listen_unix(const std::string& path, int backlog = 128, unsigned mode = 0600);

// A non-blocking listening unix stream socket with file mode `mode`, for a socket only one
// process may serve: a socket file nobody answers on (stale) is replaced; one where a process
// accepts (or whose backlog is full) makes it throw std::runtime_error ("... in use").
UniqueFd listen_unix_exclusive(const std::string& path, unsigned mode, int backlog = 1024);

// A non-blocking connected unix stream socket, or an invalid fd (errno set) when nobody listens.
UniqueFd connect_unix(const std::string& path);

// "1.2.3.4" / "::1" and the port of a socket address (IPv4-mapped IPv6 shown as IPv4).
std::string address_text(const sockaddr* addr, std::uint16_t* port = nullptr);

}  // namespace estafette::base
