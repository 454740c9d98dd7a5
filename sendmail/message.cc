#include "sendmail/message.h"

#include <algorithm>
#include <cstdio>

namespace estafette::sendmail {

namespace {

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The field name of a header line ("Subject: x" -> "subject"), or "" when it is not one:
// printable ASCII except ":" and space, then optional white space (obsolete syntax) and ":".
std::string field_name(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && line[i] > 32 && line[i] < 127 && line[i] != ':') ++i;
  if (i == 0) return "";
  std::size_t name_end = i;
  while (i < line.size() && is_wsp(line[i])) ++i;
  if (i >= line.size() || line[i] != ':') return "";
  return lower(line.substr(0, name_end));
}

struct Field {
  std::string name;                     // lower-case
  std::vector<std::string_view> lines;  // the first line and its continuation lines
};

// A display name as a quoted string when it contains anything but atext and spaces.
std::string display_name(std::string_view name) {
  static constexpr std::string_view kAtextSpecials = "!#$%&'*+-/=?^_`{|}~ ";
  bool plain = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kAtextSpecials.find(c) != std::string_view::npos;
  });
  if (plain) return std::string(name);
  std::string out = "\"";
  for (char c : name) {
    if (c == '\r' || c == '\n') continue;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string qualify(std::string address, const std::string& domain) {
  // An address without "@" outside a quoted local part gets our domain.
  bool quoted = false;
  bool at = false;
  for (char c : address) {
    if (c == '"') quoted = !quoted;
    if (c == '@' && !quoted) at = true;
  }
  if (!at && !domain.empty()) address += "@" + domain;
  return address;
}

}  // namespace

bool MessageInput::feed(std::string_view bytes) {
  if (done_) return true;
  std::size_t scan = text_.size();
  text_.append(bytes);
  if (ignore_dots_) return false;
  for (std::size_t nl = text_.find('\n', scan); nl != std::string::npos;
       nl = text_.find('\n', nl + 1)) {
    std::string_view line(text_.data() + line_start_, nl - line_start_);
    if (line == "." || line == ".\r") {
      text_.resize(line_start_);
      done_ = true;
      return true;
    }
    line_start_ = nl + 1;
  }
  return false;
}

void MessageInput::finish() {
  if (done_) return;
  done_ = true;
  if (ignore_dots_) return;
  std::string_view last(text_.data() + line_start_, text_.size() - line_start_);
  if (last == "." || last == ".\r") text_.resize(line_start_);
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    lines.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

std::vector<std::string> parse_address_list(std::string_view value) {
  std::vector<std::string> out;
  std::string plain;  // the mailbox outside angle brackets (white space removed)
  std::string angle;  // inside <...>
  bool has_angle = false;
  auto emit = [&] {
    std::string address = has_angle ? angle : plain;
    // Source route "@a,@b:user@host": keep what follows the last ':'.
    if (!address.empty() && address[0] == '@') {
      auto colon = address.rfind(':');
      address = colon == std::string::npos ? "" : address.substr(colon + 1);
    }
    if (!address.empty()) out.push_back(std::move(address));
    plain.clear();
    angle.clear();
    has_angle = false;
  };
  bool in_angle = false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    std::string& target = in_angle ? angle : plain;
    if (c == '"') {  // a quoted string, kept with its quotes (a quoted local part)
      std::string q = "\"";
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) q += value[i++];
        q += value[i];
      }
      q += '"';
      target += q;
    } else if (c == '(') {  // a comment, possibly nested
      int depth = 1;
      for (++i; i < value.size() && depth > 0; ++i) {
        if (value[i] == '\\') {
          ++i;
        } else if (value[i] == '(') {
          ++depth;
        } else if (value[i] == ')') {
          --depth;
        }
      }
      --i;
    } else if (c == '<' && !in_angle) {
      in_angle = true;
      has_angle = true;
      angle.clear();
    } else if (c == '>' && in_angle) {
      in_angle = false;
    } else if (in_angle) {
      if (!is_wsp(c) && c != '\r' && c != '\n') angle += c;
    } else if (c == ',' || c == ';') {
      emit();
    } else if (c == ':') {  // "group:" -- what came before was the group's name
      plain.clear();
      has_angle = false;
    } else if (!is_wsp(c) && c != '\r' && c != '\n') {
      if (has_angle) continue;  // text after <...> (bad syntax): ignored
      plain += c;
    }
  }
  emit();
  return out;
}

std::string format_date(std::time_t t, long gmtoff) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t local = t + gmtoff;
  std::tm tm{};
  gmtime_r(&local, &tm);
  long off = gmtoff < 0 ? -gmtoff : gmtoff;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
                kDays[tm.tm_wday % 7], tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900,
                tm.tm_hour, tm.tm_min, tm.tm_sec, gmtoff < 0 ? '-' : '+', off / 3600,
                (off / 60) % 60);
  return buf;
}

Composed compose(const ComposeInput& in) {
  Composed out;
  auto lines = split_lines(in.text);
  // The header: fields up to an empty line or the first line that is no field.
  std::vector<Field> fields;
  std::size_t body = 0;
  if (!lines.empty() && lines[0].substr(0, 5) == "From ") body = 1;  // an mbox "From " line
  for (; body < lines.size(); ++body) {
    auto line = lines[body];
    if (line.empty()) break;
    if (is_wsp(line[0]) && !fields.empty()) {
      fields.back().lines.push_back(line);
      continue;
    }
    auto name = field_name(line);
    if (name.empty()) break;
    fields.push_back({std::move(name), {line}});
  }
  bool blank_separator = body < lines.size() && lines[body].empty();

  auto add_recipient = [&](const std::string& address) {
    auto q = qualify(address, in.qualify_domain);
    if (std::find(out.recipients.begin(), out.recipients.end(), q) == out.recipients.end())
      out.recipients.push_back(std::move(q));
  };
  for (const auto& r : in.recipients) add_recipient(r);
  bool has_from = false, has_date = false, has_id = false;
  for (const auto& f : fields) {
    has_from |= f.name == "from";
    has_date |= f.name == "date";
    has_id |= f.name == "message-id";
    if (!in.extract_recipients || (f.name != "to" && f.name != "cc" && f.name != "bcc")) continue;
    std::string value;
    for (auto l : f.lines) value.append(l).push_back(' ');
    value.erase(0, value.find(':') + 1);
    for (const auto& a : parse_address_list(value)) add_recipient(a);
  }
  if (out.recipients.empty()) {
    out.error = in.extract_recipients ? "no recipient addresses found in the message header"
                                      : "no recipients given";
    return out;
  }

  auto put = [&out](std::string_view line) {
    if (!line.empty() && line[0] == '.') out.wire += '.';
    out.wire.append(line);
    out.wire += "\r\n";
  };
  for (const auto& f : fields) {
    if (in.extract_recipients && f.name == "bcc") continue;
    for (auto l : f.lines) put(l);
  }
  if (!has_from) {
    put(in.full_name.empty()
            ? "From: " + in.from_address
            : "From: " + display_name(in.full_name) + " <" + in.from_address + ">");
  }
  if (!has_date) put("Date: " + in.date);
  if (!has_id) put("Message-ID: " + in.message_id);
  out.wire += "\r\n";
  for (std::size_t i = blank_separator ? body + 1 : body; i < lines.size(); ++i) put(lines[i]);
  out.eight_bit = std::any_of(in.text.begin(), in.text.end(),
                              [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  return out;
}

}  // namespace estafette::sendmail
