// crash_record.cc: the fatal-signal record of estafette-filterhost (see crash_record.h).
#include "filterhost/crash_record.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

namespace estafette::filterhost {

namespace {

// Process-wide for the signal handler (crash_record.h says why).
char g_path[256];
char g_context[256] = "outside any module call";
volatile std::sig_atomic_t g_context_len = 23;

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGILL:
      return "SIGILL";
    case SIGFPE:
      return "SIGFPE";
    case SIGABRT:
      return "SIGABRT";
    case SIGALRM:
      return "SIGALRM: the loop was blocked too long";
    default:
      return "?";
  }
}

void append(char* buf, std::size_t& len, std::size_t cap, const char* text, std::size_t n) {
  if (n > cap - len) n = cap - len;
  std::memcpy(buf + len, text, n);
  len += n;
}

void on_fatal(int sig) {
  char line[600];
  std::size_t len = 0;
  const std::size_t cap = sizeof line;
  append(line, len, cap, "signal ", 7);
  char digits[12];
  std::size_t nd = 0;
  for (int v = sig; v > 0 && nd < sizeof digits; v /= 10)
    digits[nd++] = static_cast<char>('0' + v % 10);
  while (nd > 0) append(line, len, cap, &digits[--nd], 1);
  append(line, len, cap, " (", 2);
  const char* name = signal_name(sig);
  append(line, len, cap, name, std::strlen(name));
  append(line, len, cap, ") in ", 5);
  append(line, len, cap, g_context, static_cast<std::size_t>(g_context_len));
  append(line, len, cap, "\n", 1);
  if (g_path[0] != '\0') {
    int fd = ::open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      (void)!::write(fd, line, len);
      ::close(fd);
    }
  }
  (void)!::write(2, line, len);
  // Die of the same signal: the supervisor sees (and logs) what it was.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_crash_record(const std::string& path) {
  std::size_t n = std::min(path.size(), sizeof g_path - 1);
  std::memcpy(g_path, path.data(), n);
  g_path[n] = '\0';
  struct sigaction sa {};
  sa.sa_handler = on_fatal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM})
    ::sigaction(sig, &sa, nullptr);
}

void set_context(std::string_view text) {
  g_context_len = 0;  // the handler sees an empty context, never half of one
  std::size_t n = std::min(text.size(), sizeof g_context - 1);
  std::memcpy(g_context, text.data(), n);
  g_context_len = static_cast<std::sig_atomic_t>(n);
}

void clear_context() {
  set_context("outside any module call");
}

std::string take_previous(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  ::unlink(path.c_str());
  std::string line(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

}  // namespace estafette::filterhost
