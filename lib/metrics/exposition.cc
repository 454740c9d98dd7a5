#include "lib/metrics/exposition.h"

#include <charconv>
#include <map>
#include <vector>

namespace estafette::metrics {
namespace {

std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : "0";
}

// One family's counters summed over the processes: per fixed label value, the cells of each
// name ("" for a family without a dynamic label), and "other".
struct Summed {
  // fixed index -> name -> cell (cell_size() counters)
  std::vector<std::map<std::string, std::vector<std::uint64_t>>> cells;
};

Summed sum_family(Metric m, std::span<const Snapshot> processes) {
  const Family& f = family(m);
  const std::size_t size = f.cell_size();
  Summed out;
  out.cells.resize(f.fixed_count());
  auto add_into = [&](std::vector<std::uint64_t>& cell, const Snapshot& s, std::size_t slot) {
    cell.resize(size);
    for (std::size_t i = 0; i < size; ++i) cell[i] += s.counters[slot + i];
  };
  for (const Snapshot& s : processes) {
    for (std::size_t fixed = 0; fixed < f.fixed_count(); ++fixed) {
      auto& by_name = out.cells[fixed];
      if (f.dynamic_label.empty()) {
        add_into(by_name[""], s, cell_slot(m, fixed, 0));
        continue;
      }
      const auto& names = s.names[dynamic_index(m)];
      for (std::size_t slot = 0; slot <= kNameSlots; ++slot) {
        std::string name = slot < kNameSlots ? names[slot] : "";
        const std::size_t at = cell_slot(m, fixed, slot);
        bool zero = true;
        for (std::size_t i = 0; i < size; ++i) zero = zero && s.counters[at + i] == 0;
        if (zero) continue;
        // An unnamed slot with counts (a torn read) and names beyond kMaxNames: "other".
        if (name.empty() || (!by_name.count(name) && by_name.size() >= kMaxNames)) name = "\x01";
        add_into(by_name[name], s, at);
      }
    }
  }
  return out;
}

std::string labels(const Family& f, std::size_t fixed, const std::string& name,
                   const std::string& extra = "") {
  std::string out;
  auto add = [&](std::string_view key, std::string_view value) {
    out += (out.empty() ? "" : ",") + std::string(key) + "=\"" + escape_label(value) + "\"";
  };
  if (!f.values.empty()) add(f.label, f.values[fixed]);
  if (!f.dynamic_label.empty()) add(f.dynamic_label, name == "\x01" ? "other" : name);
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? "" : "{" + out + "}";
}

void render_family(Metric m, std::span<const Snapshot> processes, std::string& out) {
  const Family& f = family(m);
  out += "# HELP " + std::string(f.name) + " " + std::string(f.help) + "\n";
  out +=
      "# TYPE " + std::string(f.name) + (f.kind == Kind::Counter ? " counter\n" : " histogram\n");
  Summed summed = sum_family(m, processes);
  for (std::size_t fixed = 0; fixed < f.fixed_count(); ++fixed) {
    auto& by_name = summed.cells[fixed];
    // A family without a dynamic label shows its zeros too (a scrape names every series).
    if (f.dynamic_label.empty() && by_name.empty())
      by_name[""] = std::vector<std::uint64_t>(f.cell_size());
    for (const auto& [name, cell] : by_name) {
      if (f.kind == Kind::Counter) {
        out += std::string(f.name) + labels(f, fixed, name) + " " + std::to_string(cell[0]) + "\n";
        continue;
      }
      std::uint64_t cumulative = 0;
      for (std::size_t b = 0; b <= f.buckets.size(); ++b) {
        cumulative += cell[b];
        std::string le = b < f.buckets.size() ? number(f.buckets[b]) : "+Inf";
        out += std::string(f.name) + "_bucket" + labels(f, fixed, name, "le=\"" + le + "\"") + " " +
               std::to_string(cumulative) + "\n";
      }
      out += std::string(f.name) + "_sum" + labels(f, fixed, name) + " " +
             number(static_cast<double>(cell[f.buckets.size() + 1]) * f.unit) + "\n";
      out += std::string(f.name) + "_count" + labels(f, fixed, name) + " " +
             std::to_string(cumulative) + "\n";
    }
  }
}

}  // namespace

std::string escape_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::optional<std::string> render(const ScrapeInput& input, std::size_t max_bytes) {
  std::string out;
  std::map<std::string, std::uint64_t> programs;
  for (const Snapshot& s : input.processes) ++programs[s.program];
  out += "# HELP estafette_processes Live processes that keep metrics, by program.\n";
  out += "# TYPE estafette_processes gauge\n";
  for (const auto& [program, n] : programs)
    out += "estafette_processes{program=\"" + escape_label(program) + "\"} " + std::to_string(n) +
           "\n";
  for (std::size_t i = 0; i < families().size(); ++i)
    render_family(static_cast<Metric>(i), input.processes, out);
  out += "# HELP estafette_queue_up Whether courierd answered the queue shape request.\n";
  out += "# TYPE estafette_queue_up gauge\n";
  out += std::string("estafette_queue_up ") + (input.queue ? "1" : "0") + "\n";
  if (input.queue) {
    out += "# HELP estafette_queue_recipients Recipients waiting, by destination.\n";
    out += "# TYPE estafette_queue_recipients gauge\n";
    for (const auto& row : *input.queue)
      out += "estafette_queue_recipients{destination=\"" + escape_label(row.destination) + "\"} " +
             std::to_string(row.recipients) + "\n";
    out += "# HELP estafette_queue_oldest_seconds Age of the oldest message, by destination.\n";
    out += "# TYPE estafette_queue_oldest_seconds gauge\n";
    for (const auto& row : *input.queue)
      out += "estafette_queue_oldest_seconds{destination=\"" + escape_label(row.destination) +
             "\"} " + number(row.oldest_seconds) + "\n";
  }
  if (out.size() > max_bytes) return std::nullopt;
  return out;
}

}  // namespace estafette::metrics
