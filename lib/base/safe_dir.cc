#include "lib/base/safe_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace estafette::base {

namespace {

constexpr int kOpenDir = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

UniqueFd failed(int err, std::string* error, const std::string& what) {
  if (error) *error = what;
  errno = err;
  return UniqueFd();
}

// Checks the directory open on fd; false (errno EPERM, *error set) when it is not to be trusted.
bool check(int fd, const std::string& shown, const DirWalk& how, std::string* error) {
  if (!how.trusted) return true;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    failed(err, error, "fstat " + shown + ": " + errno_text(err));
    return false;
  }
  auto why = untrusted_dir(st.st_uid, st.st_mode, ::geteuid());
  if (why.empty()) return true;
  failed(EPERM, error, shown + ": " + why);
  return false;
}

}  // namespace

std::string untrusted_dir(uid_t owner, mode_t mode, uid_t euid) {
  if (owner != 0 && owner != euid) return "owned by uid " + std::to_string(owner);
  if ((mode & (S_IWGRP | S_IWOTH)) && !(mode & S_ISVTX))
    return "writable by group or others (no sticky bit)";
  return {};
}

UniqueFd open_dir_at(int dir_fd, std::string_view shown_dir, std::string_view relative,
                     const DirWalk& how, std::string* error) {
  UniqueFd current;
  int at = dir_fd;
  std::string shown(shown_dir);
  while (!relative.empty()) {
    auto slash = relative.find('/');
    std::string name(relative.substr(0, slash));
    relative = slash == std::string_view::npos ? std::string_view() : relative.substr(slash + 1);
    if (name.empty() || name == ".") continue;
    if (name == "..") return failed(EINVAL, error, shown + "/..: not allowed in this path");
    shown += (shown.ends_with('/') ? "" : "/") + name;
    UniqueFd next(::openat(at, name.c_str(), kOpenDir));
    if (!next && errno == ENOENT && how.create) {
      if (::mkdirat(at, name.c_str(), how.mode) != 0 && errno != EEXIST) {
        int err = errno;
        return failed(err, error, "mkdir " + shown + ": " + errno_text(err));
      }
      ::fsync(at);  // the new entry survives a crash, as what is written below it will
      next.reset(::openat(at, name.c_str(), kOpenDir));
    }
    if (!next) {
      int err = errno;
      // O_NOFOLLOW | O_DIRECTORY on a symlink: ELOOP, or ENOTDIR on some kernels.
      struct stat st {};
      bool link = (err == ELOOP || err == ENOTDIR) &&
                  ::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
      return failed(
          link ? ELOOP : err, error,
          shown + ": " +
              (link ? std::string("a symbolic link, not followed") : std::string(errno_text(err))));
    }
    if (!check(next.get(), shown, how, error)) return UniqueFd();
    current = std::move(next);
    at = current.get();
  }
  if (current) return current;
  // No component: the directory itself, opened again so that the caller owns an fd.
  UniqueFd self(::openat(dir_fd, ".", kOpenDir));
  if (!self) {
    int err = errno;
    return failed(err, error, "open " + shown + ": " + errno_text(err));
  }
  return self;
}

UniqueFd open_dir(std::string_view path, const DirWalk& how, std::string* error) {
  const bool absolute = path.starts_with('/');
  const char* start = absolute ? "/" : ".";
  UniqueFd top(::open(start, kOpenDir));
  if (!top) {
    int err = errno;
    return failed(err, error, std::string("open ") + start + ": " + errno_text(err));
  }
  if (!check(top.get(), start, how, error)) return UniqueFd();
  return open_dir_at(top.get(), absolute ? "" : ".", path, how, error);
}

}  // namespace estafette::base
