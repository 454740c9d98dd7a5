// mailq_format.h: what `estafette mailq` prints, from the QueueEntry list courierd sent: the
// Postfix-style listing (each message, its id followed by '!' when it is on hold, then each
// pending recipient with its destination, attempts, next try or "held", and last error), the
// qshape-style summary (pending recipients per destination by message age), and the same as one
// JSON document. Pure: no I/O, no clock (the caller passes courierd's `now`), times printed in UTC.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/ipc/messages.h"

namespace estafette::admin {

// qshape's age buckets, in minutes: [0,5), [5,10), [10,20), [20,40), [40,80), [80,160), 160+.
inline constexpr std::size_t kBuckets = 7;
inline constexpr std::array<std::string_view, kBuckets> kBucketNames = {
    "0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m", "160m+"};

// The bucket of a message `age_seconds` old (negative ages, clock skew, count as 0).
std::size_t age_bucket(std::int64_t age_seconds);

struct ShapeRow {
  std::string destination;  // "TOTAL" for the first row
  std::array<std::size_t, kBuckets> counts{};
  std::size_t total = 0;
};

// Pending recipients per destination by the age of their message: a TOTAL row, then one row per
// destination, the most recipients first (ties by name). No destinations: only TOTAL (zeros).
std::vector<ShapeRow> qshape(const std::vector<ipc::QueueEntry>& entries, std::int64_t now_ms);

// "2026-11-23 15:00:22" (UTC) for unix milliseconds.
std::string utc_time(std::int64_t unix_ms);

// from_files: the entries were read from the queue files because courierd does not run
// (admin/offline_mailq.h): a first line says so, and next tries and states show as unknown.
inline constexpr std::string_view kNotRunningNote =
    "courierd is not running: the queue as its files hold it; next-try times and destination "
    "states are unknown (dest= is the recipient's domain)";

// The listing and then the summary table, or "Mail queue is empty\n".
std::string format_mailq(const std::vector<ipc::QueueEntry>& entries, std::int64_t now_ms,
                         bool from_files = false);
std::string format_qshape(const std::vector<ShapeRow>& rows);

// {"now": ..., "messages": [...], "summary": {"buckets": [...], "destinations": [...]}};
// from_files adds "courierd_running": false and "note" first, and states are "unknown".
std::string format_mailq_json(const std::vector<ipc::QueueEntry>& entries, std::int64_t now_ms,
                              bool from_files = false);

}  // namespace estafette::admin
