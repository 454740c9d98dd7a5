#include "lib/auth/dovecot_protocol.h"

#include <charconv>
#include <vector>

namespace estafette::auth::dovecot {

namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  while (true) {
    auto tab = line.find('\t');
    out.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos) return out;
    line.remove_prefix(tab + 1);
  }
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty() || text.size() > 10) return false;
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  out = value;  // only a whole number: a malformed line carries no id
  return true;
}

// The optional name=value / flag fields of OK and FAIL.
void read_options(const std::vector<std::string_view>& fields, std::size_t from, ServerLine& out) {
  for (std::size_t i = from; i < fields.size(); ++i) {
    std::string_view f = fields[i];
    if (f == "temp") {
      out.temporary = true;
    } else if (f.starts_with("user=")) {
      out.user = tab_unescape(f.substr(5));
    } else if (f.starts_with("reason=")) {
      out.reason = tab_unescape(f.substr(7));
    } else if (f.starts_with("code=") && f.substr(5) == "temp_fail") {
      out.temporary = true;
    }
  }
}

}  // namespace

std::string tab_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\001':
        out += "\0011";
        break;
      case '\t':
        out += "\001t";
        break;
      case '\r':
        out += "\001r";
        break;
      case '\n':
        out += "\001n";
        break;
      case '\0':
        out += "\0010";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string tab_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\001' || i + 1 == text.size()) {
      out.push_back(text[i]);
      continue;
    }
    char c = text[++i];
    switch (c) {
      case '1':
        out.push_back('\001');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 'n':
      case 'l':
        out.push_back('\n');
        break;
      case '0':
        out.push_back('\0');
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string handshake(pid_t pid) {
  return "VERSION\t" + std::to_string(kMajorVersion) + "\t2\nCPID\t" + std::to_string(pid) + "\n";
}

std::string format_auth(const AuthRequest& r) {
  std::string out = "AUTH\t" + std::to_string(r.id) + "\t" + tab_escape(r.mechanism) +
                    "\tservice=" + tab_escape(r.service) + "\tnologin";
  if (!r.local_ip.empty()) out += "\tlip=" + tab_escape(r.local_ip);
  if (!r.remote_ip.empty()) out += "\trip=" + tab_escape(r.remote_ip);
  if (r.local_port) out += "\tlport=" + std::to_string(r.local_port);
  if (r.remote_port) out += "\trport=" + std::to_string(r.remote_port);
  if (r.secured) out += "\tsecured";
  if (r.has_initial_response) out += "\tresp=" + tab_escape(r.initial_response);
  out += "\n";
  return out;
}

std::string format_cont(std::uint32_t id, std::string_view base64) {
  return "CONT\t" + std::to_string(id) + "\t" + tab_escape(base64) + "\n";
}

ServerLine parse_server_line(std::string_view line) {
  ServerLine out;
  if (line.size() > kMaxLineLength) return out;  // Malformed
  auto fields = split_tabs(line);
  std::string_view cmd = fields[0];
  auto need = [&](std::size_t n) { return fields.size() >= n; };
  if (cmd == "VERSION") {
    if (!need(3) || !parse_number(fields[1], out.major) || !parse_number(fields[2], out.minor))
      return out;
    out.kind = ServerLine::Kind::Version;
  } else if (cmd == "MECH") {
    if (!need(2) || fields[1].empty()) return out;
    out.mechanism = tab_unescape(fields[1]);
    out.kind = ServerLine::Kind::Mech;
  } else if (cmd == "SPID" || cmd == "CUID" || cmd == "COOKIE") {
    if (!need(2)) return out;
    out.kind = cmd == "SPID"   ? ServerLine::Kind::Spid
               : cmd == "CUID" ? ServerLine::Kind::Cuid
                               : ServerLine::Kind::Cookie;
  } else if (cmd == "DONE") {
    out.kind = ServerLine::Kind::Done;
  } else if (cmd == "OK" || cmd == "FAIL") {
    if (!need(2) || !parse_number(fields[1], out.id)) return out;
    read_options(fields, 2, out);
    out.kind = cmd == "OK" ? ServerLine::Kind::Ok : ServerLine::Kind::Fail;
  } else if (cmd == "CONT") {
    if (!need(3) || !parse_number(fields[1], out.id)) return out;
    out.data = tab_unescape(fields[2]);
    out.kind = ServerLine::Kind::Cont;
  } else {
    out.kind = ServerLine::Kind::Unknown;
  }
  return out;
}

}  // namespace estafette::auth::dovecot
