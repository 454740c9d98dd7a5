// pickup/pickup.h: estafette-pickup's job (Postfix's pickup): submit the messages that
// estafette-sendmail kept in <state>/maildrop/ while esmtpd was not answering
// (lib/submit/maildrop.h), each as the user who owns the file, through the same submission socket
// and so through the same checks, filters and submit_allowed_users as any local submission.
//
// Root reads the files and trusts nothing in them. Each pass looks at no more than kMaxScan
// names (the next pass goes on from there) and takes no more than kMaxPerPass files, round robin
// over the owners (one user's thousands of files cannot starve the others). A name that is not a
// regular file (a link, a fifo, a directory) is removed without being opened; a file with more
// than one link (a hard link, perhaps of someone else's file) is left alone; temporary files
// older than a day are removed (never acknowledged). A file is opened without following a link
// and without blocking, checked again with fstat, must be at most max_message_size plus
// kFileSlack bytes, and is read once into memory (one that grows meanwhile is refused). A forked
// child with the owner's groups, gid and uid, and no fd of ours but its result pipe, runs the
// SMTP transaction (lib/submit/client.h), so esmtpd sees the owner's uid by SO_PEERCRED; it dies
// with the pickup (PR_SET_PDEATHSIG) and is killed after smtpd_timeout plus 30 s (its owner may
// stop it: the rest of that owner's files then wait for the next pass). The file is removed
// only after the 250. A temporary failure leaves it for the next pass (no connection or no
// greeting ends the pass: esmtpd is not answering); a refusal (5xx, a file
// that does not parse, a file too big) is returned to the owner (pickup/bounce.h, submitted as
// root with the null sender) and then removed; if even that fails the file stays. A file whose
// owner has no passwd entry stays, logged. A pass stops between two files when SIGTERM is
// pending.
// Loop thread of estafette-pickup; blocking I/O (one pass at a time). Errors are logged.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "lib/base/fd.h"
#include "lib/config/config.h"
#include "lib/submit/maildrop.h"

namespace estafette::pickup {

constexpr std::size_t kMaxScan = 20000;
constexpr std::size_t kMaxPerPass = 200;
constexpr std::size_t kFileSlack = 1 << 20;  // headers sendmail adds, the envelope

struct PassResult {
  std::size_t submitted = 0;
  std::size_t returned = 0;  // bounced to their owner and removed
  std::size_t kept = 0;      // left for a later pass
  std::size_t removed = 0;   // junk: not regular files, hard links, stale temporary files
  bool more = false;         // files were left for lack of room in this pass
};

class Pickup final {
 public:
  // Opens the maildrop directory (no symlink on the way; it must be root's or ours). Throws
  // std::runtime_error when it cannot.
  explicit Pickup(const config::Config& config);
  Pickup(const Pickup&) = delete;
  Pickup& operator=(const Pickup&) = delete;

  int dir_fd() const { return dir_.get(); }
  const std::string& dir() const { return dir_path_; }
  PassResult pass();

 private:
  enum class Outcome { Submitted, Returned, Kept };
  Outcome take(const std::string& name);
  // Returns the file to its owner (the passwd name); true when esmtpd took the bounce. entry:
  // the parsed file, else raw is what was read.
  bool give_back(const std::string& name, const std::string& owner, const std::string& reason,
                 const submit::MaildropEntry* entry, std::string_view raw);

  const config::Config& config_;
  std::string dir_path_;
  base::UniqueFd dir_;
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> scan_;  // kept from pass to pass
  bool scan_done_ = true;                // the last pass reached the end: rewind
  std::set<uid_t> stalled_;              // owners whose child missed its deadline in this pass
  bool mta_down_ = false;                // a child found no esmtpd: this pass ends
};

}  // namespace estafette::pickup
