#include "pickup/pickup.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <vector>

#include "lib/base/fd.h"
#include "lib/base/log.h"
#include "lib/base/safe_dir.h"
#include "lib/submit/client.h"
#include "lib/submit/maildrop.h"
#include "lib/submit/socket.h"
#include "pickup/bounce.h"

namespace estafette::pickup {

namespace {

Poco::Logger& logger() {
  return base::log("pickup");
}

struct Owner {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// The passwd entry and groups of `uid` (looked up here, in the parent: the child only calls
// setgroups/setresgid/setresuid).
std::optional<Owner> find_owner(uid_t uid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  Owner o{pw.pw_name, pw.pw_uid, pw.pw_gid, {}};
  int n = 64;
  for (int tries = 0; tries < 4; ++tries) {
    o.groups.resize(static_cast<std::size_t>(n));
    int got = n;
    if (::getgrouplist(pw.pw_name, pw.pw_gid, o.groups.data(), &got) >= 0) {
      o.groups.resize(static_cast<std::size_t>(got));
      return o;
    }
    n = std::min(std::max(got, n * 2), 65536);
  }
  o.groups = {pw.pw_gid};
  return o;
}

std::string rfc5322_date(std::time_t t) {
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S %z", &tm);
  return buf;
}

std::string new_message_id(const std::string& hostname) {
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "<%lld.%d.%08x.pickup@",
                static_cast<long long>(std::time(nullptr)), static_cast<int>(::getpid()), rd());
  return buf + hostname + ">";
}

// What the child reports through its pipe: "<exit code>\n<queue id>\n<error>".
struct ChildResult {
  int exit_code = submit::kExTempFail;
  std::string queue_id;
  std::string error;
  bool late = false;  // killed at the deadline
  bool down = false;  // no connection or no greeting: esmtpd is not answering
};

constexpr std::chrono::seconds kChildSlack{30};

// Runs the submission in a child that is `owner`; waits for it.
ChildResult submit_as(const Owner& owner, const submit::Submission& s, const std::string& socket,
                      std::chrono::seconds timeout) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return {submit::kExTempFail, "", "pipe: " + std::string(std::strerror(errno))};
  base::UniqueFd rd(fds[0]), wr(fds[1]);
  const pid_t parent = ::getpid();
  const bool root = ::geteuid() == 0;
  pid_t pid = ::fork();
  if (pid < 0) return {submit::kExTempFail, "", "fork: " + std::string(std::strerror(errno))};
  if (pid == 0) {
    // Nothing of root's (the log, the maildrop, the loop) stays open in a process of the user.
    const int keep[] = {wr.get()};
    base::close_fds_from(3, keep);
    auto report = [&](int code, const std::string& id, const std::string& error, bool down) {
      std::string text = std::to_string(code) + " " + (down ? "1" : "0") + "\n" + id + "\n" + error;
      ssize_t ignored = ::write(wr.get(), text.data(), std::min<std::size_t>(text.size(), 4000));
      (void)ignored;
      ::_exit(0);
    };
    if (root) {
      if (::setgroups(owner.groups.size(), owner.groups.data()) != 0 ||
          ::setresgid(owner.gid, owner.gid, owner.gid) != 0 ||
          ::setresuid(owner.uid, owner.uid, owner.uid) != 0 || ::getuid() != owner.uid ||
          ::geteuid() != owner.uid || (owner.uid != 0 && ::setuid(0) == 0))
        report(submit::kExTempFail, "", "cannot become uid " + std::to_string(owner.uid), false);
    }
    // Dies with the pickup: a transaction cut before its 250 queues nothing, and the file stays.
    // Set after the change of ids, which clears it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    auto fd = submit::connect_submit(socket, timeout);
    if (!fd)
      report(submit::kExTempFail, "", "cannot connect to " + socket + ": " + std::strerror(errno),
             true);
    auto r = submit::submit(fd.get(), s, timeout);
    report(r.exit_code, r.queue_id, r.error,
           r.exit_code == submit::kExTempFail && r.stage == submit::Stage::Greeting);
  }
  wr.reset();
  // The child runs as the user, who may stop it (SIGSTOP): wait no longer than the deadline.
  const auto deadline = std::chrono::steady_clock::now() + timeout + kChildSlack;
  std::string text;
  char buf[4096];
  bool late = false;
  while (text.size() < 8192) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{rd.get(), POLLIN, 0};
    int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      late = true;
      break;
    }
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  if (late) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ChildResult result;
  if (late) {
    result.late = true;
    result.error = "the submission did not end within " +
                   std::to_string((timeout + kChildSlack).count()) + " s";
    return result;
  }
  auto nl1 = text.find('\n');
  auto nl2 = nl1 == std::string::npos ? nl1 : text.find('\n', nl1 + 1);
  if (nl2 == std::string::npos) {
    result.error = "the submitting process died (status " + std::to_string(status) + ")";
    return result;
  }
  int code = submit::kExTempFail, down = 0;
  if (std::sscanf(text.c_str(), "%d %d", &code, &down) != 2) code = submit::kExTempFail;
  result.exit_code = code;
  result.down = down != 0;
  result.queue_id = text.substr(nl1 + 1, nl2 - nl1 - 1);
  result.error = text.substr(nl2 + 1);
  return result;
}

