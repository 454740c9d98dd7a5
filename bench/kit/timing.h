// timing.h: what estafette-bench's sink and source write for the orchestration to measure
// without Python on the hot path: per-message time records ("EPOCH ID" lines: the source's send
// time, the sink's arrival time; joined by Message-ID they give end-to-end latency) and a
// stats file of cumulative counts appended every interval (the run's timeline and the
// orchestration's progress and stall check).
// The formatting functions are pure. StatsFile and TimeRecorder belong to one process's loop
// thread. Errors: their constructors throw std::runtime_error when the file cannot be opened;
// later write errors are ignored (a benchmark's bookkeeping never stops the load).
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/event/loop.h"

namespace estafette::bench {

// Seconds since the epoch (the wall clock: the sink and the source are different processes).
double wall_now();

// "1700000000.123456 <id@host>\n"
std::string time_record(double epoch, std::string_view id);

// "time=1700000000.123 messages=3 rejected=0\n": the counts in the order given.
using NamedCounts = std::vector<std::pair<std::string_view, std::uint64_t>>;
std::string stats_line(double epoch, const NamedCounts& counts);

// Appends one time_record per call to a file (buffered; flushed by flush() and on destruction).
class TimeRecorder final {
 public:
  explicit TimeRecorder(const std::string& path);
  void record(double epoch, std::string_view id);
  void flush() { out_.flush(); }

 private:
  std::ofstream out_;
};

// Appends stats_line(now, counts()) to a file every interval and once more from finish()
// (the final counts); each line is flushed at once, so a reader sees whole lines.
class StatsFile final {
 public:
  StatsFile(event::Loop& loop, const std::string& path, unsigned interval_ms,
            std::function<NamedCounts()> counts);
  ~StatsFile();
  StatsFile(const StatsFile&) = delete;
  StatsFile& operator=(const StatsFile&) = delete;
  void write();
  void finish();

 private:
  void arm();

  event::Loop& loop_;
  std::ofstream out_;
  unsigned interval_ms_;
  std::function<NamedCounts()> counts_;
  event::TimerId timer_ = 0;
  bool armed_ = false;
};

}  // namespace estafette::bench
