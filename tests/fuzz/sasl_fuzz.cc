// sasl_fuzz.cc: libFuzzer harness for what an SMTP client sends in an AUTH exchange: the strict
// base64 decoder and the SASL PLAIN/LOGIN state machine (lib/auth). The first byte picks the
// mechanism and whether the AUTH command had an initial response; the rest is CRLF-separated
// lines (the initial response, then the responses). Checks the contract: base64 that decodes is
// canonical (encodes back to the same text); credentials have a username and a password of
// 1..255 bytes without NUL and an authzid of at most 255; a Challenge comes only while the
// mechanism has a question left; "*" always cancels.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auth/base64.h"
#include "lib/auth/sasl.h"

namespace {

using namespace estafette::auth;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_field(const std::string& s, bool may_be_empty) {
  check(s.size() <= kMaxSaslField && (may_be_empty || !s.empty()));
  check(s.find('\0') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const Mechanism mechanism = (data[0] & 1) ? Mechanism::Login : Mechanism::Plain;
  const bool has_initial = data[0] & 2;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> lines;
  while (!rest.empty()) {
    auto end = rest.find("\r\n");
    lines.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 2);
  }
  for (auto line : lines) {
    if (auto decoded = base64_decode(line)) check(base64_encode(*decoded) == line);
    check(*base64_decode(base64_encode(line)) == line);
  }

  SaslExchange exchange(mechanism);
  std::size_t next = 0;
  std::optional<std::string_view> initial;
  if (has_initial && next < lines.size()) initial = lines[next++];
  SaslStep step = exchange.start(initial);
  int challenges = 0;
  while (step.kind == SaslStep::Kind::Challenge && next < lines.size()) {
    ++challenges;
    check(challenges <= 2);
    std::string_view line = lines[next++];
    step = exchange.respond(line);
    if (line == "*") check(step.kind == SaslStep::Kind::Cancelled);
  }
  if (step.kind == SaslStep::Kind::Credentials) {
    check_field(step.credentials.username, false);
    check_field(step.credentials.password, false);
    check_field(step.credentials.authzid, true);
    if (mechanism == Mechanism::Login) check(step.credentials.authzid.empty());
  }
  if (step.kind == SaslStep::Kind::Malformed) check(!step.reason.empty());
  return 0;
}
