// status_file.h: what estafetted tells `estafette status` about its children. estafetted rewrites
// <state>/run/estafetted.children (write to a temporary file, rename) whenever a child starts or
// exits; `estafette status` reads it. One line per child:
//   <program> <instance>/<instances> <pid> <state> [<note>]
// with state "running" (it said it was ready), "starting" (not yet), "draining" (replaced by a
// reload, finishing its work) or "down" (pid 0; waiting to be restarted, or stopping) and a
// free-text note (how it last exited and the reason it gave). Pure formatting and parsing, any
// thread; write_status_file() does the file I/O and reports failure by returning false (errno set).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace estafette::daemon {

enum class ChildState { Running, Starting, Draining, Down };

struct ChildStatus {
  std::string program;  // "estafette-esmtpd"
  std::size_t instance = 1;
  std::size_t instances = 1;
  pid_t pid = 0;     // 0: not running
  std::string note;  // e.g. "killed by signal 9; restarting in 500ms"; no newline
  ChildState state = ChildState::Running;  // with pid 0 always Down
  bool operator==(const ChildStatus&) const = default;
};

std::string format_status(const std::vector<ChildStatus>& children);
// Lines that do not parse are skipped (a reader never fails on a file from another version).
std::vector<ChildStatus> parse_status(const std::string& text);

bool write_status_file(const std::string& path, const std::vector<ChildStatus>& children);

// The outcome of estafetted's last reload, for `estafette reload`, which signals estafetted and
// waits for `count` to grow. One line, "<pid> <count> ok" or "<pid> <count> failed <reason>",
// in <state_dir>/estafetted.reload (the state directory is root's when `user` is set: the
// unprivileged user cannot fake an answer to the admin).
struct ReloadResult {
  pid_t pid = 0;            // the estafetted that reloaded
  std::uint64_t count = 0;  // reloads it has finished
  bool ok = false;
  std::string error;  // failed: why (one line)
  bool operator==(const ReloadResult&) const = default;
};
std::string format_reload(const ReloadResult& r);
std::optional<ReloadResult> parse_reload(const std::string& text);

}  // namespace estafette::daemon
