#include "lib/daemon/options.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace estafette::daemon {

std::optional<DaemonArgs> parse_daemon_args(int argc, char** argv, const char* usage,
                                            OptionSet accepted) {
  DaemonArgs args;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    bool has_value = i + 1 < argc;
    if ((a == "-c" || a == "--config") && has_value) {
      args.config_path = argv[++i];
    } else if (a == "-f" && accepted.foreground) {
      args.foreground = true;
    } else if (((a == "--fd" && accepted.fd) || (a == "--submit-fd" && accepted.processes)) &&
               has_value) {
      char* end = nullptr;
      long fd = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || fd < 0 || fd > 65535) {
        std::fprintf(stderr, "%s: bad %s value\n", argv[0], argv[i - 1]);
        return std::nullopt;
      }
      (a == "--fd" ? args.fd : args.submit_fd) = static_cast<int>(fd);
    } else if (a == "--processes" && has_value && accepted.processes) {
      char* end = nullptr;
      long n = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || n < 1 || n > 1024) {
        std::fprintf(stderr, "%s: bad --processes value\n", argv[0]);
        return std::nullopt;
      }
      args.processes = static_cast<std::size_t>(n);
    } else {
      std::fprintf(stderr, "usage: %s %s\n", argv[0], usage);
      return std::nullopt;
    }
  }
  return args;
}

}  // namespace estafette::daemon
