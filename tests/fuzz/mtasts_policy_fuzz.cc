// mtasts_policy_fuzz.cc: libFuzzer harness for lib/mtasts's parsers of untrusted bytes: the
// MTA-STS policy file (an HTTPS body), the _mta-sts TXT record, the HTTP response of the fetch
// (fed in two pieces cut where the first byte says) and a cache file. Checks the contracts: an
// accepted policy has a known mode, max_age within 0..31557600, at most 100 mx patterns that are
// lower-case host names with "*." only in front, at least one unless mode none, and its
// canonical form reads back to the same policy; an accepted TXT id is 1..32 letters and digits;
// the HTTP body never exceeds its limit and the outcome does not depend on the cut.
// Build: make fuzz FUZZ_TARGETS=mtasts_policy
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/mtasts/cache.h"
#include "lib/mtasts/http_response.h"
#include "lib/mtasts/policy.h"

namespace {

using namespace estafette::mtasts;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_policy(std::string_view text) {
  auto r = parse_policy(text);
  if (!r.ok) {
    check(!r.reason.empty());
    return;
  }
  check(text.size() <= kMaxPolicySize);
  check(r.policy.max_age <= kMaxMaxAge);
  check(r.policy.mx.size() <= kMaxMxPatterns);
  check(r.policy.mode == Mode::None || !r.policy.mx.empty());
  for (const auto& mx : r.policy.mx) {
    std::string_view rest = mx;
    if (rest.starts_with("*.")) rest.remove_prefix(2);
    check(normalize_domain(rest) == std::string(rest));
    check(mx_matches(mx, mx.starts_with("*.") ? "x" + mx.substr(1) : mx));
  }
  auto again = parse_policy(format_policy(r.policy));
  check(again.ok && again.policy.mode == r.policy.mode && again.policy.mx == r.policy.mx &&
        again.policy.max_age == r.policy.max_age);
}

void check_txt(std::string_view text) {
  auto r = parse_txt_record(text);
  if (!r.ok) return;
  check(!r.id.empty() && r.id.size() <= 32);
  for (char c : r.id)
    check((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

void check_http(std::string_view text, std::size_t cut) {
  constexpr std::size_t kMax = 1024;
  HttpResponse whole(kMax), split(kMax);
  whole.feed(text);
  whole.finish();
  cut = std::min(cut, text.size());
  split.feed(text.substr(0, cut));
  split.feed(text.substr(cut));
  split.finish();
  check(whole.state() == split.state());
  check(whole.body() == split.body());
  check(whole.body().size() <= kMax);
  check(whole.state() == HttpResponse::State::Done || whole.state() == HttpResponse::State::Failed);
  if (whole.state() == HttpResponse::State::Done) check(whole.status() == 200);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_policy(text);
  check_txt(text);
  check_http(text, data[0]);
  std::string why;
  auto e = parse_entry(text, "example.test", &why);
  check(e.has_value() == why.empty());
  if (e) check(e->domain == "example.test" && parse_policy(format_policy(e->policy)).ok);
  return 0;
}
