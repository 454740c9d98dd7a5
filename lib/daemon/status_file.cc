#include "lib/daemon/status_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <sstream>

#include "lib/base/fd.h"
#include "lib/base/io.h"

namespace estafette::daemon {

namespace {

template <typename T>
std::optional<T> number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string one_line(std::string text) {
  for (auto& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

}  // namespace

std::string format_status(const std::vector<ChildStatus>& children) {
  std::string out;
  for (const auto& c : children) {
    out += c.program + " " + std::to_string(c.instance) + "/" + std::to_string(c.instances) + " " +
           std::to_string(c.pid) + (c.pid > 0 ? " running" : " down");
    if (!c.note.empty()) out += " " + one_line(c.note);
    out += "\n";
  }
  return out;
}

std::vector<ChildStatus> parse_status(const std::string& text) {
  std::vector<ChildStatus> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string program, share, pid, state;
    if (!(fields >> program >> share >> pid >> state)) continue;
    auto slash = share.find('/');
    if (slash == std::string::npos) continue;
    auto instance = number<std::size_t>(std::string_view(share).substr(0, slash));
    auto instances = number<std::size_t>(std::string_view(share).substr(slash + 1));
    auto p = number<pid_t>(pid);
    if (!instance || !instances || !p || *p < 0) continue;
    if (state != (*p > 0 ? "running" : "down")) continue;
    ChildStatus c{program, *instance, *instances, *p, ""};
    std::getline(fields >> std::ws, c.note);
    out.push_back(std::move(c));
  }
  return out;
}

bool write_status_file(const std::string& path, const std::vector<ChildStatus>& children) {
  // run/ is the unprivileged user's: never write through a name it may have planted.
  return base::replace_file(path, format_status(children), 0644);
}

}  // namespace estafette::daemon
