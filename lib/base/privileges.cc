#include "lib/base/privileges.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "lib/base/fd.h"

namespace estafette::base {

namespace {

[[noreturn]] void fail(const Account& account, const std::string& what) {
  throw PrivilegeError("cannot run as user '" + account.name + "': " + what + ": " +
                       std::strerror(errno));
}

bool running_as(const Account& account) {
  uid_t r, e, s;
  return ::getresuid(&r, &e, &s) == 0 && r == account.uid && e == account.uid && s == account.uid;
}

void set_groups(const Account& account) {
  if (::setgroups(1, &account.gid) != 0) fail(account, "setgroups");
}

}  // namespace

std::optional<Account> find_account(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
    return std::nullopt;
  return Account{name, pw.pw_uid, pw.pw_gid};
}

Account require_account(const std::string& name, const std::string& where) {
  auto account = find_account(name);
  if (!account)
    throw PrivilegeError("user '" + name + "' (" + where +
                         "): no such user (create it: see README, Install)");
  return *account;
}

namespace {
// The kernel clears a process's parent-death signal (PR_SET_PDEATHSIG, which a supervisor's
// child gets before exec: lib/daemon/child_supervisor.cc) whenever its credentials change.
// Captured before a change and set again after it, so a daemon that drops privileges still
// stops when its supervisor dies; a parent that died in between is noticed by its pid.
class ParentDeathSignal final {
 public:
  ParentDeathSignal() : parent_(::getppid()) { ::prctl(PR_GET_PDEATHSIG, &signal_); }
  void rearm() const {
    if (signal_ == 0) return;
    ::prctl(PR_SET_PDEATHSIG, signal_);
    if (::getppid() != parent_) ::raise(signal_);
  }

 private:
  pid_t parent_;
  int signal_ = 0;
};
}  // namespace

void drop_privileges(const Account& account) {
  if (running_as(account) && account.uid != 0) return;
  const ParentDeathSignal parent_death;
  if (::geteuid() != 0 && ::getuid() != 0) {
    errno = EPERM;
    fail(account, "started as uid " + std::to_string(::getuid()) + ", not root");
  }
  // A process with root only as its real or saved uid (a child of courierd) needs it effective
  // again for setgroups.
  if (::geteuid() != 0 && ::seteuid(0) != 0) fail(account, "seteuid(0)");
  // Groups first: once the uid is gone, the groups can no longer be changed.
  set_groups(account);
  if (::setresgid(account.gid, account.gid, account.gid) != 0) fail(account, "setresgid");
  if (::setresuid(account.uid, account.uid, account.uid) != 0) fail(account, "setresuid");
  if (!running_as(account)) {
    errno = EPERM;
    fail(account, "the uid did not change");
  }
  if (account.uid != 0 && ::setuid(0) == 0) {
    errno = EPERM;
    fail(account, "root could be regained");
  }
  parent_death.rearm();
}

void become_effective(const Account& account) {
  if (running_as(account) && account.uid != 0) return;
  if (::geteuid() != 0) {
    errno = EPERM;
    fail(account, "started as uid " + std::to_string(::getuid()) + ", not root");
  }
  const ParentDeathSignal parent_death;
  set_groups(account);
  if (::setresgid(-1, account.gid, -1) != 0) fail(account, "setresgid");
  if (::setresuid(0, account.uid, 0) != 0) fail(account, "setresuid");
  parent_death.rearm();
}

bool restore_root() noexcept {
  return ::setresuid(0, 0, 0) == 0 && ::setresgid(0, 0, 0) == 0 && ::setgroups(0, nullptr) == 0;
}

ActingAs::ActingAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) {
  if (::geteuid() != 0) return;
  saved_gid_ = ::getegid();
  int n = ::getgroups(0, nullptr);
  saved_groups_.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  if (n > 0 && ::getgroups(n, saved_groups_.data()) < 0) saved_groups_.clear();
  switched_ = true;
  const std::vector<gid_t> own = groups.empty() ? std::vector<gid_t>{gid} : groups;
  if (::setgroups(own.size(), own.data()) != 0 || ::setegid(gid) != 0 || ::seteuid(uid) != 0) {
    int err = errno;
    ok_ = false;
    restore();  // root's ids back now
    errno = err;
  }
}

ActingAs::~ActingAs() {
  restore();
}

void ActingAs::restore() noexcept {
  if (!switched_) return;
  if (::seteuid(0) != 0 || ::setegid(saved_gid_) != 0 ||
      ::setgroups(saved_groups_.size(), saved_groups_.data()) != 0)
    std::abort();  // must not go on with part of the user's ids
  switched_ = false;
}

std::vector<gid_t> groups_of(const std::string& user, gid_t gid) {
  int n = 32;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(user.c_str(), gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
    if (n <= 0 || ::getgrouplist(user.c_str(), gid, groups.data(), &n) < 0) return {gid};
  }
  groups.resize(static_cast<std::size_t>(n));
  return groups;
}

namespace {

// chown of the entry `name` in dir_fd (and below it, recursive) to the account, never following
// a symlink: directories are opened with O_NOFOLLOW relative to their parent's fd, so an entry
// swapped for a symlink during the walk is not followed (queue/ and run/ are the user's).
void give_entry(int dir_fd, const std::string& shown, const char* name, const Account& account,
                bool recursive) {
  struct stat st {};
  if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    fail(account, "lstat " + shown);
  }
  if (!S_ISDIR(st.st_mode)) {
    if ((st.st_uid != account.uid || st.st_gid != account.gid) &&
        ::fchownat(dir_fd, name, account.uid, account.gid, AT_SYMLINK_NOFOLLOW) != 0 &&
        errno != ENOENT)
      fail(account, "chown " + shown);
    return;
  }
  UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return;
    fail(account, "open " + shown);
  }
  if (::fstat(fd.get(), &st) != 0) fail(account, "fstat " + shown);
  if ((st.st_uid != account.uid || st.st_gid != account.gid) &&
      ::fchown(fd.get(), account.uid, account.gid) != 0)
    fail(account, "chown " + shown);
  if (!recursive) return;
  std::vector<std::string> names;
  {
    int list_fd = ::openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* dir = list_fd < 0 ? nullptr : ::fdopendir(list_fd);
    if (!dir) {
      if (list_fd >= 0) ::close(list_fd);
      fail(account, "list " + shown);
    }
    while (dirent* e = ::readdir(dir)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(dir);
  }
  for (const auto& n : names) give_entry(fd.get(), shown + "/" + n, n.c_str(), account, true);
}

}  // namespace

void give_to(const std::string& path, const Account& account, bool recursive) {
  // The path up to the entry is the admin's (state_dir may sit below a symlink); the entry
  // itself and everything below it are never followed.
  auto slash = path.find_last_of('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) fail(account, "open " + parent);
  give_entry(dir.get(), path, name.c_str(), account, recursive);
}

}  // namespace estafette::base
