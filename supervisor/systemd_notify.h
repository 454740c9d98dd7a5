// systemd_notify.h: sd_notify(3) without libsystemd. Under systemd with Type=notify,
// NOTIFY_SOCKET names a datagram socket: estafetted sends "READY=1" once every daemon is up,
// "RELOADING=1" while a reload replaces them and "STATUS=..." lines, so `systemctl start` and
// `systemctl reload` wait for the truth. Without NOTIFY_SOCKET it does nothing. Any thread.
#pragma once

#include <string>
#include <string_view>

namespace estafette::supervisor {

class SystemdNotifier final {
 public:
  // Takes $NOTIFY_SOCKET and removes it from the environment: the daemons, and the programs
  // estafette-local runs for aliases, must not inherit it.
  SystemdNotifier();
  // Sends `state` ("READY=1\nSTATUS=running"); false when there is no socket or the send failed
  // (errno set). An abstract socket is named with a leading '@'.
  bool notify(std::string_view state) const;

 private:
  std::string socket_;
};

}  // namespace estafette::supervisor
