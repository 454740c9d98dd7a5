// dates.h: Unix times as text, in UTC and locale independent: RFC 5322 date-times for the
// headers we write (Received, Date of DSNs and reports) and strftime() formats for the rest.
// Pure; any thread.
#pragma once

#include <cstdint>
#include <string>

namespace estafette::base {

// "Thu, 23 Nov 2023 08:08:00 +0000", "Mon, 1 Jan 2024 ..." (the day without a leading zero, as
// Postfix writes it).
std::string rfc5322_date(std::int64_t unix_seconds);
// strftime(format) of the time in UTC ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ"); at most 63 bytes.
std::string utc_text(std::int64_t unix_seconds, const char* format);

}  // namespace estafette::base
