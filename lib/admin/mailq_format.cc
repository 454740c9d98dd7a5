#include "lib/admin/mailq_format.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <sstream>

namespace estafette::admin {

namespace {

// Control characters (a reply may hold CR LF) become spaces; trailing spaces go.
std::string one_line(std::string_view text) {
  std::string out;
  for (char c : text) out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string pad_left(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string pad_right(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

const char* state_name(ipc::RcptState s) {
  switch (s) {
    case ipc::RcptState::Waiting:
      return "waiting";
    case ipc::RcptState::Ready:
      return "ready";
    case ipc::RcptState::InFlight:
      return "in-flight";
    case ipc::RcptState::Held:
      return "held";
  }
  return "?";
}

std::string next_text(const ipc::QueuedRcpt& r, bool from_files) {
  if (r.state == ipc::RcptState::InFlight) return "in flight";
  if (r.state == ipc::RcptState::Held) return "held";
  if (from_files) return "unknown";
  if (r.next_retry_ms == 0) return "now";
  return utc_time(r.next_retry_ms);
}

}  // namespace

std::size_t age_bucket(std::int64_t age_seconds) {
  std::int64_t limit = 5 * 60;
  for (std::size_t b = 0; b + 1 < kBuckets; ++b, limit *= 2)
    if (age_seconds < limit) return b;
  return kBuckets - 1;
}

std::vector<ShapeRow> qshape(const std::vector<ipc::QueueEntry>& entries, std::int64_t now_ms) {
  ShapeRow total;
  total.destination = "TOTAL";
  std::map<std::string, ShapeRow> by_dest;
  for (const auto& e : entries) {
    std::size_t b = age_bucket(now_ms / 1000 - e.arrival);
    for (const auto& r : e.recipients) {
      ShapeRow& row = by_dest[r.destination];
      row.destination = r.destination;
      ++row.counts[b];
      ++row.total;
      ++total.counts[b];
      ++total.total;
    }
  }
  std::vector<ShapeRow> rows;
  rows.push_back(total);
  for (auto& [dest, row] : by_dest) rows.push_back(std::move(row));
  std::stable_sort(rows.begin() + 1, rows.end(),
                   [](const ShapeRow& a, const ShapeRow& b) { return a.total > b.total; });
  return rows;
}

std::string utc_time(std::int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string format_qshape(const std::vector<ShapeRow>& rows) {
  std::size_t name_width = 11;
  for (const auto& r : rows) name_width = std::max(name_width, r.destination.size());
  std::ostringstream out;
  out << pad_right("destination", name_width) << ' ' << pad_left("T", 6);
  for (auto name : kBucketNames) out << ' ' << pad_left(std::string(name), 7);
  out << '\n';
  for (const auto& r : rows) {
    out << pad_right(r.destination, name_width) << ' ' << pad_left(std::to_string(r.total), 6);
    for (auto c : r.counts) out << ' ' << pad_left(std::to_string(c), 7);
    out << '\n';
  }
  return out.str();
}

std::string format_mailq(const std::vector<ipc::QueueEntry>& entries, std::int64_t now_ms,
                         bool from_files) {
  const std::string note = from_files ? std::string(kNotRunningNote) + "\n" : "";
  if (entries.empty()) return note + "Mail queue is empty\n";
  auto sorted = entries;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.arrival != b.arrival ? a.arrival < b.arrival : a.queue_id < b.queue_id;
  });
  std::ostringstream out;
  out << note;
  out << "-Queue ID-       ---Size--- --Arrival Time (UTC)- -Sender/Recipient-------\n";
  std::uint64_t bytes = 0;
  for (const auto& e : sorted) {
    bytes += e.size;
    // Postfix marks a held message with '!' after its id.
    out << pad_right(e.held ? e.queue_id + "!" : e.queue_id, 16) << ' '
        << pad_left(std::to_string(e.size), 10) << ' ' << utc_time(e.arrival * 1000) << "  "
        << (e.sender.empty() ? std::string("MAILER-DAEMON") : one_line(e.sender)) << '\n';
    if (!e.quarantine.empty()) out << "        (quarantined: " << one_line(e.quarantine) << ")\n";
    for (const auto& r : e.recipients) {
      out << "    " << one_line(r.address) << "  dest=" << r.destination
          << " attempts=" << (from_files ? std::string("?") : std::to_string(r.attempts))
          << " next=" << next_text(r, from_files) << '\n';
      if (!r.last_error.empty()) out << "        (" << one_line(r.last_error) << ")\n";
    }
    out << '\n';
  }
  std::size_t n = sorted.size();
  out << "-- " << (bytes + 1023) / 1024 << " Kbytes in " << n
      << (n == 1 ? " Request.\n" : " Requests.\n");
  out << '\n' << format_qshape(qshape(entries, now_ms));
  return out.str();
}

std::string format_mailq_json(const std::vector<ipc::QueueEntry>& entries, std::int64_t now_ms,
                              bool from_files) {
  using Poco::JSON::Array;
  using Poco::JSON::Object;
  Object::Ptr doc = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  if (from_files) {
    doc->set("courierd_running", false);
    doc->set("note", std::string(kNotRunningNote));
  }
  doc->set("now", utc_time(now_ms));
  Array::Ptr messages = new Array;
  for (const auto& e : entries) {
    Object::Ptr m = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    m->set("id", e.queue_id);
    m->set("arrival", utc_time(e.arrival * 1000));
    m->set("arrival_unix", e.arrival);
    m->set("size", e.size);
    m->set("sender", e.sender);
    m->set("held", e.held);
    m->set("quarantine", e.quarantine);
    Array::Ptr rcpts = new Array;
    for (const auto& r : e.recipients) {
      Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      o->set("address", r.address);
      o->set("destination", r.destination);
      const bool unknown = from_files && r.state != ipc::RcptState::Held;
      o->set("state", std::string(unknown ? "unknown" : state_name(r.state)));
      o->set("attempts", r.attempts);
      if (r.next_retry_ms != 0)
        o->set("next_retry", utc_time(r.next_retry_ms));
      else
        o->set("next_retry", Poco::Dynamic::Var());
      o->set("last_error", r.last_error);
      rcpts->add(o);
    }
    m->set("recipients", rcpts);
    messages->add(m);
  }
  doc->set("messages", messages);
  Object::Ptr summary = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  Array::Ptr buckets = new Array;
  for (auto name : kBucketNames) buckets->add(std::string(name));
  summary->set("buckets", buckets);
  Array::Ptr dests = new Array;
  for (const auto& row : qshape(entries, now_ms)) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("destination", row.destination);
    o->set("total", row.total);
    Array::Ptr counts = new Array;
    for (auto c : row.counts) counts->add(c);
    o->set("counts", counts);
    dests->add(o);
  }
  summary->set("destinations", dests);
  doc->set("summary", summary);
  std::ostringstream out;
  doc->stringify(out, 2);
  out << '\n';
  return out.str();
}

}  // namespace estafette::admin
