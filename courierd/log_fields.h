// log_fields.h: how courierd's log lines write values (delivered/deferred/bounced lines and the
// admin's requests), so that every component writes them alike: quoted replies, seconds with
// one decimal, the delay since arrival.
// Pure functions, any thread; no errors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "courierd/scheduler.h"

namespace estafette::courierd {

// "text" with CR dropped, LF as a space, `"` and `\` escaped and trailing spaces cut. (Not
// named `quoted`: for a std::string argument, ADL would also find std::quoted.)
std::string log_quoted(std::string_view text);
// "1.5s"; a negative time is "0.0s".
std::string seconds_text(double seconds);
// Since arrival (unix seconds) until now, as seconds_text: the delay= of a log line.
std::string delay_text(std::int64_t arrival, Time now);

}  // namespace estafette::courierd
