// exposition.h: what estafette-metrics serves on /metrics: the sum of every live process's
// counters (shm_file.h) and courierd's queue shape, in the Prometheus text exposition format
// (version 0.0.4: `# HELP`, `# TYPE`, counters with `_total`, histograms as cumulative
// `_bucket{le=...}`, `_sum` and `_count`).
// Names of the dynamic labels are merged across processes by value; at most kMaxNames per family
// are shown, the rest summed into "other", so the answer stays bounded.
// Pure: no I/O. Thread: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "lib/metrics/shm_file.h"

namespace estafette::metrics {

inline constexpr std::size_t kMaxNames = 64;

// One destination's line of the queue shape (courierd's admin answer).
struct QueueShapeRow {
  std::string destination;
  std::uint64_t recipients = 0;
  double oldest_seconds = 0;  // age of its oldest message
};

struct ScrapeInput {
  std::span<const Snapshot> processes;
  // nullopt: courierd did not answer (estafette_queue_up 0, no queue lines).
  std::optional<std::span<const QueueShapeRow>> queue;
};

// The exposition text; nullopt when it would exceed max_bytes.
std::optional<std::string> render(const ScrapeInput& input, std::size_t max_bytes);

// A label value as the format writes it between quotes: \ " and newline escaped.
std::string escape_label(std::string_view value);

}  // namespace estafette::metrics
