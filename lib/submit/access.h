// lib/submit/access.h: who may submit on the local submission socket (submit_allowed_users,
// as Postfix's authorized_submit_users): anyone (the default), or the users and groups listed.
// root and the config's `user` always may (estafette-local re-injects ~/.forward mail as root).
// SubmitAccess::resolve() looks the names up in the passwd and group databases once, at start
// (never per connection: a slow NSS must not stall esmtpd's loop); allows() is pure and takes
// what SO_PEERCRED and SO_PEERGROUPS tell about the peer, so it needs no lookup either.
// Any thread. Names that do not resolve are reported in unknown() (esmtpd logs them) and match
// nobody.
#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "lib/config/config.h"

namespace estafette::submit {

class SubmitAccess final {
 public:
  // Anyone may submit.
  SubmitAccess() = default;
  // From submit_allowed_users (entries: a user name, a numeric uid, or @group) and `user`.
  static SubmitAccess resolve(const config::Config& config);

  bool anyone() const { return anyone_; }
  // May a peer with this uid, primary gid and supplementary groups submit?
  bool allows(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) const;
  const std::vector<std::string>& unknown() const { return unknown_; }

  // For tests and resolve(): an explicit list.
  SubmitAccess(std::set<uid_t> uids, std::set<gid_t> gids);

 private:
  bool anyone_ = true;
  std::set<uid_t> uids_;
  std::set<gid_t> gids_;
  std::vector<std::string> unknown_;
};

// The peer's supplementary groups (SO_PEERGROUPS); empty when the kernel cannot tell.
std::vector<gid_t> peer_groups(int fd);

}  // namespace estafette::submit
