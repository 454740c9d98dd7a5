// maildrop_fuzz.cc: libFuzzer harness for the maildrop file format (lib/submit/maildrop.h), which
// root's estafette-pickup reads from files any local user writes, and for the bounce it composes
// from them (pickup/bounce.h). Checks the contract: a parsed file has bounded counts and sizes,
// addresses without control characters or angle brackets, and data that is dot-stuffed CRLF
// text (nothing in it can end DATA early); it parses back the same after format_maildrop; the
// bounce composed from it (or from the raw bytes when it did not parse) is safe to send after
// DATA as root.
// Build: `make fuzz FUZZ_TARGETS=maildrop` (tests/fuzz/README.md).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/submit/maildrop.h"
#include "pickup/bounce.h"

namespace {

using namespace estafette;

void check(bool ok) {
  if (!ok) std::abort();
}

// Dot-stuffed CRLF text: every LF after a CR, no line that is a lone "." or starts with one
// "." only, a final CRLF.
bool safe_for_data(std::string_view w) {
  if (!w.empty() && !w.ends_with("\r\n")) return false;
  bool line_start = true;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (line_start && w[i] == '.') {
      if (i + 1 >= w.size() || w[i + 1] != '.') return false;
      ++i;
      line_start = false;
      continue;
    }
    if (w[i] == '\n' && (i == 0 || w[i - 1] != '\r')) return false;
    line_start = w[i] == '\n';
  }
  return true;
}

void check_address(const std::string& a) {
  check(a.size() <= submit::kMaildropMaxLine);
  for (char ch : a) {
    auto c = static_cast<unsigned char>(ch);
    check(c >= 0x20 && c != 0x7f && c != '<' && c != '>');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view file(reinterpret_cast<const char*>(data), size);
  const submit::MaildropLimits limits{.max_wire = 1 << 16, .max_recipients = 50};
  auto parsed = submit::parse_maildrop(file, limits);
  pickup::BounceInput in;
  in.hostname = "mta.test";
  in.to = "user@mta.test";
  in.date = "Sun, 06 Dec 2026 22:00:00 +0000";
  in.message_id = "<1.pickup@mta.test>";
  in.reason = parsed.error;
  in.file_name = "1.2.3";
  in.max_size = 1 << 15;
  if (parsed.entry) {
    const auto& e = *parsed.entry;
    check(parsed.error.empty());
    check(!e.recipients.empty() && e.recipients.size() <= limits.max_recipients);
    check(e.wire.size() <= limits.max_wire && safe_for_data(e.wire));
    check_address(e.sender);
    for (const auto& r : e.recipients) check_address(r);
    auto again = submit::parse_maildrop(submit::format_maildrop(e), limits);
    check(again.entry && again.entry->sender == e.sender &&
          again.entry->recipients == e.recipients && again.entry->wire == e.wire &&
          again.entry->eight_bit == e.eight_bit);
    in.parsed = true;
    in.sender = e.sender;
    in.recipients = e.recipients;
    in.wire = e.wire;
  } else {
    check(!parsed.error.empty());
    in.raw = file;
  }
  auto bounce = pickup::compose_bounce(in);
  check(safe_for_data(bounce.wire));
  check(bounce.wire.size() <= in.max_size + (1 << 17));
  return 0;
}
