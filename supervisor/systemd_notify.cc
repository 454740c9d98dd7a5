#include "supervisor/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lib/base/fd.h"

namespace estafette::supervisor {

SystemdNotifier::SystemdNotifier() {
  if (const char* path = std::getenv("NOTIFY_SOCKET")) socket_ = path;
  ::unsetenv("NOTIFY_SOCKET");
}

bool SystemdNotifier::notify(std::string_view state) const {
  const char* path = socket_.c_str();
  if (socket_.empty() || (path[0] != '/' && path[0] != '@')) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return false;
  }
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  return ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                  reinterpret_cast<const sockaddr*>(&addr),
                  size) == static_cast<ssize_t>(state.size());
}

}  // namespace estafette::supervisor
