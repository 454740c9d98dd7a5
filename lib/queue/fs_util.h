// fs_util.h: the file-system steps the queue backends share: subdirs, listing,
// lock-marked files (created and flock()ed by a live writer), no-replace renames, parallel
// fdatasync. Any thread; functions that can fail return false with errno set, or throw
// std::system_error where they say so. Whole reads and writes are lib/base/io.h's.
#pragma once

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "lib/base/fd.h"

namespace estafette::queue::fs {

[[noreturn]] void throw_errno(int err, const std::string& what);

// Opens (creating if needed, and then fsync()ing dir_fd) the directory name below dir_fd.
// path names dir_fd in error messages. Throws std::system_error.
base::UniqueFd open_subdir(int dir_fd, const std::string& path, const char* name);

// Creates (mode 0700) if needed and opens the queue directory; *absolute is its real path.
// Throws std::system_error.
base::UniqueFd open_queue_dir(const std::string& queue_dir, std::string* absolute);

// Names in a directory (without . and ..); false (errno set) if it cannot be read.
bool list_dir(int dir_fd, std::vector<std::string>& names);

// Creates dir/name (O_EXCL, mode 0600) and holds an exclusive flock on it: the mark of a live
// writer, which remove_stale_locked() (of any process) respects. Throws std::system_error.
base::UniqueFd create_locked(int dir_fd, const std::string& dir_path, const std::string& name,
                             int flags);

// True when nobody holds the flock of the file open on fd (its writer is gone); takes the lock.
bool try_lock(int fd);

// Deletes the files in dir whose writer is gone (nobody holds their flock). Logs each.
void remove_stale_locked(int dir_fd, const std::string& dir_path);

// Renames from_dir/name to to_dir/name, never replacing an existing file.
bool rename_noreplace(int from_dir, int to_dir, const std::string& name);

// Drops a torn last line (left by a crash during an append) of the file open on fd.
bool truncate_torn_line(int fd);

// Calls fn(i) for i in [0, n) on up to threads threads (the calling one included).
template <typename Fn>
void run_parallel(std::size_t n, unsigned threads, Fn fn) {
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::jthread> helpers;
  std::size_t extra = std::min<std::size_t>(threads > 0 ? threads - 1 : 0, n > 0 ? n - 1 : 0);
  for (std::size_t k = 0; k < extra; ++k) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // out of threads: the calling thread does the rest
    }
  }
  work();
}  // helpers join here

}  // namespace estafette::queue::fs
