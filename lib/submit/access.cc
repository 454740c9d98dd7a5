#include "lib/submit/access.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>

namespace estafette::submit {

SubmitAccess::SubmitAccess(std::set<uid_t> uids, std::set<gid_t> gids)
    : anyone_(false), uids_(std::move(uids)), gids_(std::move(gids)) {
  uids_.insert(0);
}

SubmitAccess SubmitAccess::resolve(const config::Config& config) {
  if (config.submit_allowed_users.empty()) return SubmitAccess();
  SubmitAccess access({}, {});
  std::vector<char> buf(16384);
  auto uid_of = [&](const std::string& name) -> std::optional<uid_t> {
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
      return std::nullopt;
    return pw.pw_uid;
  };
  if (!config.user.empty())
    if (auto uid = uid_of(config.user)) access.uids_.insert(*uid);
  for (const auto& entry : config.submit_allowed_users) {
    if (entry.starts_with('@')) {
      group gr{};
      group* found = nullptr;
      if (::getgrnam_r(entry.c_str() + 1, &gr, buf.data(), buf.size(), &found) != 0 || !found)
        access.unknown_.push_back(entry);
      else
        access.gids_.insert(gr.gr_gid);
      continue;
    }
    uid_t number = 0;
    auto [end, ec] = std::from_chars(entry.data(), entry.data() + entry.size(), number);
    if (ec == std::errc() && end == entry.data() + entry.size()) {
      access.uids_.insert(number);
    } else if (auto uid = uid_of(entry)) {
      access.uids_.insert(*uid);
    } else {
      access.unknown_.push_back(entry);
    }
  }
  return access;
}

bool SubmitAccess::allows(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) const {
  if (anyone_ || uids_.contains(uid) || gids_.contains(gid)) return true;
  return std::any_of(groups.begin(), groups.end(), [&](gid_t g) { return gids_.contains(g); });
}

std::vector<gid_t> peer_groups(int fd) {
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE) break;
    groups.resize(len / sizeof(gid_t) + 1);
  }
  return {};
}

}  // namespace estafette::submit
