#include "supervisor/listeners.h"

#include "lib/base/net.h"

namespace estafette::supervisor {

std::vector<int> ListenerSet::fds(std::size_t copy) {
  std::vector<int> out;
  for (const auto& a : addresses_) {
    auto& socket = sockets_[{a.to_string(), copy}];
    if (!socket) {
      auto fd = base::listen_tcp(a.host, a.port, true);
      socket = std::make_shared<base::UniqueFd>(std::move(fd));
    }
    out.push_back(socket->get());
  }
  return out;
}

void ListenerSet::bind_all() {
  for (std::size_t copy = 1; copy <= processes_; ++copy) fds(copy);
}

void ListenerSet::release(std::size_t copy) {
  for (const auto& a : addresses_) sockets_.erase({a.to_string(), copy});
}

std::shared_ptr<ListenerSet> ListenerSet::successor(std::vector<config::HostPort> addresses,
                                                    std::size_t processes) const {
  auto next = std::make_shared<ListenerSet>(std::move(addresses), processes);
  for (const auto& a : next->addresses_)
    for (std::size_t copy = 1; copy <= processes; ++copy) {
      auto it = sockets_.find({a.to_string(), copy});
      if (it != sockets_.end()) next->sockets_[it->first] = it->second;
    }
  return next;
}

std::string fd_list(const std::vector<int>& fds) {
  std::string out;
  for (int fd : fds) out += (out.empty() ? "" : ",") + std::to_string(fd);
  return out;
}

}  // namespace estafette::supervisor
