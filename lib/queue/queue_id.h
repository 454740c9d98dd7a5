// queue_id.h: queue ids, the names of queued messages in files and in logs.
// Any thread. make_queue_id() is thread-safe and never fails; ids are unique across threads,
// fork()ed processes and restarts: unix time in milliseconds, pid, a per-process counter and
// random bits. Ids use [A-Za-z0-9-] only, so they are safe as file names.
#pragma once

#include <string>
#include <string_view>

namespace estafette::queue {

using QueueId = std::string;  // e.g. "0LWQ3K9ZA-02BXF-00A1K3P0": time-pid-counter+random

inline constexpr std::size_t kMaxQueueIdLength = 64;

QueueId make_queue_id();

// True for 1..kMaxQueueIdLength characters of [A-Za-z0-9-] (what the queue accepts as a name).
bool valid_queue_id(std::string_view id);

}  // namespace estafette::queue
