#include "lib/admin/courierd_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace estafette::admin {

CourierdClient::CourierdClient(const std::string& socket_path, std::chrono::seconds timeout) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path)
    throw std::runtime_error("socket path too long: " + socket_path);
  fd_ = base::UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw std::runtime_error(std::string("socket: ") + base::errno_text(errno));
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    throw CourierdDown("courierd is not running (cannot connect to " + socket_path + ": " +
                       base::errno_text(errno) + ")");
}

void CourierdClient::send(const std::string& frame) {
  std::size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::send(fd_.get(), frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw std::runtime_error(std::string("write to courierd: ") + base::errno_text(errno));
    done += static_cast<std::size_t>(n);
  }
}

ipc::Frame CourierdClient::receive() {
  char buf[65536];
  for (;;) {
    if (auto f = splitter_.next()) return std::move(*f);
    if (splitter_.error()) throw std::runtime_error("malformed reply from courierd");
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      throw std::runtime_error("courierd did not answer in time");
    if (n < 0)
      throw std::runtime_error(std::string("read from courierd: ") + base::errno_text(errno));
    if (n == 0) throw std::runtime_error("courierd closed the connection");
    splitter_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

}  // namespace estafette::admin
