// dovecot_protocol.h: the client side of Dovecot's authentication protocol (version 1, the one
// Postfix's smtpd_sasl_type = dovecot speaks over Dovecot's auth-client socket), as pure
// functions: the lines Estafette sends and a parser for the lines Dovecot sends. The async
// connection on the event loop is built on these.
//
// Lines end with LF; fields are TAB-separated and use Dovecot's tab-escaping (\001 then 1, t, r,
// n/l or 0 for \001, TAB, CR, LF, NUL). A server line is untrusted input: parse_server_line()
// accepts at most kMaxLineLength bytes and reports anything it does not understand as Unknown or
// Malformed, never throws.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace estafette::auth::dovecot {

inline constexpr std::size_t kMaxLineLength = 16384;
inline constexpr unsigned kMajorVersion = 1;

std::string tab_escape(std::string_view text);
std::string tab_unescape(std::string_view text);

// What the client sends first: "VERSION\t1\t2\nCPID\t<pid>\n".
std::string handshake(pid_t pid);

struct AuthRequest {
  std::uint32_t id = 0;   // unique per connection
  std::string mechanism;  // "PLAIN" or "LOGIN"
  std::string service = "smtp";
  std::string local_ip, remote_ip;
  std::uint16_t local_port = 0, remote_port = 0;
  bool secured = false;  // the client's connection is under TLS
  bool has_initial_response = false;
  std::string initial_response;  // base64, as the SMTP client sent it ("" = empty)
};

// "AUTH\t<id>\t<mech>\tservice=smtp\tnologin\tlip=..\trip=..\tsecured\tresp=..\n"
std::string format_auth(const AuthRequest& request);
// The client's answer to a CONT: "CONT\t<id>\t<base64>\n".
std::string format_cont(std::uint32_t id, std::string_view base64);

struct ServerLine {
  enum class Kind {
    Version,  // major, minor
    Mech,     // mechanism (with its parameters ignored)
    Spid,
    Cuid,
    Cookie,
    Done,       // end of the handshake
    Ok,         // id, user
    Cont,       // id, data (base64 challenge)
    Fail,       // id, user, reason, temporary
    Unknown,    // a command this client does not use (ignored, as the protocol says)
    Malformed,  // too long, or a known command with missing or bad fields
  };
  Kind kind = Kind::Malformed;
  unsigned major = 0, minor = 0;
  std::string mechanism;
  std::uint32_t id = 0;
  std::string data;
  std::string user;
  std::string reason;
  bool temporary = false;
};

// line without its LF.
ServerLine parse_server_line(std::string_view line);

}  // namespace estafette::auth::dovecot
