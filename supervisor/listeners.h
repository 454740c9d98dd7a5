// listeners.h: the listening sockets estafetted binds for esmtpd, as root and once: per `listen`
// address one socket per esmtpd process (SO_REUSEPORT: the kernel spreads new connections over
// them), handed to process i as `--listen-fds` (esmtpd/esmtpd_main.cc). They outlive any one
// esmtpd: a reload's new esmtpd i accepts on the very socket the old esmtpd i did, so nothing
// queued on it is lost, and a reload that changes `listen` binds only what is new.
// Loop thread of estafetted; a socket shared by two sets (a reload) closes with the last.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lib/base/fd.h"
#include "lib/config/config.h"

namespace estafette::supervisor {

class ListenerSet final {
 public:
  ListenerSet(std::vector<config::HostPort> addresses, std::size_t processes)
      : addresses_(std::move(addresses)), processes_(processes) {}

  // The sockets of process `copy` (1..processes), in address order; one missing is bound now.
  // Throws std::system_error naming the address (in use, not local, ...).
  std::vector<int> fds(std::size_t copy);
  // Binds every socket now: a start or reload fails on a bad address before any process starts.
  void bind_all();
  // Process `copy` ended by itself: its sockets are let go, so that new connections are not
  // queued for a process that may not come back (the next fds(copy) binds them again).
  void release(std::size_t copy);
  // The set for a new config: an address and copy both sets have keep their socket.
  std::shared_ptr<ListenerSet> successor(std::vector<config::HostPort> addresses,
                                         std::size_t processes) const;
  std::size_t processes() const { return processes_; }

 private:
  using Key = std::pair<std::string, std::size_t>;  // "host:port", copy
  std::vector<config::HostPort> addresses_;
  std::size_t processes_;
  std::map<Key, std::shared_ptr<base::UniqueFd>> sockets_;
};

// "--listen-fds" and its value for these fds ("3,4,9").
std::string fd_list(const std::vector<int>& fds);

}  // namespace estafette::supervisor
