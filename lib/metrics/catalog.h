// catalog.h: every metric Estafette's daemons count, as one immutable table compiled into the
// writers (the daemons, shm_file.h) and the reader (estafette-metrics), so that a metrics file
// carries only numbers: its layout follows from this table, and a file written by another
// layout (another build) is refused by its fingerprint (layout_fingerprint()).
// A family is a counter or a histogram with at most one label of fixed values ("reason") and at
// most one label of names a process picks at run time ("destination", "zone"): each process has
// kNameSlots such names per family, the first ones it sees; later ones count as "other", so a
// file and a scrape stay bounded however many destinations there are.
// Thread: any; the table is immutable. No errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace estafette::metrics {

enum class Kind : std::uint8_t { Counter, Histogram };

// The families, in table order (family()).
enum class Metric : std::uint8_t {
  EsmtpdConnections,    // connections accepted
  EsmtpdAccepted,       // messages queued (the 250 after DATA)
  EsmtpdRejects,        // refusing replies, by reason
  EsmtpdDnsblListed,    // connections listed, by DNSBL zone
  DeliveryResults,      // courierd: recipients by result and destination
  DnsLookupSeconds,     // esmtpd's resolver: each query sent (not a cached answer)
  MilterSeconds,        // esmtpd's milters: each command, from sending to its reply
  CommitBatchSize,      // the queue committer: records per fsync
  CommitSeconds,        // the queue committer: each group commit (its writes and fsyncs)
  TlsHandshakes,        // esmtpd: STARTTLS handshakes by result
  ClientTlsHandshakes,  // esmtpclient: STARTTLS handshakes by result
};
inline constexpr std::size_t kMetricCount = 11;

// Why esmtpd refused (the EsmtpdRejects label "reason"), in label order.
enum class Reject : std::uint8_t { Dnsbl, Relay, UnknownUser, Filter, Access, Other4xx, Other5xx };
// A recipient's delivery attempt (DeliveryResults' "result").
enum class Result : std::uint8_t { Delivered, Deferred, Bounced };
// A STARTTLS handshake (TlsHandshakes' "result").
enum class Handshake : std::uint8_t { Ok, Failed };

// Names per dynamic-label family in one process, and their longest length.
inline constexpr std::size_t kNameSlots = 32;
inline constexpr std::size_t kNameBytes = 64;  // including the length byte

struct Family {
  std::string_view name;  // full metric name, counters with their "_total"
  std::string_view help;
  Kind kind;
  std::string_view label;                    // the fixed label's name, or ""
  std::span<const std::string_view> values;  // its values
  std::string_view dynamic_label;            // the run-time label's name, or ""
  std::span<const double> buckets;           // histogram: upper bounds, ascending
  double unit = 1;  // a histogram's sum is kept in integer units of this (1e-6: microseconds)

  std::size_t fixed_count() const { return values.empty() ? 1 : values.size(); }
  // kNameSlots names and "other", or one cell.
  std::size_t dynamic_count() const { return dynamic_label.empty() ? 1 : kNameSlots + 1; }
  // Counters per (fixed, dynamic) cell: 1, or one per bucket, +Inf, and the sum.
  std::size_t cell_size() const { return kind == Kind::Counter ? 1 : buckets.size() + 2; }
  std::size_t slot_count() const { return fixed_count() * dynamic_count() * cell_size(); }
};

std::span<const Family> families();
const Family& family(Metric m);
// The first counter of family m in the file's counter array.
std::size_t first_slot(Metric m);
// Counters in a file, in all.
std::size_t slot_count();
// Families with a dynamic label, and the index of m's name table among them (m has one).
std::size_t dynamic_family_count();
std::size_t dynamic_index(Metric m);
// A hash of the whole table (names, labels, buckets, slot counts): a file's header must carry it.
std::uint64_t layout_fingerprint();

// The counter index of cell (fixed, name) of family m; name kNameSlots is "other".
std::size_t cell_slot(Metric m, std::size_t fixed, std::size_t name);

}  // namespace estafette::metrics
