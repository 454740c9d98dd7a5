#include "lib/base/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

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

void drop_privileges(const Account& account) {
  if (running_as(account) && account.uid != 0) return;
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
}

void become_effective(const Account& account) {
  if (running_as(account) && account.uid != 0) return;
  if (::geteuid() != 0) {
    errno = EPERM;
    fail(account, "started as uid " + std::to_string(::getuid()) + ", not root");
  }
  set_groups(account);
  if (::setresgid(-1, account.gid, -1) != 0) fail(account, "setresgid");
  if (::setresuid(0, account.uid, 0) != 0) fail(account, "setresuid");
}

bool restore_root() noexcept {
  return ::setresuid(0, 0, 0) == 0 && ::setresgid(0, 0, 0) == 0 && ::setgroups(0, nullptr) == 0;
}

void give_to(const std::string& dir, const Account& account, bool recursive) {
  namespace fs = std::filesystem;
  auto fix = [&](const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return;
      fail(account, "lstat " + path.string());
    }
    if (st.st_uid == account.uid && st.st_gid == account.gid) return;
    if (::lchown(path.c_str(), account.uid, account.gid) != 0 && errno != ENOENT)
      fail(account, "chown " + path.string());
  };
  fix(dir);
  if (!recursive) return;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec))
    fix(it->path());
  if (ec && ec != std::errc::no_such_file_or_directory) {
    errno = ec.value();
    fail(account, "walking " + dir);
  }
}

}  // namespace estafette::base
