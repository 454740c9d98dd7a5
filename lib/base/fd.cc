#include "lib/base/fd.h"

#include <fcntl.h>
#include <string.h>

namespace estafette::base {

bool set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

bool set_cloexec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0;
}

const char* errno_text(int err) {
  // strerrordesc_np is thread-safe and returns static text (glibc >= 2.32).
  const char* text = ::strerrordesc_np(err);
  return text ? text : "unknown error";
}

}  // namespace estafette::base
