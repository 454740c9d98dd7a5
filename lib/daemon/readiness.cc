#include "lib/daemon/readiness.h"

#include <cerrno>

#include "lib/base/io.h"

namespace estafette::daemon {

namespace {
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxReadyReport)) {
    auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  return out;
}
}  // namespace

void ReadyReporter::send(const std::string& line) {
  if (!fd_) return;
  // A pipe takes up to PIPE_BUF bytes at once; a reader that went away gets EPIPE (ignored).
  base::write_all(fd_.get(), line);
  fd_.reset();
}

void ReadyReporter::ready() {
  send("ready\n");
}

void ReadyReporter::failed(std::string_view why) {
  std::string line = "error " + printable(why.substr(0, kMaxReadyReport - 7));
  send(line + "\n");
}

ReadyReport parse_ready_report(std::string_view bytes, bool eof) {
  ReadyReport r;
  auto nl = bytes.find('\n');
  if (nl == std::string_view::npos) {
    if (bytes.size() >= kMaxReadyReport) {
      r.state = ReadyReport::State::Failed;
      r.error = "unreadable start-up report: " + printable(bytes.substr(0, 80));
    } else if (eof) {
      r.state = ReadyReport::State::Failed;
      r.error = printable(bytes.starts_with("error ") ? bytes.substr(6) : bytes);
    }
    return r;
  }
  std::string_view line = bytes.substr(0, nl);
  r.state = ReadyReport::State::Failed;
  if (line == "ready")
    r.state = ReadyReport::State::Ready;
  else if (line.starts_with("error "))
    r.error = printable(line.substr(6));
  else
    r.error = "unreadable start-up report: " + printable(line.substr(0, 80));
  return r;
}

}  // namespace estafette::daemon
