// privileges.h: running as the unprivileged `user` of the config (Postfix's mail_owner).
// estafetted stays root (it restarts esmtpd, which binds port 25); esmtpd drops to the user
// after binding its listen addresses, esmtpclient at start; courierd runs with the user as its
// effective ids and keeps root only as its saved uid, to start estafette-local as root
// (restore_root() in the forked child). See docs/architecture.md, "Privileges".
// Main thread, before other threads start (setresuid applies to the whole process). Errors:
// PrivilegeError with a sentence naming the user and the failed call; the callers exit on it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <stdexcept>
#include <string>

namespace estafette::base {

class PrivilegeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;  // the user's primary group: the only group kept
};

// The account `name` from the passwd database, or nullopt when there is none.
std::optional<Account> find_account(const std::string& name);

// find_account() or PrivilegeError("user 'NAME' (from WHERE): no such user").
Account require_account(const std::string& name, const std::string& where);

// Becomes `account` for good: supplementary groups dropped (setgroups to the primary group),
// then real, effective and saved gid, then uid; checks that root cannot be regained. Already
// running as exactly that uid (not root): nothing to do. Any other non-root start, or a failed
// call: PrivilegeError.
void drop_privileges(const Account& account);

// courierd: the effective uid and gid become `account` (and the groups its primary group);
// the real and saved uid stay root, so a forked child can restore_root(). Files the process
// creates belong to the user. Not root: PrivilegeError (unless already that uid).
void become_effective(const Account& account);

// In a forked child of a become_effective() process, before exec: back to root (uid, gid,
// no supplementary groups). Async-signal-safe; returns false when a call failed.
bool restore_root() noexcept;

// chown of `path` to the account (and its group), without following symlinks; with
// `recursive` everything below it too. Only entries that do not already belong to it change:
// the state directories after a run as root. PrivilegeError on a failure other than an entry
// vanishing meanwhile.
void give_to(const std::string& path, const Account& account, bool recursive);

}  // namespace estafette::base
