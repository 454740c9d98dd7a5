// io.h: whole reads and writes on file descriptors, and making a directory entry durable: the
// steps the queue backends (lib/queue) and Maildir delivery (modules/local) share.
// Any thread; blocking system calls. Errors: false with errno set (EIO for a file that ends
// before the bytes asked for); EINTR and short transfers are retried, never reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace estafette::base {

// write() all of bytes.
bool write_all(int fd, std::string_view bytes);

// pread() exactly size bytes at offset into out (resized to size).
bool read_exact(int fd, std::uint64_t offset, std::size_t size, std::string& out);

// Replaces the file at path with `text` (mode): written to a new PATH.tmp (an old one removed
// first; O_EXCL | O_NOFOLLOW), then renamed over path. Safe for root in a directory another user
// can write: a symlink or hard link planted at either name is replaced, never written through.
bool replace_file(const std::string& path, std::string_view text, unsigned mode = 0644);

// Opens the directory at path and fsync()s it, so that the entries created or renamed in it
// survive a crash.
bool fsync_dir(const std::string& path);

}  // namespace estafette::base
