#include "lib/queue/fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "lib/base/io.h"
#include "lib/base/log.h"

namespace estafette::queue::fs {

void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

base::UniqueFd open_subdir(int dir_fd, const std::string& path, const char* name) {
  if (::mkdirat(dir_fd, name, 0700) == 0) {
    ::fsync(dir_fd);  // make the new directory entry durable
  } else if (errno != EEXIST) {
    throw_errno(errno, "mkdir " + path + "/" + name);
  }
  base::UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno(errno, "open " + path + "/" + name);
  return fd;
}

base::UniqueFd open_queue_dir(const std::string& queue_dir, std::string* absolute) {
  if (::mkdir(queue_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw_errno(errno, "mkdir " + queue_dir);
  }
  char resolved[PATH_MAX];
  if (!::realpath(queue_dir.c_str(), resolved)) throw_errno(errno, "realpath " + queue_dir);
  *absolute = resolved;
  base::UniqueFd fd(::open(resolved, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno(errno, "open " + *absolute);
  return fd;
}

bool list_dir(int dir_fd, std::vector<std::string>& names) {
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    int err = errno;
    ::close(fd);
    errno = err;
    return false;
  }
  errno = 0;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(dir);
  errno = err;
  return err == 0;
}

// A cleaner that locked the new file first has unlinked it by the time our (blocking, brief)
// flock returns: then we start again.
base::UniqueFd create_locked(int dir_fd, const std::string& dir_path, const std::string& name,
                             int flags) {
  std::string path = dir_path + "/" + name;
  for (int attempt = 0;; ++attempt) {
    base::UniqueFd fd(
        ::openat(dir_fd, name.c_str(), flags | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw_errno(errno, "create " + path);
    int rc;
    while ((rc = ::flock(fd.get(), LOCK_EX)) != 0 && errno == EINTR) {
    }
    struct stat st {};
    if (rc != 0 || ::fstat(fd.get(), &st) != 0) {
      int err = errno;
      ::unlinkat(dir_fd, name.c_str(), 0);
      throw_errno(err, "lock " + path);
    }
    if (st.st_nlink > 0) return fd;
    if (attempt == 3) throw_errno(EAGAIN, "create " + path + " (removed by a cleaner)");
  }
}

bool try_lock(int fd) {
  return ::flock(fd, LOCK_EX | LOCK_NB) == 0;
}

void remove_stale_locked(int dir_fd, const std::string& dir_path) {
  std::vector<std::string> names;
  if (!list_dir(dir_fd, names)) {
    base::log("queue").error("queue: cannot list " + dir_path + ": " + base::errno_text(errno));
    return;
  }
  for (const auto& name : names) {
    base::UniqueFd fd(
        ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) continue;
    struct stat locked {};
    if (::fstat(fd.get(), &locked) != 0 || !S_ISREG(locked.st_mode)) continue;
    if (!try_lock(fd.get())) continue;  // a live writer
    // Still the file under that name (another cleaner may have removed it and a writer created
    // a new one since)? We hold its lock now, so nobody else removes it.
    struct stat named {};
    if (::fstat(fd.get(), &locked) != 0 || locked.st_nlink == 0) continue;
    if (::fstatat(dir_fd, name.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (named.st_ino != locked.st_ino || named.st_dev != locked.st_dev) continue;
    base::log("queue").information("queue: removing stale " + dir_path + "/" + name);
    ::unlinkat(dir_fd, name.c_str(), 0);
  }
}

bool rename_noreplace(int from_dir, int to_dir, const std::string& name) {
  if (::renameat2(from_dir, name.c_str(), to_dir, name.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno != EINVAL && errno != ENOSYS) return false;
  // A filesystem without RENAME_NOREPLACE: link() never replaces either.
  if (::linkat(from_dir, name.c_str(), to_dir, name.c_str(), 0) != 0) return false;
  ::unlinkat(from_dir, name.c_str(), 0);
  return true;
}

bool truncate_torn_line(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  if (st.st_size == 0) return true;
  std::string text;
  if (!base::read_exact(fd, 0, static_cast<std::size_t>(st.st_size), text)) return false;
  if (text.back() == '\n') return true;
  auto eol = text.rfind('\n');
  off_t keep = eol == std::string::npos ? 0 : static_cast<off_t>(eol + 1);
  return ::ftruncate(fd, keep) == 0;
}

}  // namespace estafette::queue::fs
