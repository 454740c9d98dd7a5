#include "lib/submit/maildrop.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <stdexcept>

#include "lib/base/fd.h"
#include "lib/base/safe_dir.h"

namespace estafette::submit {

namespace {

constexpr std::string_view kMagic = "estafette-maildrop 1";

// An address as a record line may carry it: no control characters (they would end or split an
// SMTP command), no angle brackets, nothing but what MAIL/RCPT take between them.
bool valid_address(std::string_view a) {
  for (char ch : a) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '<' || c == '>') return false;
  }
  return true;
}

// The wire form submit() sends after DATA: lines ending in CRLF (no bare LF), each line that
// starts with "." dot-stuffed, so that nothing in it can end DATA early.
bool valid_wire(std::string_view w) {
  if (!w.empty() && !w.ends_with("\r\n")) return false;
  bool line_start = true;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (line_start && w[i] == '.') {
      if (i + 1 >= w.size() || w[i + 1] != '.') return false;
      ++i;  // the stuffed dot
      line_start = false;
      continue;
    }
    if (w[i] == '\n' && (i == 0 || w[i - 1] != '\r')) return false;
    line_start = w[i] == '\n';
  }
  return true;
}

ParsedMaildrop bad(std::string why) {
  return {std::nullopt, std::move(why)};
}

}  // namespace

void open_maildrop(const config::Config& config) {
  base::UniqueFd state(::open(config.state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string why = std::strerror(errno);
  base::UniqueFd dir;
  if (state)
    dir = base::open_dir_at(state.get(), config.state_dir, "maildrop",
                            {.create = true, .mode = 0700, .trusted = false}, &why);
  if (!dir) throw std::runtime_error("cannot create " + maildrop_dir(config) + ": " + why);
  // 1733: anyone may create a file; nobody but root may list the names or, sticky, remove or
  // rename another's file.
  if (::fchown(dir.get(), ::geteuid(), ::getegid()) != 0 || ::fchmod(dir.get(), 01733) != 0)
    throw std::runtime_error("cannot set the owner and mode of " + maildrop_dir(config) + ": " +
                             std::strerror(errno));
}

std::string format_maildrop(const MaildropEntry& e) {
  std::string out(kMagic);
  out += "\nS " + e.sender + "\n";
  for (const auto& r : e.recipients) out += "R " + r + "\n";
  if (e.eight_bit) out += "B 8BITMIME\n";
  out += "D " + std::to_string(e.wire.size()) + "\n";
  out += e.wire;
  out += "E\n";
  return out;
}

ParsedMaildrop parse_maildrop(std::string_view file, const MaildropLimits& limits) {
  MaildropEntry e;
  bool have_sender = false;
  bool first = true;
  for (;;) {
    auto nl = file.substr(0, kMaildropMaxLine + 1).find('\n');
    if (nl == std::string_view::npos)
      return bad(file.size() > kMaildropMaxLine ? "a line longer than 1000 bytes"
                                                : "truncated (no end of data)");
    std::string_view line = file.substr(0, nl);
    file.remove_prefix(nl + 1);
    if (first) {
      if (line != kMagic) return bad("not a maildrop file (no \"estafette-maildrop 1\" line)");
      first = false;
      continue;
    }
    if (line.size() < 2 || line[1] != ' ') return bad("bad record line");
    std::string_view value = line.substr(2);
    switch (line[0]) {
      case 'S':
        if (have_sender) return bad("two sender lines");
        if (!valid_address(value)) return bad("bad sender address");
        e.sender = value;
        have_sender = true;
        break;
      case 'R':
        if (value.empty() || !valid_address(value)) return bad("bad recipient address");
        if (e.recipients.size() >= limits.max_recipients)
          return bad("more than " + std::to_string(limits.max_recipients) + " recipients");
        e.recipients.emplace_back(value);
        break;
      case 'B':
        if (value != "8BITMIME") return bad("bad body type");
        e.eight_bit = true;
        break;
      case 'D': {
        if (!have_sender) return bad("no sender line");
        if (e.recipients.empty()) return bad("no recipients");
        if (value.empty() || value.size() > 19) return bad("bad data length");
        std::size_t n = 0;
        for (char c : value) {
          if (c < '0' || c > '9') return bad("bad data length");
          n = n * 10 + static_cast<std::size_t>(c - '0');
        }
        if (n > limits.max_wire)
          return bad("message too big (" + std::to_string(n) + " bytes, at most " +
                     std::to_string(limits.max_wire) + ")");
        if (file.size() < n + 2) return bad("truncated (data shorter than its length)");
        e.wire = file.substr(0, n);
        if (!valid_wire(e.wire)) return bad("the data is not dot-stuffed CRLF text");
        file.remove_prefix(n);
        if (file != "E\n") return bad("no end line after the data, or bytes after it");
        return {std::move(e), ""};
      }
      default:
        return bad("unknown record line");
    }
  }
}

bool is_maildrop_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  return true;
}

std::string write_maildrop(const std::string& dir, const MaildropEntry& entry, std::string* name) {
  auto sys = [](const std::string& what) { return what + ": " + std::strerror(errno); };
  // O_PATH: others may not read the directory (1733), only create in it.
  base::UniqueFd dfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dfd) return sys("cannot open " + dir);
  struct stat st {};
  if (::fstat(dfd.get(), &st) != 0) return sys("cannot stat " + dir);
  const uid_t me = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != me)
    return dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to root";
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    return dir + " is writable by others and has no sticky bit";
  std::timespec ts{};
  std::timespec_get(&ts, TIME_UTC);
  std::random_device rd;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%lld.%09ld.%d.%08x%08x", static_cast<long long>(ts.tv_sec),
                static_cast<long>(ts.tv_nsec), static_cast<int>(::getpid()), rd(), rd());
  const std::string final_name = buf;
  const std::string tmp_name = ".tmp." + final_name;
  base::UniqueFd fd(::openat(dfd.get(), tmp_name.c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return sys("cannot create a file in " + dir);
  const std::string text = format_maildrop(entry);
  std::string_view rest = text;
  std::string error;
  while (!rest.empty() && error.empty()) {
    ssize_t n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) error = sys("cannot write into " + dir);
    if (n > 0) rest.remove_prefix(static_cast<std::size_t>(n));
  }
  if (error.empty() && ::fsync(fd.get()) != 0) error = sys("cannot write into " + dir);
  if (error.empty() && ::renameat(dfd.get(), tmp_name.c_str(), dfd.get(), final_name.c_str()) != 0)
    error = sys("cannot rename in " + dir);
  if (!error.empty()) {
    ::unlinkat(dfd.get(), tmp_name.c_str(), 0);
    return error;
  }
  // The rename must be durable too: the directory's fsync when we may open it (root), else the
  // file system's (syncfs), since a user may not open the directory for reading.
  base::UniqueFd readable(::openat(dfd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (readable ? ::fsync(readable.get()) != 0 : ::syncfs(fd.get()) != 0) {
    // The file may not survive a crash: not acknowledged, so take it back.
    error = sys("cannot sync " + dir);
    ::unlinkat(dfd.get(), final_name.c_str(), 0);
    return error;
  }
  if (name) *name = final_name;
  return "";
}

}  // namespace estafette::submit
