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
#include <vector>

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

// A root process (estafette-local) acting with another user's rights for a while: the effective
// gid, supplementary groups and effective uid become the user's, and the destructor makes them
// root's again (it aborts the process if it cannot: going on with a mix of the two is worse).
// Opening a file as the user lets the kernel decide what the user may read or write, with no
// window between a check and the use. Not root (nothing to switch): a no-op that succeeds.
// The process must be single-threaded (the ids are the process's).
class ActingAs final {
 public:
  // `groups`: the user's supplementary groups (getgrouplist); empty: the primary group only.
  ActingAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups = {});
  ~ActingAs();
  ActingAs(const ActingAs&) = delete;
  ActingAs& operator=(const ActingAs&) = delete;

  // False when the switch failed (errno set; root's ids are back already).
  bool ok() const { return ok_; }

 private:
  void restore() noexcept;

  bool switched_ = false;
  bool ok_ = true;
  std::vector<gid_t> saved_groups_;
  gid_t saved_gid_ = 0;
};

// The supplementary groups of `user` with primary group gid (getgrouplist); {gid} on failure.
std::vector<gid_t> groups_of(const std::string& user, gid_t gid);

// chown of `path` to the account (and its group), without following symlinks; with
// `recursive` everything below it too. Only entries that do not already belong to it change:
// the state directories after a run as root. PrivilegeError on a failure other than an entry
// vanishing meanwhile.
void give_to(const std::string& path, const Account& account, bool recursive);

}  // namespace estafette::base
