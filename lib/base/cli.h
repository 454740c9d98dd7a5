// cli.h: the command line every daemon shares: `[-c|--config PATH] [--fd N]`, plus -h.
// Pure; used by main() only.
#pragma once

#include <optional>
#include <string>

namespace estafette::base {

struct DaemonArgs {
  std::string config_path;  // empty: the embedded default configuration
  int fd = -1;              // --fd: the IPC socket inherited from the parent (modules)
};

// Parses argv; on a bad option prints usage to stderr and returns nullopt.
std::optional<DaemonArgs> parse_daemon_args(int argc, char** argv, const char* usage);

}  // namespace estafette::base
