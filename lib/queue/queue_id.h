// queue_id.h: queue ids, the names of queued messages in files and in logs.
// Any thread. make_queue_id() is thread-safe and never fails; ids are unique across threads,
// fork()ed processes and restarts: unix time in milliseconds, then the pid and a 64-bit key
// drawn once per process (again after fork()), then a per-process counter (2.8e12 ids before it
// wraps). Two ids are equal only if all of these are: the same millisecond (after a clock step),
// the same pid (reused) and the same 64-bit key, so a collision needs far more than the old
// 20 random bits. The backends still never let a duplicate destroy data (segment_backend.h).
// Ids use [A-Za-z0-9-] only, so they are safe as file names.
#pragma once

#include <string>
#include <string_view>

namespace estafette::queue {

// e.g. "0LWQ3K9ZA-02BXF3VQ8C2M1XK0ZT-0000001F": time-pid+key-counter
using QueueId = std::string;

inline constexpr std::size_t kMaxQueueIdLength = 64;

QueueId make_queue_id();

// True for 1..kMaxQueueIdLength characters of [A-Za-z0-9-] (what the queue accepts as a name).
bool valid_queue_id(std::string_view id);

}  // namespace estafette::queue
