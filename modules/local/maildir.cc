#include "modules/local/maildir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/base/log.h"
#include "lib/base/paths.h"
#include "lib/base/privileges.h"
#include "lib/base/safe_dir.h"
#include "lib/smtp/address.h"
#include "lib/smtp/dotstuff.h"
#include "lib/smtp/hop_count.h"
#include "lib/submit/socket.h"
#include "modules/local/forward.h"
#include "modules/local/program.h"

namespace estafette::local {

namespace {

std::string io_error(const std::string& mailbox, const char* what, int err) {
  if (err == ENOSPC || err == EDQUOT)
    return "452 4.3.1 mailbox " + mailbox + ": insufficient system storage (" + what + ": " +
           base::errno_text(err) + ")";
  return "451 4.3.0 mailbox " + mailbox + ": " + what + ": " + base::errno_text(err);
}

// Reads [offset, offset+size) of the queue file courierd names; false (errno set) on an error
// or a short file (EIO: the queue file is shorter than its index says). The path comes from
// courierd, which runs as `user` like everything that writes queue/: it is opened with that
// user's rights (O_NOFOLLOW too), so a forged path or a link planted in queue/ can give us
// nothing that user could not read itself (say /etc/shadow).
bool read_range(const config::Config& config, const std::string& path, std::uint64_t offset,
                std::uint64_t size, std::string& out) {
  std::optional<base::Account> account;
  if (!config.user.empty() && ::geteuid() == 0) {
    account = base::find_account(config.user);
    if (!account) {
      errno = ESRCH;
      return false;
    }
  }
  base::UniqueFd fd;
  {
    std::optional<base::ActingAs> as_user;
    if (account) {
      as_user.emplace(account->uid, account->gid);
      if (!as_user->ok()) return false;
    }
    fd.reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  }
  return fd && base::read_exact(fd.get(), offset, size, out);
}

// The mailbox directory itself. Root's Maildirs (no uid: maildir_root, hosted_mailboxes) by a
// walk from "/" that follows no symlink and trusts only directories of root's (safe_dir.h): the
// state directory's other parts belong to the unprivileged user. A system user's Maildir is
// opened as that user (deliver_maildir), so the kernel checks what the user may do; its own
// ~/Maildir may be a symlink of its own. With `create`, missing directories are made (for a
// system user only the Maildir itself: the home must exist).
base::UniqueFd open_box(const routing::Mailbox& box, bool create, std::string* why) {
  if (!box.uid) return base::open_dir(box.path, {.create = create, .mode = 0700}, why);
  if (create && ::mkdir(box.path.c_str(), 0700) == 0) {
    if (!base::fsync_dir(box.path.substr(0, box.path.rfind('/')))) {
      *why = "fsync " + box.path + "/..: " + base::errno_text(errno);
      return base::UniqueFd();
    }
  }
  base::UniqueFd fd(::open(box.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) *why = box.path + ": " + base::errno_text(errno);
  return fd;
}

}  // namespace

std::string wire_to_plain(std::string_view wire) {
  std::string out;
  smtp::Unstuffer unstuffer(true);
  unstuffer.feed(wire, out);
  unstuffer.finish(out);
  return out;
}

MaildirDelivery::MaildirDelivery(const std::shared_ptr<const routing::Router>& router,
                                 std::string hostname)
    : router_(router) {
  for (char c : hostname) {
    if (c == '/')
      hostname_ += "\\057";
    else if (c == ':')
      hostname_ += "\\072";
    else
      hostname_ += c;
  }
}

std::string MaildirDelivery::unique_name() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1000000;
  return std::to_string(secs) + ".M" + std::to_string(usecs) + "P" + std::to_string(::getpid()) +
         "_" + std::to_string(++counter_) + "." + hostname_;
}

ipc::DeliverResult MaildirDelivery::deliver(const ipc::Deliver& d) {
  ipc::DeliverResult result;
  result.job_id = d.job_id;
  result.remote = "local";
  std::string wire;
  if (!read_range(router_->config(), d.path, d.body_offset, d.body_size, wire)) {
    std::string reply = "451 4.3.0 cannot read queue file: " + std::string(base::errno_text(errno));
    for (std::size_t i = 0; i < d.recipients.size(); ++i)
      result.results.push_back({ipc::RcptStatus::TempFail, reply});
    return result;
  }
  std::string plain = wire_to_plain(wire);  // the wire form stays for forwarding (.forward)
  // A queued message over max_hops (one esmtpd did not refuse: an older queue, a record
  // written otherwise) is a mail loop: bounced, never delivered.
  const std::size_t max_hops = router_->config().max_hops;
  if (std::size_t hops = smtp::count_received(plain); max_hops > 0 && hops > max_hops) {
    std::string reply = "554 5.4.6 mail loop: " + std::to_string(hops) +
                        " Received: header fields (max_hops " + std::to_string(max_hops) + ")";
    base::log("local").warning("id=" + d.queue_id + " " + reply.substr(10));
    result.results.assign(d.recipients.size(), {ipc::RcptStatus::PermFail, reply});
    return result;
  }
  for (std::size_t i = 0; i < d.recipients.size(); ++i)
    result.results.push_back(deliver_one(d.recipients[i],
                                         i < d.programs.size() ? d.programs[i] : std::string(),
                                         d.sender, plain, wire));
  return result;
}

ipc::RcptResult MaildirDelivery::deliver_one(const std::string& rcpt, const std::string& program,
                                             const std::string& sender, std::string_view plain,
                                             std::string_view wire) {
  if (!program.empty()) {
    if (!router_->config().allow_program_delivery)
      return {ipc::RcptStatus::PermFail,
              "550 5.7.1 <" + rcpt + ">: delivery to programs is disabled"};
    // The queue record (written by esmtpd or courierd, both unprivileged) only claims that the
    // alias names this program: our own read of the alias files decides, and gives the uid.
    auto p = router_->program_of(rcpt, program);
    if (!p) {
      base::log("local").warning("refused program target for <" + rcpt +
                                 ">: no alias of ours names it (forged or stale queue record)");
      return {ipc::RcptStatus::PermFail,
              "550 5.7.1 <" + rcpt + ">: no alias names this program delivery"};
    }
    return run_as(p->uid, p->command, rcpt, sender, plain);
  }
  auto box = router_->mailbox(rcpt);
  if (!box.reply.empty()) return {ipc::RcptStatus::PermFail, box.reply};
  if (box.lmtp)  // courierd routed it here under an older config: the next try goes by LMTP
    return {ipc::RcptStatus::TempFail,
            "451 4.3.0 <" + rcpt + ">: delivered by LMTP (transport), not to a Maildir"};
  if (box.uid && ::geteuid() == 0)
    if (auto r = deliver_forward(box, rcpt, sender, plain, wire)) return *r;
  return deliver_maildir(box, rcpt, sender, plain);
}

ipc::RcptResult MaildirDelivery::run_as(uid_t uid, const std::string& command,
                                        const std::string& rcpt, const std::string& sender,
                                        std::string_view plain) {
  const config::Config& config = router_->config();
  std::string message = "Return-Path: <" + sender + ">\nDelivered-To: " + rcpt + "\n";
  message.append(plain);
  return run_program(
      {command, uid, config.program_user,
       std::chrono::duration_cast<std::chrono::milliseconds>(config.program_timeout), sender, rcpt},
      message);
}

std::optional<ipc::RcptResult> MaildirDelivery::deliver_forward(const routing::Mailbox& box,
                                                                const std::string& rcpt,
                                                                const std::string& sender,
                                                                std::string_view plain,
                                                                std::string_view wire) {
  const config::Config& config = router_->config();
  const std::string path = box.home + "/.forward";
  ForwardFile file;
  {
    // As the user, as Postfix's local(8): root must not read what the user could not.
    base::ActingAs as_user(*box.uid, box.gid, base::groups_of(box.user, box.gid));
    if (!as_user.ok())
      return ipc::RcptResult{ipc::RcptStatus::TempFail, io_error(rcpt, "seteuid", errno)};
    file = read_forward_file(path, *box.uid);
  }
  switch (file.state) {
    case ForwardFile::State::Absent:
      return std::nullopt;
    case ForwardFile::State::Ignored:
      base::log("local").warning("ignoring " + path + ": " + file.reason);
      return std::nullopt;
    case ForwardFile::State::Error:
      return ipc::RcptResult{ipc::RcptStatus::TempFail,
                             "451 4.3.0 <" + rcpt + ">: " + path + ": " + file.reason};
    case ForwardFile::State::Read:
      break;
  }
  auto list = parse_forward(file.text, path, smtp::to_lower(box.user), smtp::domain_of(rcpt),
                            [&](std::string_view d) { return router_->is_local_domain(d); });
  // A broken .forward is retried (and bounced when the message expires): its owner can fix it.
  if (!list.error.empty())
    return ipc::RcptResult{ipc::RcptStatus::TempFail, "451 4.3.5 <" + rcpt + ">: " + list.error};
  if (list.entries.empty()) return std::nullopt;
  if (auto loop = forward_loop(plain, rcpt); !loop.empty())
    return ipc::RcptResult{ipc::RcptStatus::PermFail,
                           "554 5.4.6 <" + rcpt + ">: mail forwarding loop: " + loop};
  std::vector<ipc::RcptResult> results;
  std::vector<std::string> forward_to;
  for (const auto& e : list.entries) {
    switch (e.kind) {
      case ForwardEntry::Kind::Mailbox:
        results.push_back(deliver_maildir(box, rcpt, sender, plain));
        break;
      case ForwardEntry::Kind::Program:
        if (!config.allow_program_delivery)
          results.push_back({ipc::RcptStatus::PermFail,
                             "550 5.7.1 <" + rcpt + ">: " + path +
                                 " names a program, but delivery to programs is disabled "
                                 "(allow_program_delivery = no)"});
        else
          results.push_back(run_as(*box.uid, e.value, rcpt, sender, plain));
        break;
      case ForwardEntry::Kind::Address:
        forward_to.push_back(e.value);
        break;
    }
  }
  if (!forward_to.empty()) {
    // The Delivered-To: line lets the next delivery to this user see the loop.
    std::string copy = "Delivered-To: " + rcpt + "\r\n";
    copy.append(wire);
    results.push_back(
        resubmit({submit::submit_socket_path(config), config.hostname, sender, forward_to, copy,
                  std::chrono::duration_cast<std::chrono::seconds>(config.smtpd_timeout)}));
  }
  return combine_results(rcpt, results);
}

ipc::RcptResult MaildirDelivery::deliver_maildir(const routing::Mailbox& box,
                                                 const std::string& rcpt, const std::string& sender,
                                                 std::string_view plain) {
  const config::Config& config = router_->config();
  std::size_t limit =
      config.max_mailbox_message_size ? config.max_mailbox_message_size : config.max_message_size;
  if (plain.size() > limit)
    return {ipc::RcptStatus::PermFail,
            "552 5.2.3 <" + rcpt + ">: message of " + std::to_string(plain.size()) +
                " bytes exceeds the mailbox limit of " + std::to_string(limit)};
  if (box.uid && ::geteuid() == 0) {
    // A system user's Maildir is written as that user (effective ids and groups, root's after).
    base::ActingAs as_user(*box.uid, box.gid, base::groups_of(box.user, box.gid));
    if (!as_user.ok()) return {ipc::RcptStatus::TempFail, io_error(rcpt, "seteuid", errno)};
    return write_maildir(box, rcpt, sender, plain);
  }
  return write_maildir(box, rcpt, sender, plain);
}

ipc::RcptResult MaildirDelivery::write_maildir(const routing::Mailbox& mailbox,
                                               const std::string& rcpt, const std::string& sender,
                                               std::string_view plain) {
  const std::string& box = mailbox.path;
  const std::string name = box.substr(box.rfind('/') + 1);
  const std::string file = unique_name();
  std::string head = "Return-Path: <" + sender + ">\nDelivered-To: " + rcpt + "\n";
  std::string why;
  auto unsafe = [&](const char* what) {
    int err = errno;
    base::log("local").warning("mailbox " + box + " for <" + rcpt + ">: " + what + ": " + why +
                               " (delivery deferred)");
    return ipc::RcptResult{ipc::RcptStatus::TempFail, io_error(name, what, err)};
  };

  // Every directory is opened by fd, never by a path that could be redirected meanwhile.
  // A new mailbox (an existing one costs no mkdir) is made only where the router says so, and
  // its directories' entries are synced into their parents, so they survive a crash as the
  // message will. An existing mailbox may still lack tmp/new/cur.
  base::UniqueFd box_fd = open_box(mailbox, false, &why);
  if (!box_fd && errno == ENOENT) {
    if (!mailbox.create)
      return {ipc::RcptStatus::PermFail, "550 5.1.1 <" + rcpt + ">: no such mailbox"};
    box_fd = open_box(mailbox, true, &why);
  }
  if (!box_fd) return unsafe("mkdir");
  const base::DirWalk existing{.create = false};
  const base::DirWalk make{.create = true};
  base::UniqueFd tmp_fd = base::open_dir_at(box_fd.get(), box, "tmp", existing, &why);
  if (!tmp_fd && errno == ENOENT) {
    for (const char* sub : {"cur", "new"})
      if (!base::open_dir_at(box_fd.get(), box, sub, make, &why)) return unsafe("mkdir");
    tmp_fd = base::open_dir_at(box_fd.get(), box, "tmp", make, &why);
  }
  if (!tmp_fd) return unsafe("open tmp/");
  base::UniqueFd new_fd = base::open_dir_at(box_fd.get(), box, "new", make, &why);
  if (!new_fd) return unsafe("open new/");

  constexpr int kCreate = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  base::UniqueFd fd(::openat(tmp_fd.get(), file.c_str(), kCreate, 0600));
  if (!fd) return {ipc::RcptStatus::TempFail, io_error(name, "create", errno)};
  const char* failed = nullptr;
  if (!base::write_all(fd.get(), head) || !base::write_all(fd.get(), plain))
    failed = "write";
  else if (::fsync(fd.get()) != 0)
    failed = "fsync";
  else if (::close(fd.release()) != 0)
    failed = "close";
  else if (::renameat(tmp_fd.get(), file.c_str(), new_fd.get(), file.c_str()) != 0)
    failed = "rename";
  else if (::fsync(new_fd.get()) != 0)
    failed = "fsync new/";
  if (failed) {
    int err = errno;
    fd.reset();
    ::unlinkat(tmp_fd.get(), file.c_str(), 0);
    return {ipc::RcptStatus::TempFail, io_error(name, failed, err)};
  }
  return {ipc::RcptStatus::Delivered, "250 2.0.0 delivered to maildir " + name + "/new/" + file};
}

}  // namespace estafette::local
