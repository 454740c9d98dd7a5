#include "lib/submit/socket.h"

#include <sys/stat.h>

#include <cerrno>
#include <system_error>

#include "lib/base/net.h"
#include "lib/base/paths.h"

namespace estafette::submit {

namespace {
// Adds search (x) permission for group and others, so that a path below can be reached.
void make_searchable(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    throw std::system_error(errno, std::generic_category(), "stat " + dir);
  const mode_t want = st.st_mode | S_IXGRP | S_IXOTH;
  if (want != st.st_mode && ::chmod(dir.c_str(), want & 07777) != 0)
    throw std::system_error(errno, std::generic_category(), "chmod " + dir);
}
}  // namespace

base::UniqueFd open_submit_socket(const config::Config& config) {
  for (const auto& dir : {config.state_dir, config.run_dir()}) {
    if (!base::make_dirs(dir))
      throw std::system_error(errno, std::generic_category(), "cannot create " + dir);
    make_searchable(dir);
  }
  return base::listen_unix_exclusive(submit_socket_path(config), 0666);
}

}  // namespace estafette::submit
