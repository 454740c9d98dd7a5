#include "lib/auth/passwd_update.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

#include "lib/auth/passwd_file.h"
#include "lib/auth/sasl.h"
#include "lib/base/fd.h"
#include "lib/base/io.h"

namespace estafette::auth {

namespace {

constexpr std::size_t kMaxFileSize = 16 * 1024 * 1024;
constexpr mode_t kNewFileMode = 0640;  // root:group-of-the-daemon, hashes not world-readable

// The temporary file until it is renamed: removed if anything fails before.
class TempFile final {
 public:
  TempFile(int dir_fd, std::string name) : dir_fd_(dir_fd), name_(std::move(name)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (!name_.empty()) ::unlinkat(dir_fd_, name_.c_str(), 0);
  }
  const std::string& name() const { return name_; }
  void keep() { name_.clear(); }

 private:
  int dir_fd_;
  std::string name_;
};

}  // namespace

std::string edit_passwd_text(std::string_view text, std::string_view user, const std::string* hash,
                             PasswdChange* change) {
  std::string out;
  out.reserve(text.size() + user.size() + (hash ? hash->size() : 0) + 2);
  PasswdChange done = hash ? PasswdChange::Added : PasswdChange::NotFound;
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view line = text.substr(0, end == std::string_view::npos ? text.size() : end + 1);
    text.remove_prefix(line.size());
    // An entry is "user:hash[:more]"; comments and blank lines never start with "user:".
    bool ours = line.size() > user.size() && line.substr(0, user.size()) == user &&
                line[user.size()] == ':';
    if (!ours) {
      out += line;
      continue;
    }
    if (!hash) {
      done = PasswdChange::Deleted;
      continue;
    }
    std::string_view rest = line.substr(user.size() + 1);
    auto field_end = rest.find_first_of(":\r\n");
    out += user;
    out += ':';
    out += *hash;
    out += rest.substr(field_end == std::string_view::npos ? rest.size() : field_end);
    done = PasswdChange::Replaced;
  }
  if (done == PasswdChange::Added) {
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += user;
    out += ':';
    out += *hash;
    out += '\n';
  }
  if (change) *change = done;
  return out;
}

PasswdChange update_passwd_file(const std::string& path, std::string_view user,
                                const std::string* hash) {
  auto fail = [&](const std::string& why) -> PasswdChange {
    throw std::runtime_error(path + ": " + why);
  };
  auto fail_errno = [&](const char* what) {
    return fail(what + std::string(base::errno_text(errno)));
  };
  if (!valid_passwd_user(user))
    return fail("a user name is 1 to 255 bytes without ':', spaces or control characters");
  auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") return fail("not a file name");

  base::UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return fail_errno("its directory: ");
  // Serialises `estafette passwd` runs: each reads, edits and renames under this lock.
  while (::flock(dir_fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return fail_errno("locking its directory: ");

  std::string text;
  mode_t mode = kNewFileMode;
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  base::UniqueFd old_fd(::openat(dir_fd.get(), base.c_str(),
                                 O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!old_fd && errno == ELOOP) return fail("is a symbolic link; refusing to replace it");
  if (!old_fd && errno != ENOENT) return fail_errno("");
  if (old_fd) {
    struct stat st {};
    if (::fstat(old_fd.get(), &st) != 0) return fail_errno("");
    if (!S_ISREG(st.st_mode)) return fail("not a regular file");
    if (static_cast<std::size_t>(st.st_size) > kMaxFileSize) return fail("larger than 16 MiB");
    if (!base::read_exact(old_fd.get(), 0, static_cast<std::size_t>(st.st_size), text))
      return fail_errno("");
    mode = st.st_mode & 07777;
    uid = st.st_uid;
    gid = st.st_gid;
  }

  PasswdChange change{};
  std::string updated = edit_passwd_text(text, user, hash, &change);
  wipe_secret(text);
  if (change == PasswdChange::NotFound) {
    wipe_secret(updated);
    return change;
  }
  std::string why;
  if (!PasswdFile::parse(updated, &why)) {
    wipe_secret(updated);
    return fail(why + " (the file would not load; nothing written)");
  }

  // A name only we create (O_EXCL), in the same directory so that the rename is atomic.
  std::string tmp_name;
  base::UniqueFd tmp_fd;
  for (int attempt = 0; attempt < 100 && !tmp_fd; ++attempt) {
    tmp_name = "." + base + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(attempt);
    tmp_fd.reset(::openat(dir_fd.get(), tmp_name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!tmp_fd && errno != EEXIST) break;
  }
  if (!tmp_fd) {
    wipe_secret(updated);
    return fail_errno("creating a temporary file: ");
  }
  TempFile guard(dir_fd.get(), tmp_name);
  bool ok = (uid == ::geteuid() && gid == ::getegid()) || ::fchown(tmp_fd.get(), uid, gid) == 0;
  ok = ok && ::fchmod(tmp_fd.get(), mode) == 0 && base::write_all(tmp_fd.get(), updated) &&
       ::fsync(tmp_fd.get()) == 0;
  int saved = errno;
  wipe_secret(updated);
  if (!ok) {
    errno = saved;
    return fail_errno("writing the new file: ");
  }
  if (::renameat(dir_fd.get(), tmp_name.c_str(), dir_fd.get(), base.c_str()) != 0)
    return fail_errno("renaming the new file: ");
  guard.keep();
  if (::fsync(dir_fd.get()) != 0) return fail_errno("fsync of its directory: ");
  return change;
}

}  // namespace estafette::auth
