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

// Reads [offset, offset+size) of a file; false (errno set) on an error or a short file (EIO:
// the queue file is shorter than its index says).
bool read_range(const std::string& path, std::uint64_t offset, std::uint64_t size,
                std::string& out) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return fd && base::read_exact(fd.get(), offset, size, out);
}

// Creates box/{tmp,new,cur} (any of them may exist) and makes their entries durable.
bool make_box(const std::string& box) {
  if (::mkdir(box.c_str(), 0700) != 0 && errno != EEXIST) return false;
  for (const char* sub : {"/tmp", "/new", "/cur"})
    if (::mkdir((box + sub).c_str(), 0700) != 0 && errno != EEXIST) return false;
  return base::fsync_dir(box) && base::fsync_dir(box.substr(0, box.rfind('/')));
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
  result.remote = "maildir";
  std::string wire;
  if (!read_range(d.path, d.body_offset, d.body_size, wire)) {
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
  auto file = read_forward_file(path, *box.uid);
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
    // A system user's Maildir is written as that user (effective ids, restored after).
    if (::setegid(box.gid) != 0 || ::seteuid(*box.uid) != 0) {
      int err = errno;
      (void)::seteuid(0);
      (void)::setegid(0);
      return {ipc::RcptStatus::TempFail, io_error(rcpt, "seteuid", err)};
    }
    auto r = write_maildir(box, rcpt, sender, plain);
    if (::seteuid(0) != 0 || ::setegid(0) != 0) std::abort();  // must not go on as the user
    return r;
  }
  return write_maildir(box, rcpt, sender, plain);
}

ipc::RcptResult MaildirDelivery::write_maildir(const routing::Mailbox& mailbox,
                                               const std::string& rcpt, const std::string& sender,
                                               std::string_view plain) {
  const std::string& box = mailbox.path;
  const std::string name = box.substr(box.rfind('/') + 1);
  const std::string file = unique_name();
  const std::string tmp = box + "/tmp/" + file;
  const std::string dest = box + "/new/" + file;
  std::string head = "Return-Path: <" + sender + ">\nDelivered-To: " + rcpt + "\n";

  constexpr int kCreate = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  base::UniqueFd fd(::open(tmp.c_str(), kCreate, 0600));
  if (!fd && errno == ENOENT) {
    // A new mailbox (the common case, an existing one, costs no mkdir). Its directories must
    // survive a crash as the message will: sync each one's entry into its parent. Only the
    // router may let a mailbox be created; an existing one may still lack tmp/new/cur.
    struct stat st {};
    if (!mailbox.create && ::stat(box.c_str(), &st) != 0)
      return {ipc::RcptStatus::PermFail, "550 5.1.1 <" + rcpt + ">: no such mailbox"};
    std::string parent = box.substr(0, box.rfind('/'));
    if ((mailbox.create && !mailbox.uid && !base::make_dirs(parent, 0700)) || !make_box(box))
      return {ipc::RcptStatus::TempFail, io_error(name, "mkdir", errno)};
    fd.reset(::open(tmp.c_str(), kCreate, 0600));
  }
  if (!fd) return {ipc::RcptStatus::TempFail, io_error(name, "create", errno)};
  const char* failed = nullptr;
  if (!base::write_all(fd.get(), head) || !base::write_all(fd.get(), plain))
    failed = "write";
  else if (::fsync(fd.get()) != 0)
    failed = "fsync";
  else if (::close(fd.release()) != 0)
    failed = "close";
  else if (::rename(tmp.c_str(), dest.c_str()) != 0)
    failed = "rename";
  else if (!base::fsync_dir(box + "/new"))
    failed = "fsync new/";
  if (failed) {
    int err = errno;
    fd.reset();
    ::unlink(tmp.c_str());
    return {ipc::RcptStatus::TempFail, io_error(name, failed, err)};
  }
  return {ipc::RcptStatus::Delivered, "250 2.0.0 delivered to maildir " + name + "/new/" + file};
}

}  // namespace estafette::local
