// cache.h: MTA-STS policies kept on disk (RFC 8461 5.1), so they outlive a restart and are
// shared by every esmtpclient process: one small file per policy domain in one directory
// (<state_dir>/mta-sts, the unprivileged user's, made by estafetted).
// A file is written whole to a unique temporary name and renamed over the old one, so readers
// (other processes) see the old or the new policy, never a mix. A file read back is never
// trusted: it must be a regular file (no symlink followed) of at most kMaxFileSize bytes whose
// header names the domain it is filed under and whose policy parse_policy() accepts again; a
// file that fails is ignored (load() says why; the caller logs it) and replaced by the next fetch.
// The directory holds at most `max_entries` policies: store() then removes expired ones, then the
// least recently written. Loop thread of the owner (blocking file system calls on a few small
// files, only when a policy is looked up outside the memory of PolicySource or stored after a
// fetch). Errors: load() gives nullopt and a reason; store() false and a reason; nothing throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "lib/mtasts/policy.h"

namespace estafette::mtasts {

inline constexpr std::size_t kMaxFileSize = kMaxPolicySize + 1024;

struct CachedPolicy {
  std::string domain;  // normalized (normalize_domain)
  std::string id;      // of the TXT record the policy was fetched under
  Policy policy;
  std::int64_t fetched = 0;  // Unix time of the fetch
  std::int64_t expires() const { return fetched + policy.max_age; }
};

// The file's text for `entry`, and the entry from a file's text (nullopt and `why` when it is
// not one written by format_entry for `domain`). Pure.
std::string format_entry(const CachedPolicy& entry);
std::optional<CachedPolicy> parse_entry(std::string_view text, const std::string& domain,
                                        std::string* why);

class PolicyCache final {
 public:
  // store() makes `dir` (0700) when it is missing but its parent is there; load() of a missing
  // directory finds nothing.
  PolicyCache(std::string dir, std::size_t max_entries);
  PolicyCache(const PolicyCache&) = delete;
  PolicyCache& operator=(const PolicyCache&) = delete;

  // The stored policy of `domain`, expired or not (the caller decides); nullopt when there is
  // none (why stays empty) or the file is unusable (why says what is wrong with it).
  std::optional<CachedPolicy> load(const std::string& domain, std::string* why) const;
  bool store(const CachedPolicy& entry, std::string* why);
  const std::string& dir() const { return dir_; }
  std::string path_of(const std::string& domain) const { return dir_ + "/" + domain; }

 private:
  void trim(const std::string& keep);

  std::string dir_;
  std::size_t max_entries_;
};

}  // namespace estafette::mtasts
