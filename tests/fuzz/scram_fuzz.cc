// scram_fuzz.cc: libFuzzer harness for the SCRAM-SHA-256 server (lib/auth/scram.h): what a
// client sends (client-first, client-final, already base64-decoded as the session does) and the
// passwd file's stored secret. Input: the first byte says whether the user is known; the rest
// is '\n'-separated: client-first, client-final, a secret's text (after "{SCRAM-SHA-256}").
// Checks the contract: a parsed user name is 1..255 bytes without NUL or controls; Accepted
// only for a known user and with "v=" + base64 of 32 bytes; Malformed always says why; a secret
// that parses has its iterations within bounds and formats back to what parses the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auth/base64.h"
#include "lib/auth/scram.h"

namespace {

using namespace estafette::auth;

void check(bool ok) {
  if (!ok) std::abort();
}

const ScramSecret& pencil() {  // RFC 7677's; PBKDF2 once, not per input
  static const ScramSecret secret =
      derive_scram_secret("pencil", *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  return secret;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool known = data[0] & 1;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> parts;
  while (!rest.empty() && parts.size() < 3) {
    auto end = rest.find('\n');
    parts.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
  }
  parts.resize(3);

  ScramServer server;
  std::string reason;
  if (server.client_first(parts[0], &reason)) {
    const std::string& user = server.username();
    check(!user.empty() && user.size() <= kMaxScramUser);
    for (unsigned char c : user) check(c >= 0x20 && c != 0x7f);
    std::string first = server.server_first(pencil(), known, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    check(first.starts_with("r="));
    reason.clear();
    auto verdict = server.client_final(parts[1], &reason);
    if (verdict == ScramServer::Verdict::Accepted) {
      check(known);
      const std::string& v = server.server_final();
      check(v.starts_with("v="));
      auto signature = base64_decode(std::string_view(v).substr(2));
      check(signature && signature->size() == 32);
    } else {
      check(server.server_final().empty());
    }
    if (verdict == ScramServer::Verdict::Malformed) check(!reason.empty());
    check(server.client_final(parts[1], nullptr) == ScramServer::Verdict::Malformed);  // once
  } else {
    check(!reason.empty());
  }

  std::string error;
  if (auto secret = parse_scram_secret(parts[2], &error)) {
    check(secret->iterations >= kMinScramIterations && secret->iterations <= kMaxScramIterations);
    std::string text = format_scram_secret(*secret);
    check(text.starts_with(kScramScheme));
    auto again = parse_scram_secret(std::string_view(text).substr(kScramScheme.size()), nullptr);
    check(again && *again == *secret);
  } else {
    check(!error.empty());
  }
  return 0;
}
