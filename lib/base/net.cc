#include "lib/base/net.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace estafette::base {

namespace {
[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}
}  // namespace

UniqueFd listen_tcp(const std::string& host, std::uint16_t port, bool reuse_port, int backlog) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string where = host + ":" + std::to_string(port);
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(),
                         &hints, &res);
  if (rc != 0) throw std::runtime_error("listen " + where + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  UniqueFd fd(::socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail("socket for " + where);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0) fail("bind " + where);
  if (::listen(fd.get(), backlog) != 0) fail("listen " + where);
  return fd;
}

namespace {
sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) {
    errno = ENAMETOOLONG;
    fail("unix socket " + path);
  }
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  return sun;
}

// The socket file gets the socket inode's mode less the umask: set both, so the file has exactly
// `mode` from its creation on (no chmod by path afterwards, which a symlink or hard link swapped
// into a directory another user owns would redirect). The umask is the process's; the daemons
// bind before their threads start (esmtpd alone: before any thread creates a file).
void bind_with_mode(int fd, const sockaddr_un& sun, const std::string& path, unsigned mode) {
  if (::fchmod(fd, mode) != 0) fail("fchmod socket for " + path);
  mode_t old = ::umask(0);
  int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sun), sizeof sun);
  int err = errno;
  ::umask(old);
  errno = err;
  if (rc != 0) fail("bind " + path);
}
}  // namespace

UniqueFd listen_unix(const std::string& path, int backlog, unsigned mode) {
  auto sun = unix_address(path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail("socket for " + path);
  ::unlink(path.c_str());
  bind_with_mode(fd.get(), sun, path, mode);
  if (::listen(fd.get(), backlog) != 0) fail("listen " + path);
  return fd;
}

UniqueFd listen_unix_exclusive(const std::string& path, unsigned mode, int backlog) {
  auto sun = unix_address(path);
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!probe) fail("socket for " + path);
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0 ||
        errno == EAGAIN)
      throw std::runtime_error("unix socket " + path + ": in use by another process");
    if (errno == ECONNREFUSED && ::unlink(path.c_str()) != 0 && errno != ENOENT)
      fail("remove stale " + path);
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail("socket for " + path);
  bind_with_mode(fd.get(), sun, path, mode);
  if (::listen(fd.get(), backlog) != 0) fail("listen " + path);
  return fd;
}

UniqueFd connect_unix(const std::string& path) {
  auto sun = unix_address(path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) fd.reset();
  return fd;
}

std::string address_text(const sockaddr* addr, std::uint16_t* port) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    if (port) *port = ntohs(in->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
      ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof buf);
    else
      ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    if (port) *port = ntohs(in6->sin6_port);
  }
  return buf;
}

}  // namespace estafette::base
