#include "modules/local/forward.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "lib/base/fd.h"
#include "lib/config/config.h"
#include "lib/routing/aliases.h"
#include "lib/smtp/address.h"
#include "lib/submit/client.h"

namespace estafette::local {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return smtp::to_lower(a) == smtp::to_lower(b);
}

// The header section of a plain message (the lines before the first empty one). Continuation
// lines are skipped by the caller: both fields it looks for carry their value on the first line.
std::string_view header_of(std::string_view plain) {
  if (plain.starts_with("\n")) return {};
  auto end = plain.find("\n\n");
  return end == std::string_view::npos ? plain : plain.substr(0, end + 1);
}

}  // namespace

ForwardList parse_forward(std::string_view text, const std::string& name, const std::string& user,
                          const std::string& domain,
                          const std::function<bool(std::string_view)>& is_local) {
  ForwardList list;
  auto fail = [&](int lineno, const std::string& why) {
    list.entries.clear();
    list.error = name + ":" + std::to_string(lineno) + ": " + why;
    return list;
  };
  auto add = [&](ForwardEntry e) {
    for (const auto& have : list.entries)
      if (have == e) return;
    list.entries.push_back(std::move(e));
  };
  std::istringstream in{std::string(text)};
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    auto body = config::trim(line);
    if (body.empty() || body[0] == '#') continue;
    auto items = routing::split_targets(body);
    if (!items) return fail(lineno, "unterminated quote");
    for (const auto& item : *items) {
      if (item[0] == '|') {
        std::string command(config::trim(std::string_view(item).substr(1)));
        if (command.empty()) return fail(lineno, "empty program after '|'");
        add({ForwardEntry::Kind::Program, command});
        continue;
      }
      if (item.starts_with(":include:")) return fail(lineno, ":include: is not allowed here");
      std::string_view addr = item;
      if (addr[0] == '\\') addr.remove_prefix(1);
      if (addr.starts_with('<') && addr.ends_with('>')) addr = addr.substr(1, addr.size() - 2);
      if (addr.empty()) return fail(lineno, "empty address");
      bool qualified = addr.find('@') != std::string_view::npos;
      bool ok = qualified ? smtp::parse_mailbox(addr).has_value() : smtp::is_valid_local_part(addr);
      // The reason only, never the text: it goes into replies, DSNs and logs, and the file
      // may hold what its owner must not see (a hard link to a file of root's).
      if (!ok) return fail(lineno, "bad address");
      std::string address = smtp::to_lower(addr);
      std::string local = address.substr(0, address.find('@'));
      if (local == user && (!qualified || is_local(smtp::domain_of(address)))) {
        add({ForwardEntry::Kind::Mailbox, ""});
        continue;
      }
      add({ForwardEntry::Kind::Address, qualified ? address : address + "@" + domain});
    }
  }
  return list;
}

std::string forward_file_problem(const struct stat& st, uid_t uid) {
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (st.st_uid != uid && st.st_uid != 0)
    return "owned by uid " + std::to_string(st.st_uid) + ", not by the user or root";
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return "writable by group or others";
  // A hard link to someone else's file (fs.protected_hardlinks = 0) is not the user's .forward.
  if (st.st_nlink > 1) return "has other hard links";
  if (static_cast<std::size_t>(st.st_size) > kMaxForwardSize)
    return "larger than " + std::to_string(kMaxForwardSize) + " bytes";
  return {};
}

ForwardFile read_forward_file(const std::string& path, uid_t uid) {
  ForwardFile f;
  // O_NONBLOCK: a FIFO planted there must not hang the open (fstat then refuses it).
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return f;
    // Opened as the user: what the user may not read is not its .forward.
    bool ignore = errno == ELOOP || errno == EACCES || errno == EPERM;
    f.state = ignore ? ForwardFile::State::Ignored : ForwardFile::State::Error;
    f.reason = errno == ELOOP ? "a symbolic link" : base::errno_text(errno);
    return f;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    f.state = ForwardFile::State::Error;
    f.reason = std::string("fstat: ") + base::errno_text(errno);
    return f;
  }
  if (auto problem = forward_file_problem(st, uid); !problem.empty()) {
    f.state = ForwardFile::State::Ignored;
    f.reason = problem;
    return f;
  }
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      f.state = ForwardFile::State::Error;
      f.reason = std::string("read: ") + base::errno_text(errno);
      return f;
    }
    if (n == 0) break;
    f.text.append(buf, static_cast<std::size_t>(n));
    if (f.text.size() > kMaxForwardSize) {  // grew since the fstat
      f.state = ForwardFile::State::Ignored;
      f.reason = "larger than " + std::to_string(kMaxForwardSize) + " bytes";
      return f;
    }
  }
  f.state = ForwardFile::State::Read;
  return f;
}

std::string forward_loop(std::string_view plain, std::string_view recipient) {
  std::size_t received = 0;
  std::string_view header = header_of(plain);
  while (!header.empty()) {
    auto eol = header.find('\n');
    std::string_view line = header.substr(0, eol);
    header = eol == std::string_view::npos ? std::string_view() : header.substr(eol + 1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || line[0] == ' ' || line[0] == '\t') continue;
    auto field = line.substr(0, colon);
    if (iequals(field, "Received") && ++received > kMaxReceived)
      return "more than " + std::to_string(kMaxReceived) + " Received: header lines";
    if (iequals(field, "Delivered-To") && iequals(config::trim(line.substr(colon + 1)), recipient))
      return "already delivered to " + std::string(recipient) + " (Delivered-To:)";
  }
  return {};
}

ipc::RcptResult combine_results(const std::string& recipient,
                                const std::vector<ipc::RcptResult>& results) {
  const ipc::RcptResult* temp = nullptr;
  for (const auto& r : results) {
    if (r.status == ipc::RcptStatus::PermFail) return r;
    if (r.status == ipc::RcptStatus::TempFail && !temp) temp = &r;
  }
  if (temp) return *temp;
  std::string reply = "250 2.0.0 <" + recipient + ">: delivered through .forward";
  for (const auto& r : results) reply += "; " + (r.reply.size() > 4 ? r.reply.substr(4) : r.reply);
  return {ipc::RcptStatus::Delivered, reply};
}

ipc::RcptResult resubmit(const Resubmission& r) {
  base::UniqueFd fd = submit::connect_submit(r.socket_path, r.timeout);
  if (!fd)
    return {ipc::RcptStatus::TempFail, "451 4.3.0 forwarding: cannot connect to " + r.socket_path +
                                           ": " + base::errno_text(errno)};
  bool eight_bit = false;
  for (char c : r.wire)
    if (static_cast<unsigned char>(c) >= 0x80) {
      eight_bit = true;
      break;
    }
  auto result =
      submit::submit(fd.get(), {r.helo, r.sender, r.recipients, r.wire, eight_bit}, r.timeout);
  std::string to;
  for (const auto& a : r.recipients) to += (to.empty() ? "<" : ", <") + a + ">";
  switch (result.exit_code) {
    case submit::kExOk:
      return {ipc::RcptStatus::Delivered,
              "250 2.0.0 forwarded to " + to + " as " + result.queue_id};
    case submit::kExNoUser:
    case submit::kExDataErr:
    case submit::kExUnavailable:
      return {ipc::RcptStatus::PermFail, "550 5.1.0 forwarding to " + to + ": " + result.error};
    default:
      return {ipc::RcptStatus::TempFail, "451 4.3.0 forwarding to " + to + ": " + result.error};
  }
}

}  // namespace estafette::local
