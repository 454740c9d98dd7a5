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

const char* state_name(ChildState s) {
  switch (s) {
    case ChildState::Running:
      return "running";
    case ChildState::Starting:
      return "starting";
    case ChildState::Draining:
      return "draining";
    case ChildState::Down:
      break;
  }
  return "down";
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
           std::to_string(c.pid) + " " + state_name(c.pid > 0 ? c.state : ChildState::Down);
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
    std::optional<ChildState> st;
    for (auto s : {ChildState::Running, ChildState::Starting, ChildState::Draining})
      if (*p > 0 && state == state_name(s)) st = s;
    if (*p == 0 && state == "down") st = ChildState::Down;
    if (!st) continue;
    ChildStatus c{program, *instance, *instances, *p, "", *st};
    std::getline(fields >> std::ws, c.note);
    out.push_back(std::move(c));
  }
  return out;
}

std::string format_reload(const ReloadResult& r) {
  return std::to_string(r.pid) + " " + std::to_string(r.count) +
         (r.ok ? " ok" : " failed " + one_line(r.error)) + "\n";
}

std::optional<ReloadResult> parse_reload(const std::string& text) {
  std::istringstream in(text);
  std::string pid, count, outcome;
  if (!(in >> pid >> count >> outcome)) return std::nullopt;
  auto p = number<pid_t>(pid);
  auto n = number<std::uint64_t>(count);
  if (!p || *p <= 0 || !n || (outcome != "ok" && outcome != "failed")) return std::nullopt;
  ReloadResult r{*p, *n, outcome == "ok", ""};
  if (!r.ok) std::getline(in >> std::ws, r.error);
  return r;
}

bool write_status_file(const std::string& path, const std::vector<ChildStatus>& children) {
  // run/ is the unprivileged user's: never write through a name it may have planted.
  return base::replace_file(path, format_status(children), 0644);
}

}  // namespace estafette::daemon
