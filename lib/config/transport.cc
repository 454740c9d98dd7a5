#include "lib/config/transport.h"

#include <charconv>

namespace estafette::config {

namespace {

std::optional<Transport> fail(std::string* why, std::string reason) {
  if (why) *why = std::move(reason);
  return std::nullopt;
}

bool has_control_or_space(std::string_view s) {
  for (unsigned char c : s)
    if (c <= ' ' || c == 0x7f) return true;
  return false;
}

}  // namespace

std::string Transport::to_string() const {
  switch (kind) {
    case Kind::Maildir:
      return "maildir";
    case Kind::LmtpUnix:
      return "lmtp:unix:" + path;
    case Kind::LmtpInet: {
      bool v6 = host.find(':') != std::string::npos;
      return "lmtp:inet:" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    }
  }
  return "maildir";
}

std::optional<Transport> parse_transport(std::string_view text, std::string* why) {
  Transport t;
  if (text == "maildir") return t;
  constexpr std::string_view kUnix = "lmtp:unix:";
  constexpr std::string_view kInet = "lmtp:inet:";
  if (text.starts_with(kUnix)) {
    std::string_view path = text.substr(kUnix.size());
    if (path.empty() || path[0] != '/')
      return fail(why, "the LMTP socket must be an absolute path (lmtp:unix:/path)");
    if (path.size() > kMaxUnixPath)
      return fail(why, "the LMTP socket path is longer than " + std::to_string(kMaxUnixPath) +
                           " bytes (a unix socket's limit)");
    if (has_control_or_space(path))
      return fail(why, "the LMTP socket path holds a blank or control character");
    t.kind = Transport::Kind::LmtpUnix;
    t.path = path;
    return t;
  }
  if (text.starts_with(kInet)) {
    std::string_view rest = text.substr(kInet.size());
    std::string_view host;
    std::string_view port;
    if (!rest.empty() && rest[0] == '[') {
      auto close = rest.find(']');
      if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
        return fail(why, "expected lmtp:inet:[address]:port");
      host = rest.substr(1, close - 1);
      port = rest.substr(close + 2);
    } else {
      auto colon = rest.rfind(':');
      if (colon == std::string_view::npos || rest.find(':') != colon)
        return fail(why, "expected lmtp:inet:host:port");
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    unsigned n = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (host.empty() || has_control_or_space(host) || host.size() > 255)
      return fail(why, "bad LMTP host '" + std::string(host) + "'");
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n == 0 ||
        n > 65535)
      return fail(why, "bad LMTP port '" + std::string(port) + "'");
    t.kind = Transport::Kind::LmtpInet;
    t.host = host;
    t.port = static_cast<std::uint16_t>(n);
    return t;
  }
  return fail(why, "expected maildir, lmtp:unix:/path or lmtp:inet:host:port");
}

}  // namespace estafette::config
