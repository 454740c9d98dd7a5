// fd.h: an owning file descriptor (RAII) and small fd helpers.
// Used on any thread; a UniqueFd closes its descriptor exactly once.
#pragma once

#include <unistd.h>

#include <span>
#include <utility>

namespace estafette::base {

class UniqueFd final {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Sets O_NONBLOCK and FD_CLOEXEC; returns false (errno set) on failure.
bool set_nonblocking(int fd);
bool set_cloexec(int fd);

// Closes every descriptor numbered `first` or above except those in `keep` (sorted ascending),
// so that an exec'd program gets only what it is meant to have. For a forked child before exec:
// async-signal-safe, no allocation. Uses close_range(2); where the kernel lacks it (ENOSYS,
// EINVAL), walks /proc/self/fd with getdents64, and without /proc closes up to RLIMIT_NOFILE.
void close_fds_from(int first, std::span<const int> keep = {}) noexcept;

// The /proc/self/fd (then RLIMIT_NOFILE) fallback of close_fds_from, on its own for tests.
void close_fds_from_by_listing(int first, std::span<const int> keep = {}) noexcept;

// strerror(errno) as a std::string, thread-safe.
const char* errno_text(int err);

}  // namespace estafette::base
