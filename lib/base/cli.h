// cli.h: the command line every daemon shares: `[-c|--config PATH] [--fd N]`, plus -h, and
// `--processes N` and `--submit-fd N` for the programs that accept them (esmtpd, from
// estafetted).
// Pure; used by main() only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace estafette::base {

struct DaemonArgs {
  std::string config_path;    // empty: the embedded default configuration
  int fd = -1;                // --fd: the IPC socket inherited from the parent (modules)
  std::size_t processes = 1;  // --processes: this is one of N processes sharing the work
  int submit_fd = -1;         // --submit-fd: the listening local submission socket (esmtpd)
};

// Parses argv; on a bad option prints usage to stderr and returns nullopt. --processes (1 to
// 1024) and --submit-fd are accepted only when takes_processes.
std::optional<DaemonArgs> parse_daemon_args(int argc, char** argv, const char* usage,
                                            bool takes_processes = false);

}  // namespace estafette::base
