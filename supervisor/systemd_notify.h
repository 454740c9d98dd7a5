// systemd_notify.h: sd_notify(3) without libsystemd. Under systemd with Type=notify,
// NOTIFY_SOCKET names a datagram socket: estafetted sends "READY=1" once every daemon is up,
// "RELOADING=1" while a reload replaces them and "STATUS=..." lines, so `systemctl start` and
// `systemctl reload` wait for the truth. Without NOTIFY_SOCKET it does nothing. Any thread.
#pragma once

#include <string_view>

namespace estafette::supervisor {

// Sends `state` ("READY=1\nSTATUS=running") to $NOTIFY_SOCKET; false when it is not set or the
// send failed (errno set). An abstract socket is named with a leading '@'.
bool notify_systemd(std::string_view state);

}  // namespace estafette::supervisor
