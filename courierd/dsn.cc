#include "courierd/dsn.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <ctime>

#include "lib/base/fd.h"
#include "lib/smtp/dotstuff.h"
#include "lib/smtp/esmtp_params.h"

namespace estafette::courierd {

namespace {

bool digits(std::string_view s, std::size_t min, std::size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// The enhanced status code following a 3-digit reply code, or "".
std::string enhanced_code(std::string_view reply) {
  if (reply.size() < 4 || !digits(reply.substr(0, 3), 3, 3)) return "";
  std::string_view rest = reply.substr(4);
  std::size_t end = 0;
  while (end < rest.size() &&
         (std::isdigit(static_cast<unsigned char>(rest[end])) || rest[end] == '.'))
    ++end;
  std::string_view code = rest.substr(0, end);
  auto d1 = code.find('.');
  if (d1 == std::string_view::npos) return "";
  auto d2 = code.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return "";
  if (!digits(code.substr(0, d1), 1, 1) || !digits(code.substr(d1 + 1, d2 - d1 - 1), 1, 3) ||
      !digits(code.substr(d2 + 1), 1, 3))
    return "";
  if (code[0] != '2' && code[0] != '4' && code[0] != '5') return "";
  return std::string(code);
}

// One line of printable ASCII: line breaks of multi-line replies become spaces.
std::string one_line(std::string_view text) {
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\r') continue;
    if (c == '\n' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else if (u < 0x20 || u > 0x7e) {
      out.push_back('?');
    } else {
      out.push_back(c);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Header lines of the original: LF ends, no empty line, no bare CRs.
std::string clean_headers(std::string_view headers) {
  std::string out;
  for (char c : headers)
    if (c != '\r') out.push_back(c);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (!out.empty()) out.push_back('\n');
  return out;
}

}  // namespace

std::string dsn_status(std::string_view reply, bool expired) {
  std::string code = enhanced_code(reply);
  if (!code.empty() && code[0] == '5') return code;
  if (expired) return !code.empty() && code[0] == '4' ? code : "4.4.7";
  return "5.0.0";
}

std::string remote_host_name(std::string_view remote) {
  auto end = remote.find_first_of("[:");
  if (end == 0 && remote.front() == '[') {  // "[192.0.2.1]:25": no name, the address then
    auto close = remote.find(']');
    if (close != std::string_view::npos) return std::string(remote.substr(1, close - 1));
  }
  return std::string(remote.substr(0, end));
}

std::string_view action_text(DsnAction action) {
  switch (action) {
    case DsnAction::Failed:
      break;
    case DsnAction::Delayed:
      return "delayed";
    case DsnAction::Delivered:
      return "delivered";
    case DsnAction::Relayed:
      return "relayed";
  }
  return "failed";
}

std::string success_status(std::string_view reply) {
  std::string code = enhanced_code(reply);
  return !code.empty() && code[0] == '2' ? code : "2.0.0";
}

std::string delay_status(std::string_view reply) {
  std::string code = enhanced_code(reply);
  return !code.empty() && code[0] == '4' ? code : "4.0.0";
}

std::string original_recipient(std::string_view orcpt, std::string_view recipient) {
  if (auto o = smtp::parse_orcpt(orcpt)) return o->type + "; " + one_line(o->address);
  return "rfc822; " + one_line(recipient);
}

namespace {

struct NoticeText {
  const char* subject;
  const char* explanation;  // after "This is the mail system at host X.\n\n"
  const char* attachment;   // Content-Description of the original
};

NoticeText notice_text(DsnAction action, bool whole_message) {
  switch (action) {
    case DsnAction::Failed:
      break;
    case DsnAction::Delayed:
      return {"Delayed Mail (still being retried)",
              "Your message could not be delivered yet to one or more recipients.\n"
              "It will be retried until it is too old; you need not send it again.\n"
              "Its headers are attached below.\n",
              "Undelivered Message Headers"};
    case DsnAction::Delivered:
    case DsnAction::Relayed:
      return {"Successful Mail Delivery Report",
              "Your message was delivered (or relayed to a system that sends no reports)\n"
              "to the recipients below, as you asked. Its headers are attached below.\n",
              "Message Headers"};
  }
  return {"Undelivered Mail Returned to Sender",
          whole_message ? "I'm sorry to have to inform you that your message could not\n"
                          "be delivered to one or more recipients. It is attached below.\n"
                        : "I'm sorry to have to inform you that your message could not\n"
                          "be delivered to one or more recipients. Its headers are attached "
                          "below.\n",
          whole_message ? "Undelivered Message" : "Undelivered Message Headers"};
}

// The Diagnostic-Code and the human-readable line of one recipient. Cut to kMaxDiagnostic: a
// server's reply may be 64 KB (many lines joined into one), and a notice line must stay within
// RFC 5322's 998 characters, with the recipient (an address: at most 320) before it in the human
// part.
constexpr std::size_t kMaxDiagnostic = 600;
std::string diagnostic(const DsnRecipient& f) {
  std::string diag = one_line(f.reply);
  if (f.expired) diag = "delivery time expired; last reply: " + diag;
  if (diag.size() > kMaxDiagnostic) diag.replace(kMaxDiagnostic - 3, std::string::npos, "...");
  return diag;
}

std::string status_of(const DsnRecipient& f) {
  switch (f.action) {
    case DsnAction::Failed:
      break;
    case DsnAction::Delayed:
      return delay_status(f.reply);
    case DsnAction::Delivered:
    case DsnAction::Relayed:
      return success_status(f.reply);
  }
  return dsn_status(f.reply, f.expired);
}

}  // namespace

std::string compose_dsn(const DsnRequest& r) {
  const DsnAction kind = r.recipients.empty() ? DsnAction::Failed : r.recipients.front().action;
  const bool whole = !r.original_message.empty();
  const NoticeText text = notice_text(kind, whole);
  const std::string boundary = r.message_id + "/" + r.hostname;
  std::string m;
  m += "From: MAILER-DAEMON@" + r.hostname + " (Mail Delivery System)\n";
  m += "To: <" + one_line(r.sender) + ">\n";
  m += std::string("Subject: ") + text.subject + "\n";
  m += "Date: " + rfc5322_date(r.now) + "\n";
  m += "Message-ID: <" + r.message_id + "@" + r.hostname + ">\n";
  m += "Auto-Submitted: auto-replied\n";
  m += "MIME-Version: 1.0\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\n";
  m += "\tboundary=\"" + boundary + "\"\n";
  m += "\n";
  m += "This is a MIME-encapsulated message.\n\n";

  m += "--" + boundary + "\n";
  m += "Content-Description: Notification\n";
  m += "Content-Type: text/plain; charset=us-ascii\n\n";
  m += "This is the mail system at host " + r.hostname + ".\n\n";
  m += text.explanation;
  m += "\n";
  for (const auto& f : r.recipients) {
    m += "<" + one_line(f.recipient) + ">: ";
    if (f.action == DsnAction::Delivered) m += "delivered";
    if (f.action == DsnAction::Relayed) m += "relayed to a system that sends no reports";
    if (f.action == DsnAction::Delayed) m += "not delivered yet";
    if (!f.reply.empty())
      m += (f.action == DsnAction::Failed ? "" : "; last reply: ") + diagnostic(f);
    m += "\n";
  }
  m += "\n";

  m += "--" + boundary + "\n";
  m += "Content-Description: Delivery report\n";
  m += "Content-Type: message/delivery-status\n\n";
  if (auto envid = smtp::xtext_decode(r.envid); envid && !envid->empty())
    m += "Original-Envelope-Id: " + one_line(*envid) + "\n";
  m += "Reporting-MTA: dns; " + r.hostname + "\n";
  m += "X-Estafette-Queue-ID: " + r.queue_id + "\n";
  m += "Arrival-Date: " + rfc5322_date(r.arrival) + "\n";
  for (const auto& f : r.recipients) {
    m += "\n";
    m += "Original-Recipient: " + original_recipient(f.orcpt, f.recipient) + "\n";
    m += "Final-Recipient: rfc822; " + one_line(f.recipient) + "\n";
    m += "Action: " + std::string(action_text(f.action)) + "\n";
    m += "Status: " + status_of(f) + "\n";
    if (!f.remote_mta.empty()) m += "Remote-MTA: dns; " + one_line(f.remote_mta) + "\n";
    if (!f.reply.empty()) m += "Diagnostic-Code: smtp; " + diagnostic(f) + "\n";
    if (f.action == DsnAction::Delayed && r.retry_until > 0)
      m += "Will-Retry-Until: " + rfc5322_date(r.retry_until) + "\n";
  }
  m += "\n";

  m += "--" + boundary + "\n";
  m += std::string("Content-Description: ") + text.attachment + "\n";
  if (whole) {
    m += "Content-Type: message/rfc822\n\n";
    std::string original;
    for (char c : r.original_message)
      if (c != '\r') original.push_back(c);
    m += original;
    if (!original.empty() && original.back() != '\n') m += "\n";
  } else {
    m += "Content-Type: text/rfc822-headers\n\n";
    m += clean_headers(r.original_headers);
  }
  m += "\n";
  m += "--" + boundary + "--\n";
  return smtp::stuff(m);
}

namespace {

// At most `want` bytes of the file at `path` from `offset`: fewer where it ends or cannot be read.
std::string read_span(const std::string& path, std::uint64_t offset, std::uint64_t want) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  std::string wire(want, '\0');
  std::size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd.get(), wire.data() + got, want - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  wire.resize(got);
  return wire;
}

// Wire form (dot-stuffed, CRLF) to plain text with LF line ends.
std::string unstuff_to_lf(const std::string& wire) {
  std::string plain;
  smtp::Unstuffer unstuffer(true);
  unstuffer.feed(wire, plain);
  unstuffer.finish(plain);
  return plain;
}

}  // namespace

std::string read_original_headers(const std::string& path, std::uint64_t body_offset,
                                  std::uint64_t body_size, std::size_t max_bytes) {
  std::string wire = read_span(path, body_offset, std::min<std::uint64_t>(body_size, max_bytes));
  const std::size_t got = wire.size();
  // The header section ends at the first empty line (or at a body without one).
  std::size_t end = wire.size();
  if (wire.rfind("\r\n", 0) == 0) return "";
  if (auto pos = wire.find("\r\n\r\n"); pos != std::string::npos) end = pos + 2;
  wire.resize(end);
  // Cut a header section truncated by max_bytes back to the last complete line.
  if (end == got && got == max_bytes) {
    auto last = wire.rfind("\r\n");
    wire.resize(last == std::string::npos ? 0 : last + 2);
  }
  return unstuff_to_lf(wire);
}

std::string read_original_message(const std::string& path, std::uint64_t body_offset,
                                  std::uint64_t body_size, std::size_t max_bytes) {
  if (body_size > max_bytes) return "";
  std::string wire = read_span(path, body_offset, body_size);
  if (wire.size() != body_size) return "";  // unreadable or cut short
  return unstuff_to_lf(wire);
}

}  // namespace estafette::courierd
