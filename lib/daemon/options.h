// options.h: the command line every daemon shares: `[-c|--config PATH]` and `--ready-fd N` (a
// pipe from the supervisor: readiness.h), plus, for the daemons that accept them, `--fd N` (the
// IPC socket a module inherits from courierd), `--processes N`, `--submit-fd N` and
// `--listen-fds N,N,...` (esmtpd, from estafetted) and `-f` (estafetted: stay in the foreground).
// Pure but for the usage text on stderr; used by daemon::run() (daemon.h) only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace estafette::daemon {

struct DaemonArgs {
  std::string config_path;    // empty: the embedded default configuration
  int fd = -1;                // --fd: the IPC socket inherited from the parent (modules)
  std::size_t processes = 1;  // --processes: this is one of N processes sharing the work
  int submit_fd = -1;         // --submit-fd: the listening local submission socket (esmtpd)
  bool foreground = false;    // -f: do not detach (estafetted)
  int ready_fd = -1;          // --ready-fd: where to say "ready" or why not (readiness.h)
  // --listen-fds: the listening sockets of the `listen` addresses, in config order, bound by
  // estafetted (esmtpd then binds nothing itself); empty: bind them.
  std::vector<int> listen_fds;
};

// The options a daemon accepts besides -c/--config.
struct OptionSet {
  bool fd = true;           // --fd N
  bool processes = false;   // --processes N (1 to 1024), --submit-fd N and --listen-fds
  bool foreground = false;  // -f
};

// Parses argv; on a bad option or value prints "usage: ARGV0 USAGE" (or "ARGV0: bad OPTION
// value") to stderr and returns nullopt.
std::optional<DaemonArgs> parse_daemon_args(int argc, char** argv, const char* usage,
                                            OptionSet accepted);

}  // namespace estafette::daemon
