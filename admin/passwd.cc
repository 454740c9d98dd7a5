#include "admin/passwd.h"

#include <fcntl.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "lib/auth/passwd_file.h"
#include "lib/auth/passwd_update.h"
#include "lib/auth/sasl.h"
#include "lib/auth/scram.h"
#include "lib/base/fd.h"
#include "lib/base/io.h"

namespace estafette::admin {

namespace {

// The signal that interrupted a password read. A handler can only talk through such a
// variable; it is set only while one read runs, on the one thread of the tool.
volatile std::sig_atomic_t g_caught_signal = 0;

void note_signal(int sig) {
  g_caught_signal = sig;
}

constexpr std::array<int, 5> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};

// While alive: echo off on a terminal and the signals above caught (no SA_RESTART, so that a
// read returns EINTR); both restored in the destructor, then a caught signal is raised again.
class EchoOff final {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    g_caught_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = note_signal;
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
    if (::tcgetattr(fd_, &saved_) != 0) return;
    struct termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK);
    quiet.c_lflag |= ECHONL;  // the newline still shows, so the next prompt starts a line
    active_ = ::tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;
  ~EchoOff() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
    for (std::size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
    if (int sig = g_caught_signal) {
      g_caught_signal = 0;
      ::raise(sig);
    }
  }
  bool active() const { return active_; }

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
  std::array<struct sigaction, kSignals.size()> old_{};
};

enum class LineRead { Ok, End, TooLong, Interrupted, Error };

// One line from fd, without its "\n" (and a "\r" before it), into line (reserved up front so
// that no copy of the secret is left behind by a reallocation). End: nothing before EOF.
LineRead read_line(int fd, std::string& line) {
  line.clear();
  line.reserve(kMaxPasswordLength + 1);
  bool any = false;
  for (;;) {
    char c = 0;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) {
      if (g_caught_signal) return LineRead::Interrupted;
      continue;
    }
    if (n < 0) return LineRead::Error;
    if (n == 0) return any ? LineRead::Ok : LineRead::End;
    any = true;
    if (c == '\n') break;
    if (line.size() > kMaxPasswordLength) continue;  // read the rest of the line, keep nothing
    line.push_back(c);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line.size() > kMaxPasswordLength ? LineRead::TooLong : LineRead::Ok;
}

// Why `password` cannot be used, or nullptr.
const char* bad_password(const std::string& password) {
  if (password.empty()) return "an empty password is not accepted";
  if (password.size() > kMaxPasswordLength) return "the password is longer than 1024 bytes";
  if (password.find('\0') != std::string::npos) return "the password contains a NUL byte";
  return nullptr;
}

const char* read_error(LineRead r) {
  switch (r) {
    case LineRead::End:
      return "no password given (end of input)";
    case LineRead::TooLong:
      return "the password is longer than 1024 bytes";
    case LineRead::Interrupted:
      return "interrupted";
    default:
      return "cannot read the password";
  }
}

// The new password, or nullopt with *why.
std::optional<std::string> read_password(bool from_stdin, const char** why) {
  std::string first;
  if (from_stdin) {
    LineRead r = read_line(STDIN_FILENO, first);
    if (r != LineRead::Ok) {
      auth::wipe_secret(first);
      *why = read_error(r);
      return std::nullopt;
    }
    return first;
  }
  base::UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
  if (!tty) {
    *why = "no terminal to read the password from (use --stdin)";
    return std::nullopt;
  }
  std::string second;
  const char* failed = nullptr;
  {
    EchoOff quiet(tty.get());
    if (!quiet.active()) {
      failed = "cannot turn off echo on the terminal";
    } else {
      base::write_all(tty.get(), "New password: ");
      LineRead r = read_line(tty.get(), first);
      if (r == LineRead::Ok) {
        base::write_all(tty.get(), "Retype new password: ");
        r = read_line(tty.get(), second);
      }
      if (r != LineRead::Ok) failed = read_error(r);
    }
  }  // echo back on before anything else is printed
  if (!failed && first != second) failed = "the passwords do not match";
  auth::wipe_secret(second);
  if (failed) {
    auth::wipe_secret(first);
    *why = failed;
    return std::nullopt;
  }
  return first;
}

}  // namespace

int passwd(const PasswdOptions& options, std::FILE* out, std::FILE* err) {
  if (options.file.empty() || options.user.empty()) return 2;
  if (!auth::valid_passwd_user(options.user)) {
    std::fprintf(err,
                 "estafette passwd: a user name is 1 to 255 bytes without ':', spaces or "
                 "control characters\n");
    return 1;
  }
  std::string hash;
  if (!options.remove) {
    const char* why = nullptr;
    auto password = read_password(options.from_stdin, &why);
    if (!password) {
      std::fprintf(err, "estafette passwd: %s\n", why);
      return 1;
    }
    why = bad_password(*password);
    if (!why) {
      try {
        hash =
            options.scram ? auth::hash_scram_password(*password) : auth::hash_password(*password);
      } catch (const std::exception& e) {
        std::fprintf(err, "estafette passwd: %s\n", e.what());
        auth::wipe_secret(*password);
        return 1;
      }
    }
    auth::wipe_secret(*password);
    if (why) {
      std::fprintf(err, "estafette passwd: %s\n", why);
      return 1;
    }
  }
  try {
    auto change =
        auth::update_passwd_file(options.file, options.user, options.remove ? nullptr : &hash);
    const char* what = change == auth::PasswdChange::Added      ? "added to"
                       : change == auth::PasswdChange::Replaced ? "changed in"
                       : change == auth::PasswdChange::Deleted  ? "removed from"
                                                                : nullptr;
    if (!what) {
      std::fprintf(err, "estafette passwd: %s: no user %s\n", options.file.c_str(),
                   options.user.c_str());
      return 1;
    }
    std::fprintf(out, "estafette passwd: %s %s %s\n", options.user.c_str(), what,
                 options.file.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(err, "estafette passwd: %s\n", e.what());
    return 1;
  }
}

}  // namespace estafette::admin
