#include "lib/base/fd.h"

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

namespace estafette::base {

bool set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

bool set_cloexec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0;
}

namespace {

bool kept(int fd, std::span<const int> keep) {
  return std::binary_search(keep.begin(), keep.end(), fd);
}

// The raw syscall: glibc has the wrapper, but this way nothing depends on its version.
int sys_close_range(unsigned first, unsigned last) {
  return static_cast<int>(::syscall(SYS_close_range, first, last, 0u));
}

// getdents64's record (the kernel ABI; glibc only declares it with its own wrapper).
struct LinuxDirent64 {
  std::uint64_t d_ino;
  std::int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

bool close_listed(int first, std::span<const int> keep) {
  int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  alignas(LinuxDirent64) char buf[4096];
  while (true) {
    long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* e = reinterpret_cast<LinuxDirent64*>(buf + off);
      off += e->d_reclen;
      int fd = 0;
      bool number = e->d_name[0] != '\0';
      for (const char* c = e->d_name; *c && number; ++c) {
        if (*c < '0' || *c > '9' || fd > (INT_MAX - 9) / 10) number = false;
        fd = fd * 10 + (*c - '0');
      }
      // Closing while listing is safe: /proc/self/fd is read by fd number.
      if (number && fd >= first && fd != dir && !kept(fd, keep)) ::close(fd);
    }
  }
  ::close(dir);
  return true;
}

}  // namespace

void close_fds_from_by_listing(int first, std::span<const int> keep) noexcept {
  if (close_listed(first, keep)) return;
  struct rlimit limit {};
  int end = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    end = static_cast<int>(std::min<rlim_t>(limit.rlim_cur, INT_MAX));
  for (int fd = first; fd < end; ++fd)
    if (!kept(fd, keep)) ::close(fd);
}

void close_fds_from(int first, std::span<const int> keep) noexcept {
  int lo = first;
  for (int fd : keep) {
    if (fd < lo) continue;
    if (fd > lo && sys_close_range(static_cast<unsigned>(lo), static_cast<unsigned>(fd - 1)) != 0)
      return close_fds_from_by_listing(first, keep);
    lo = fd + 1;
  }
  if (sys_close_range(static_cast<unsigned>(lo), ~0u) != 0) close_fds_from_by_listing(first, keep);
}

const char* errno_text(int err) {
  // strerrordesc_np is thread-safe and returns static text (glibc >= 2.32).
  const char* text = ::strerrordesc_np(err);
  return text ? text : "unknown error";
}

}  // namespace estafette::base
