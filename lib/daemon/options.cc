#include "lib/daemon/options.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace estafette::daemon {

namespace {
constexpr std::size_t kMaxListenFds = 256;

std::optional<int> parse_fd(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  long fd = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0' || fd < 0 || fd > 65535) return std::nullopt;
  return static_cast<int>(fd);
}
}  // namespace

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
    } else if (((a == "--fd" && accepted.fd) || (a == "--submit-fd" && accepted.processes) ||
                a == "--ready-fd") &&
               has_value) {
      auto fd = parse_fd(argv[++i]);
      if (!fd) {
        std::fprintf(stderr, "%s: bad %s value\n", argv[0], argv[i - 1]);
        return std::nullopt;
      }
      (a == "--fd" ? args.fd : a == "--ready-fd" ? args.ready_fd : args.submit_fd) = *fd;
    } else if (a == "--listen-fds" && has_value && accepted.processes) {
      std::string_view list = argv[++i];
      args.listen_fds.clear();
      while (true) {
        auto comma = list.find(',');
        auto fd = parse_fd(std::string(list.substr(0, comma)));
        if (!fd || args.listen_fds.size() >= kMaxListenFds) {
          std::fprintf(stderr, "%s: bad --listen-fds value\n", argv[0]);
          return std::nullopt;
        }
        args.listen_fds.push_back(*fd);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
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