// A refusal for good: the user gets it back. A timeout, a 4xx, a lost connection or a protocol
// surprise: try again later.
bool refused(int exit_code) {
  return exit_code == submit::kExNoUser || exit_code == submit::kExDataErr ||
         exit_code == submit::kExUnavailable;
}

// SIGTERM or SIGINT waiting on the loop's signalfd (blocked until then): a long pass stops
// between two files, so that estafetted's stop does not have to kill us.
bool stop_pending() {
  sigset_t pending;
  return ::sigpending(&pending) == 0 &&
         (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

}  // namespace

Pickup::Pickup(const config::Config& config)
    : config_(config), dir_path_(submit::maildrop_dir(config)) {
  std::string why;
  dir_ = base::open_dir(dir_path_, {.create = false, .trusted = false}, &why);
  if (!dir_) throw std::runtime_error("cannot open " + dir_path_ + ": " + why);
  struct stat st {};
  if (::fstat(dir_.get(), &st) != 0 || (st.st_uid != 0 && st.st_uid != ::geteuid()))
    throw std::runtime_error(dir_path_ + " is not root's");
}

PassResult Pickup::pass() {
  PassResult result;
  // Names first, owners from lstat; the files themselves are opened one by one in take().
  struct Candidate {
    std::string name;
    std::time_t mtime;
  };
  std::map<uid_t, std::vector<Candidate>> by_owner;
  if (!scan_) {
    int dup = ::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0);
    scan_.reset(dup >= 0 ? ::fdopendir(dup) : nullptr);
    if (!scan_) {
      if (dup >= 0) ::close(dup);
      logger().error("cannot read " + dir_path_ + ": " + std::strerror(errno));
      return result;
    }
  }
  // A pass goes on from where the last one stopped, so that every name is seen in turn however
  // many a user planted; from the start again (and seeing new names) once it reached the end.
  stalled_.clear();
  mta_down_ = false;
  if (scan_done_) ::rewinddir(scan_.get());
  scan_done_ = false;
  const std::time_t now = std::time(nullptr);
  std::size_t scanned = 0;
  for (;;) {
    if (scanned++ >= kMaxScan) {
      result.more = true;
      break;
    }
    dirent* e = ::readdir(scan_.get());
    if (!e) {
      scan_done_ = true;
      break;
    }
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    auto remove = [&](const char* why) {
      logger().warning("removed " + dir_path_ + "/" + name + " (owner uid " +
                       std::to_string(st.st_uid) + "): " + why);
      ::unlinkat(dir_.get(), name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
      ++result.removed;
    };
    if (!S_ISREG(st.st_mode)) {
      remove("not a regular file");
      continue;
    }
    if (st.st_nlink != 1) {
      // Another name for the same file (a hard link, perhaps to someone else's file): not
      // submitted while it has one, nor removed (the other name may be the real one).
      logger().warning("left " + dir_path_ + "/" + name + " (owner uid " +
                       std::to_string(st.st_uid) + "): it has " + std::to_string(st.st_nlink) +
                       " links");
      ++result.kept;
      continue;
    }
    if (name.starts_with(".tmp.")) {
      if (now - st.st_mtime > 24 * 3600) remove("a temporary file older than a day");
      continue;
    }
    if (!submit::is_maildrop_name(name)) {
      remove("not a maildrop file name");
      continue;
    }
    auto& files = by_owner[st.st_uid];
    if (files.size() < kMaxPerPass)
      files.push_back({name, st.st_mtime});
    else
      result.more = true;
  }
  for (auto& [uid, files] : by_owner)
    std::sort(files.begin(), files.end(),
              [](const Candidate& a, const Candidate& b) { return a.mtime < b.mtime; });
  // Round robin over the owners, oldest first for each.
  std::size_t taken = 0;
  for (std::size_t round = 0; taken < kMaxPerPass; ++round) {
    bool any = false;
    for (auto& [uid, files] : by_owner) {
      if (round >= files.size()) continue;
      any = true;
      if (mta_down_) return result;  // esmtpd does not answer: the timer's next pass
      if (taken >= kMaxPerPass || stop_pending()) {
        result.more = true;
        return result;
      }
      ++taken;
      switch (take(files[round].name)) {
        case Outcome::Submitted:
          ++result.submitted;
          break;
        case Outcome::Returned:
          ++result.returned;
          break;
        case Outcome::Kept:
          ++result.kept;
          break;
      }
    }
    if (!any) break;
  }
  std::size_t total = 0;
  for (auto& [uid, files] : by_owner) total += files.size();
  if (total > taken) result.more = true;
  return result;
}

Pickup::Outcome Pickup::take(const std::string& name) {
  const std::string shown = dir_path_ + "/" + name;
  base::UniqueFd fd(::openat(dir_.get(), name.c_str(),
                             O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) {
    if (errno != ENOENT) logger().warning("cannot open " + shown + ": " + std::strerror(errno));
    if (errno == ELOOP) ::unlinkat(dir_.get(), name.c_str(), 0);
    return Outcome::Kept;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
    // Swapped since the scan: not a file estafette-sendmail wrote.
    logger().warning("removed " + shown + ": not a regular file with one link");
    ::unlinkat(dir_.get(), name.c_str(), 0);
    return Outcome::Kept;
  }
  const uid_t uid = st.st_uid;
  if (stalled_.count(uid)) return Outcome::Kept;
  auto owner = find_owner(uid);
  if (!owner) {
    logger().error(shown + ": its owner uid " + std::to_string(uid) +
                   " has no passwd entry; left in the maildrop");
    return Outcome::Kept;
  }
  if (::geteuid() != 0 && uid != ::geteuid()) {
    logger().error(shown + ": owned by uid " + std::to_string(uid) +
                   ", and estafette-pickup is not root; left in the maildrop");
    return Outcome::Kept;
  }
  const std::size_t max_file = config_.max_message_size + kFileSlack;
  std::string content;
  std::string refusal;
  if (static_cast<std::uint64_t>(st.st_size) > max_file) {
    refusal = "the file is too big (" + std::to_string(st.st_size) +
              " bytes, max_message_size is " + std::to_string(config_.max_message_size) + ")";
  } else {
    // The size fstat gave, plus one byte to see whether it grew meanwhile (estafette-sendmail
    // never writes a file after renaming it): never more than the bound.
    const auto size = static_cast<std::size_t>(st.st_size);
    content.resize(size + 1);
    std::size_t have = 0;
    while (have < content.size()) {
      ssize_t n =
          ::pread(fd.get(), content.data() + have, content.size() - have, static_cast<off_t>(have));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        logger().error("cannot read " + shown + ": " + std::strerror(errno));
        return Outcome::Kept;
      }
      if (n == 0) break;
      have += static_cast<std::size_t>(n);
    }
    content.resize(std::min(have, size));
    if (have > size) refusal = "the file was still being written to";
  }
  auto remove_it = [&] {
    struct stat now {};
    // Only the file that was read (its owner may have put another under the name meanwhile).
    if (::fstatat(dir_.get(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
        now.st_ino == st.st_ino && now.st_dev == st.st_dev)
      ::unlinkat(dir_.get(), name.c_str(), 0);
    ::fsync(dir_.get());
  };
  std::optional<submit::MaildropEntry> entry;
  if (refusal.empty()) {
    auto parsed = submit::parse_maildrop(content, submit::maildrop_limits(config_));
    if (!parsed.entry)
      refusal = "not a valid maildrop file: " + parsed.error;
    else
      entry = std::move(parsed.entry);
  }
  if (entry) {
    submit::Submission s{config_.hostname, entry->sender, entry->recipients, entry->wire,
                         entry->eight_bit};
    auto r = submit_as(*owner, s, submit::submit_socket_path(config_), config_.smtpd_timeout);
    if (r.late) stalled_.insert(uid);  // no more of this owner's files in this pass
    if (r.down) mta_down_ = true;      // nor anyone's: wait for the next pass
    if (r.exit_code == submit::kExOk) {
      remove_it();
      logger().information("picked up " + name + " from uid " + std::to_string(uid) +
                           ": queued as " + r.queue_id);
      return Outcome::Submitted;
    }
    if (!refused(r.exit_code)) {
      logger().warning("kept " + shown + " (uid " + std::to_string(uid) +
                       ") for later: " + r.error);
      return Outcome::Kept;
    }
    refusal = r.error;
  }
  logger().warning(shown + " (uid " + std::to_string(uid) + ") refused: " + refusal);
  if (!give_back(name, owner->name, refusal, entry ? &*entry : nullptr, content)) {
    logger().error("kept " + shown + ": cannot return it to uid " + std::to_string(uid));
    return Outcome::Kept;
  }
  remove_it();
  return Outcome::Returned;
}

bool Pickup::give_back(const std::string& name, const std::string& owner, const std::string& reason,
                       const submit::MaildropEntry* entry, std::string_view raw) {
  BounceInput in;
  in.hostname = config_.hostname;
  in.to = owner + "@" + config_.hostname;
  in.date = rfc5322_date(std::time(nullptr));
  in.message_id = new_message_id(config_.hostname);
  in.reason = reason;
  in.file_name = name;
  in.max_size = config_.max_message_size;
  if (entry) {
    in.parsed = true;
    in.sender = entry->sender;
    in.recipients = entry->recipients;
    in.wire = entry->wire;
  } else {
    in.raw = raw;
  }
  Bounce b = compose_bounce(in);
  // As ourselves (root, always allowed to submit), with the null sender.
  auto fd = submit::connect_submit(submit::submit_socket_path(config_), config_.smtpd_timeout);
  if (!fd) return false;
  submit::Submission s{config_.hostname, "", {in.to}, b.wire, b.eight_bit};
  auto r = submit::submit(fd.get(), s, config_.smtpd_timeout);
  if (r.exit_code != submit::kExOk) {
    logger().error("returning " + name + " to " + in.to + ": " + r.error);
    return false;
  }
  logger().information("returned " + name + " to " + in.to + ": queued as " + r.queue_id);
  return true;
}

}  // namespace estafette::pickup
