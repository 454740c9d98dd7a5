// queue_id.h: queue ids, the names of queued messages in files and in logs.
// Any thread. make_queue_id() is thread-safe and never fails.
//
// Collision-free by construction once the process has claimed an instance of its queue
// (claim_queue_id_instance(), which esmtpd and courierd call when they open the queue): the id is
// the unix time in milliseconds (for order and for people), then the instance number, which the
// queue's "instance" file hands to no other process of that queue ever, then a 64-bit
// per-process counter that does not wrap. A clock step, a reused pid or a restart cannot repeat
// an id. A fork()ed child claims an instance of its own on its first id.
// Without a claim (tools, tests), or when a claim fails, ids fall back to time, pid, a 64-bit key
// drawn per process and the counter: unique but for a 2^-64 chance, and the backends still never
// let a duplicate destroy data (segment_backend.h).
// Ids use [A-Za-z0-9-] only, so they are safe as file names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace estafette::queue {

// e.g. "0LWQ3K9ZA-i0000003-0000001F": time-instance-counter (a claimed instance), or
// "0LWQ3K9ZA-02BXF3VQ8C2M1XK0ZT-0000001F": time-pid+key-counter (none)
using QueueId = std::string;

inline constexpr std::size_t kMaxQueueIdLength = 64;

QueueId make_queue_id();

// Claims the next instance number of the queue in queue_dir for this process: under an
// exclusive flock on queue_dir/instance (created 0600 if missing, never through a symlink), reads
// the last number handed out, writes it plus one and fdatasyncs it (and the directory, when the
// file is new) before any id uses it. A file that does not hold a number (torn by hand) restarts
// from the current time in milliseconds, far above any count of claims. Remembers queue_dir so
// that a fork()ed child claims again. Throws std::system_error (the caller's ids then fall back
// to the pid and key).
void claim_queue_id_instance(const std::string& queue_dir);

// The instance this process claimed (0: none). For tests and logs.
std::uint64_t queue_id_instance();

// True for 1..kMaxQueueIdLength characters of [A-Za-z0-9-] (what the queue accepts as a name).
bool valid_queue_id(std::string_view id);

}  // namespace estafette::queue
