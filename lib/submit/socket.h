// lib/submit/socket.h: the local submission socket <state_dir>/run/submit.sock, where
// estafette-sendmail hands messages to esmtpd (like Postfix's public/pickup). Mode 0666 so that
// any local user can reach it; esmtpd learns who did with SO_PEERCRED (smtp::ClientInfo::local_uid),
// logs it, and refuses those that submit_allowed_users does not name (lib/submit/access.h).
// estafetted opens it once and passes the listening fd to every esmtpd process (--submit-fd), so
// the backlog survives the death of any one of them; an esmtpd started alone opens it itself.
// Start-up code, any thread; errors are thrown (std::runtime_error / std::system_error).
#pragma once

#include <string>

#include "lib/base/fd.h"
#include "lib/config/config.h"

namespace estafette::submit {

inline std::string submit_socket_path(const config::Config& config) {
  return config.run_dir() + "/submit.sock";
}

// Creates the state and run directories if needed, lets every user reach the socket through
// them (adds search permission, not read), and binds a listening, non-blocking, close-on-exec
// socket: a stale socket file is replaced, one that a live process serves is an error.
base::UniqueFd open_submit_socket(const config::Config& config);

}  // namespace estafette::submit
