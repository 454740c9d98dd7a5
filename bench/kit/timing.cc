#include "bench/kit/timing.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

namespace estafette::bench {

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string time_record(double epoch, std::string_view id) {
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%.6f ", epoch);
  std::string line(stamp);
  line.append(id);
  line += '\n';
  return line;
}

std::string stats_line(double epoch, const NamedCounts& counts) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "time=%.3f", epoch);
  std::string line(buffer);
  for (const auto& [name, value] : counts) {
    line += ' ';
    line.append(name);
    line += '=';
    line += std::to_string(value);
  }
  line += '\n';
  return line;
}

TimeRecorder::TimeRecorder(const std::string& path) : out_(path, std::ios::app) {
  if (!out_) throw std::runtime_error("cannot open " + path);
}

void TimeRecorder::record(double epoch, std::string_view id) {
  out_ << time_record(epoch, id);
}

StatsFile::StatsFile(event::Loop& loop, const std::string& path, unsigned interval_ms,
                     std::function<NamedCounts()> counts)
    : loop_(loop),
      out_(path, std::ios::app),
      interval_ms_(interval_ms),
      counts_(std::move(counts)) {
  if (!out_) throw std::runtime_error("cannot open " + path);
  arm();
}

StatsFile::~StatsFile() {
  if (armed_) loop_.cancel_timer(timer_);
}

void StatsFile::arm() {
  timer_ = loop_.add_timer(std::chrono::milliseconds(interval_ms_), [this] {
    armed_ = false;
    write();
    arm();
  });
  armed_ = true;
}

void StatsFile::write() {
  out_ << stats_line(wall_now(), counts_());
  out_.flush();
}

void StatsFile::finish() {
  if (armed_) loop_.cancel_timer(timer_);
  armed_ = false;
  write();
}

}  // namespace estafette::bench
