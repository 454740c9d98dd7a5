// dovecot_reply_fuzz.cc: libFuzzer harness for the lines Dovecot's auth server sends
// (lib/auth/dovecot_protocol): each LF-separated line goes to parse_server_line. Checks the
// contract: a line over kMaxLineLength is Malformed; OK/FAIL/CONT carry an id only when they
// parse; tab-escaping round trips; a request built from the line's bytes as its fields is one
// line (nothing a peer-chosen field holds can add a line or a field).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/auth/dovecot_protocol.h"

namespace {

using namespace estafette::auth::dovecot;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (true) {
    auto end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    ServerLine l = parse_server_line(line);
    if (line.size() > kMaxLineLength) check(l.kind == ServerLine::Kind::Malformed);
    if (l.kind != ServerLine::Kind::Ok && l.kind != ServerLine::Kind::Fail &&
        l.kind != ServerLine::Kind::Cont)
      check(l.id == 0 && l.user.empty() && l.data.empty());
    check(tab_unescape(tab_escape(line)) == line);

    AuthRequest r;
    r.mechanism = std::string(line.substr(0, 20));
    r.remote_ip = std::string(line);
    r.has_initial_response = true;
    r.initial_response = std::string(line);
    std::string request = format_auth(r);
    check(request.find('\n') == request.size() - 1);
    check(request.find('\r') == std::string::npos);
    std::string cont = format_cont(1, line);
    check(cont.find('\n') == cont.size() - 1);
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return 0;
}
