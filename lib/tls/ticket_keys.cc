#include "lib/tls/ticket_keys.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "lib/base/fd.h"
#include "lib/tls/context.h"  // Error, openssl_errors

namespace estafette::tls {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw Error(path + ": " + why);
}

std::string errno_reason() {
  return std::strerror(errno);
}

}  // namespace

TicketKeys shared_ticket_keys(const std::string& path, std::chrono::seconds max_age,
                              std::optional<FileOwner> owner) {
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) fail(path, "cannot open: " + errno_reason());
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) fail(path, "cannot lock: " + errno_reason());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, "cannot stat: " + errno_reason());
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) fail(path, "not a plain file with one link");
  const uid_t me = ::geteuid();
  if (me == 0 && owner && st.st_uid != owner->uid) {
    if (st.st_uid != 0) fail(path, "owned by uid " + std::to_string(st.st_uid));
    if (::fchown(fd.get(), owner->uid, owner->gid) != 0)
      fail(path, "cannot give it to uid " + std::to_string(owner->uid) + ": " + errno_reason());
  } else if (st.st_uid != me) {
    fail(path, "owned by uid " + std::to_string(st.st_uid) + ", not " + std::to_string(me));
  }
  if ((st.st_mode & 077) != 0) fail(path, "readable or writable by group or others");

  TicketKeys keys{};
  const auto age = std::chrono::seconds(std::time(nullptr) - st.st_mtime);
  // The file system stamps mtime from the kernel's coarse clock, which can be a tick ahead of
  // time(): a file written a moment ago may look up to a second "from the future". Beyond that
  // slack a future mtime is not trusted.
  const bool fresh = age >= -std::chrono::seconds(2) && age < max_age / 2;
  if (fresh && st.st_size == static_cast<off_t>(kTicketKeyBytes) &&
      ::pread(fd.get(), keys.data(), keys.size(), 0) == static_cast<ssize_t>(keys.size()))
    return keys;
  if (RAND_priv_bytes(keys.data(), static_cast<int>(keys.size())) != 1)
    fail(path, "no random bytes: " + openssl_errors());
  bool written =
      ::pwrite(fd.get(), keys.data(), keys.size(), 0) == static_cast<ssize_t>(keys.size()) &&
      ::ftruncate(fd.get(), static_cast<off_t>(keys.size())) == 0 && ::fsync(fd.get()) == 0;
  if (!written) {
    OPENSSL_cleanse(keys.data(), keys.size());
    fail(path, "cannot write: " + errno_reason());
  }
  return keys;
}

}  // namespace estafette::tls
