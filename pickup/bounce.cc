#include "pickup/bounce.h"

namespace estafette::pickup {

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  for (char ch : text.substr(0, max)) {
    auto c = static_cast<unsigned char>(ch);
    out += (c < 0x20 || c >= 0x7f) ? (c == '\r' || c == '\n' || c == '\t' ? ' ' : '?') : ch;
  }
  return out;
}

std::string to_wire(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32 + 2);
  bool line_start = true;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (line_start && c == '.') out += '.';
    out += c == '\0' ? '?' : c;
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  return out;
}

Bounce compose_bounce(const BounceInput& in) {
  std::string_view attached = in.parsed ? in.wire : std::string_view();
  std::string quoted;
  bool headers_only = false;
  constexpr std::size_t kRoom = 16 * 1024;  // our own text and header
  const std::size_t room = in.max_size > 2 * kRoom ? in.max_size - kRoom : kRoom;
  if (in.parsed && attached.size() > room) {
    headers_only = true;
    auto end = attached.find("\r\n\r\n");
    attached = attached.substr(0, end == std::string_view::npos ? 0 : end + 2);
    if (attached.size() > room) attached = {};
  }
  if (!in.parsed) {
    constexpr std::size_t kQuoted = 64 * 1024;
    quoted = to_wire(in.raw.substr(0, kQuoted));
    attached = quoted;
  }
  // A boundary that no line of the attachment can contain.
  std::string boundary = "=_estafette_bounce_" + printable(in.message_id, 40);
  for (auto& c : boundary)
    if (c == '<' || c == '>' || c == '@' || c == '"' || c == ' ') c = '_';
  while (attached.find(boundary) != std::string_view::npos) boundary += "_";

  std::string w;
  w += "From: MAILER-DAEMON@" + in.hostname + " (Mail Delivery System)\r\n";
  w += "To: " + in.to + "\r\n";
  w += "Subject: Undelivered Mail Returned to Sender\r\n";
  w += "Date: " + in.date + "\r\n";
  w += "Message-ID: " + in.message_id + "\r\n";
  w += "Auto-Submitted: auto-replied\r\n";
  w += "MIME-Version: 1.0\r\n";
  w += "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n";
  w += "This is a MIME-encapsulated message.\r\n\r\n";
  w += "--" + boundary + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
  w += "This is the mail system at " + in.hostname + ".\r\n\r\n";
  w += "A message you sent while the mail system was not running was kept in its maildrop,\r\n";
  w += "and could not be sent when it started:\r\n\r\n";
  w += "  " + printable(in.reason) + "\r\n\r\n";
  w += "Maildrop file: " + printable(in.file_name, 200) + "\r\n";
  if (in.parsed) {
    w += "Sender: <" + printable(in.sender) + ">\r\n";
    constexpr std::size_t kListed = 100;
    for (std::size_t i = 0; i < in.recipients.size() && i < kListed; ++i)
      w += "Recipient: <" + printable(in.recipients[i]) + ">\r\n";
    if (in.recipients.size() > kListed)
      w += "(and " + std::to_string(in.recipients.size() - kListed) + " more recipients)\r\n";
    if (headers_only) w += "\r\nThe message was too big to return whole: its header follows.\r\n";
  } else {
    w +=
        "\r\nThe file was not a message written by estafette-sendmail; its first bytes follow.\r\n";
  }
  w += "\r\n--" + boundary + "\r\n";
  if (!in.parsed)
    w += "Content-Type: text/plain; charset=unknown-8bit\r\n"
         "Content-Description: the maildrop file\r\n\r\n";
  else if (headers_only)
    w += "Content-Type: text/rfc822-headers\r\nContent-Description: its header\r\n\r\n";
  else
    w += "Content-Type: message/rfc822\r\nContent-Description: the message\r\n\r\n";
  w += attached;
  if (!attached.empty() && !attached.ends_with("\r\n")) w += "\r\n";
  w += "\r\n--" + boundary + "--\r\n";
  Bounce b;
  b.wire = std::move(w);
  for (char c : b.wire)
    if (static_cast<unsigned char>(c) >= 0x80) {
      b.eight_bit = true;
      break;
    }
  return b;
}

}  // namespace estafette::pickup
