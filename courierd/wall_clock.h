// wall_clock.h: courierd's clock for the scheduler. The scheduler takes `now` as wall-clock time
// in milliseconds (queue lifetimes count from the arrival time stored in the queue); this is the
// one place courierd reads it.
// Any thread; no state; no errors.
#pragma once

#include <chrono>
#include <cstdint>

#include "courierd/scheduler.h"

namespace estafette::courierd {

inline Time wall_now() {
  return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
}

// Unix milliseconds.
inline std::int64_t ms_of(Time t) {
  return t.time_since_epoch().count();
}

}  // namespace estafette::courierd
