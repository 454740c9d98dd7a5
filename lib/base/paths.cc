#include "lib/base/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "config.h"

#ifndef ESTAFETTE_LIBEXECDIR
#error "ESTAFETTE_LIBEXECDIR comes from config.h (configure)"
#endif
#ifndef ESTAFETTE_BINDIR
#error "ESTAFETTE_BINDIR comes from config.h (configure)"
#endif
#ifndef ESTAFETTE_SBINDIR
#error "ESTAFETTE_SBINDIR comes from config.h (configure)"
#endif

namespace estafette::base {

namespace {
bool is_executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

// realpath(3), or the path itself when it does not resolve.
std::string resolved(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}
}  // namespace

bool is_install_dir(const std::string& exe_dir, const std::vector<std::string>& install_dirs) {
  for (const auto& dir : install_dirs)
    if (!dir.empty() && dir == exe_dir) return true;
  return false;
}

bool running_installed() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return false;
  std::string dir(self, static_cast<std::size_t>(n));
  dir.erase(dir.rfind('/'));
  return is_install_dir(dir, {resolved(ESTAFETTE_BINDIR), resolved(ESTAFETTE_SBINDIR),
                              resolved(ESTAFETTE_LIBEXECDIR)});
}

std::string program_path(const std::string& name) {
  if (const char* dir = std::getenv("ESTAFETTE_LIBEXEC"); dir && *dir)
    return std::string(dir) + "/" + name;
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<std::size_t>(n));
    dir.erase(dir.rfind('/'));
    if (is_executable(dir + "/" + name)) return dir + "/" + name;
  }
  return std::string(ESTAFETTE_LIBEXECDIR) + "/" + name;
}

std::string sbin_program_path(const std::string& name) {
  if (running_installed()) return std::string(ESTAFETTE_SBINDIR) + "/" + name;
  return program_path(name);
}

std::string absolute_path(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return path;
  std::string rel = path;
  while (rel.rfind("./", 0) == 0) rel.erase(0, 2);
  if (rel.empty() || rel == ".") return cwd;
  return std::string(cwd) + "/" + rel;
}

bool make_dirs(const std::string& path, unsigned mode) {
  if (path.empty()) return true;
  for (std::size_t pos = 1;; ++pos) {
    pos = path.find('/', pos);
    std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) return false;
    if (pos == std::string::npos) return true;
  }
}

}  // namespace estafette::base
