// status_file.h: what estafetted tells `estafette status` about its children. estafetted rewrites
// <state>/run/estafetted.children (write to a temporary file, rename) whenever a child starts or
// exits; `estafette status` reads it. One line per child:
//   <program> <instance>/<instances> <pid> <state> [<note>]
// with state "running" or "down" (pid 0; waiting to be restarted, or stopping) and a free-text
// note (how it last exited). Pure formatting and parsing, any thread; write_status_file() does
// the file I/O and reports failure by returning false (errno set).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace estafette::daemon {

struct ChildStatus {
  std::string program;  // "estafette-esmtpd"
  std::size_t instance = 1;
  std::size_t instances = 1;
  pid_t pid = 0;     // 0: not running
  std::string note;  // e.g. "killed by signal 9; restarting in 500ms"; no newline
  bool operator==(const ChildStatus&) const = default;
};

std::string format_status(const std::vector<ChildStatus>& children);
// Lines that do not parse are skipped (a reader never fails on a file from another version).
std::vector<ChildStatus> parse_status(const std::string& text);

bool write_status_file(const std::string& path, const std::vector<ChildStatus>& children);

}  // namespace estafette::daemon
