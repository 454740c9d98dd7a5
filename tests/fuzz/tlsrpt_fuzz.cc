// tlsrpt_fuzz.cc: libFuzzer harness for lib/tlsrpt's readers of untrusted bytes: journal lines
// (another process wrote them) and the _smtp._tls TXT record (a DNS answer). Checks the
// contracts: whatever a journal holds, the aggregate stays within its limits, every kept text is
// printable and bounded, failure rows never count more than the failures, and what it writes
// reads back to the same journal; an accepted TXT record has 1..kMaxRua URIs and every mailto:
// is a mailbox; the JSON report of any aggregate is produced without throwing.
// Build: make fuzz FUZZ_TARGETS=tlsrpt
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lib/smtp/address.h"
#include "lib/tlsrpt/aggregate.h"
#include "lib/tlsrpt/report.h"

namespace {

using namespace estafette::tlsrpt;

void check(bool ok) {
  if (!ok) std::abort();
}

bool printable(const std::string& s) {
  if (s.size() > kMaxText) return false;
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

void check_journal(std::string_view text) {
  Aggregate a(Limits{.policies = 8, .details = 4});
  a.merge_journal(text);
  check(a.policies().size() <= 8);
  for (const auto& [p, c] : a.policies()) {
    check(!p.domain.empty() && printable(p.domain));
    check(p.strings.size() <= kMaxStrings && p.mx_hosts.size() <= kMaxStrings);
    for (const auto& s : p.strings) check(printable(s));
    for (const auto& s : p.mx_hosts) check(printable(s));
    check(c.details.size() <= 4);
    std::uint64_t rows = 0;
    for (const auto& [f, n] : c.details) {
      check(n > 0 && printable(f.additional) && printable(f.receiving_mx));
      rows += n;
    }
    check(rows <= c.failures);
    check(c.successes + c.failures > 0);
  }
  Aggregate again(Limits{.policies = 8, .details = 4});
  check(again.merge_journal(a.journal()) == 0);
  check(again.journal() == a.journal());
  ReportInfo info{"org", "postmaster@example.net", "mx.example.net", 0};
  for (const auto& d : a.domains()) check(!report_json(a, d, info).empty());
}

void check_txt(std::string_view text) {
  std::vector<std::string> records;
  for (std::size_t start = 0, end; start <= text.size(); start = end + 1) {
    end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    records.emplace_back(text.substr(start, end - start));
  }
  RuaResult r = parse_txt_records(records);
  if (!r.ok) {
    check(!r.reason.empty());
    return;
  }
  check(!r.mailto.empty() || !r.https.empty());
  check(r.mailto.size() + r.https.size() <= kMaxRua);
  for (const auto& m : r.mailto) check(estafette::smtp::parse_mailbox(m).has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_journal(text);
  check_txt(text);
  return 0;
}
