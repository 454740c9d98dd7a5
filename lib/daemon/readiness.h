// readiness.h: how a daemon tells whoever started it that it is up, or why it is not, so that
// `estafette start` and `estafette reload` can answer truthfully instead of guessing from a pid.
// The starter passes the write end of a pipe (`--ready-fd N`, options.h); the daemon writes one
// line and closes it: "ready\n" once it serves (its sockets listen, its queue is open), or
// "error TEXT\n" just before it exits on a start-up failure (TEXT: what it printed on stderr).
// The reader (supervisor/) takes at most kMaxReadyReport bytes; EOF without a line means the
// daemon ended before it was up. The writer is any single thread; parse_ready_report is pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "lib/base/fd.h"

namespace estafette::daemon {

inline constexpr std::size_t kMaxReadyReport = 1024;

class ReadyReporter final {
 public:
  ReadyReporter() = default;
  explicit ReadyReporter(int fd) : fd_(fd) {}  // takes the fd; -1: nobody to tell
  void reset(int fd) { fd_.reset(fd); }
  // Writes "ready" and closes the pipe; later calls do nothing.
  void ready();
  // Writes "error WHY" (one line, bounded) and closes the pipe; later calls do nothing.
  void failed(std::string_view why);
  bool pending() const { return fd_.valid(); }

 private:
  void send(const std::string& line);
  base::UniqueFd fd_;
};

struct ReadyReport {
  enum class State { Waiting, Ready, Failed };
  State state = State::Waiting;
  std::string error;  // Failed: the daemon's reason (printable, at most kMaxReadyReport bytes)
};

// What the bytes read so far say. `eof`: the pipe is closed (no line: Failed with an empty
// error). Bytes beyond kMaxReadyReport, a line that is neither form, or control characters are
// the daemon's mistake or an attack: Failed, with the text made printable.
ReadyReport parse_ready_report(std::string_view bytes, bool eof);

}  // namespace estafette::daemon
