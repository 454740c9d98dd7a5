#include "lib/metrics/catalog.h"

#include <array>
#include <cstring>
#include <stdexcept>

namespace estafette::metrics {
namespace {

constexpr std::string_view kRejectReasons[] = {"dnsbl",  "relay",     "unknown_user", "filter",
                                               "access", "other_4xx", "other_5xx"};
constexpr std::string_view kResults[] = {"delivered", "deferred", "bounced"};
constexpr std::string_view kHandshakes[] = {"ok", "failed"};
constexpr double kLatency[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                               0.25,  0.5,    1,     2.5,  5,     10};
constexpr double kFsync[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                             0.05,   0.1,   0.25,   0.5,   1,    2.5};
constexpr double kBatch[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

const std::array<Family, kMetricCount> kFamilies = {{
    {"estafette_esmtpd_connections_total",
     "SMTP connections esmtpd accepted.",
     Kind::Counter,
     "",
     {},
     "",
     {}},
    {"estafette_esmtpd_messages_accepted_total",
     "Messages esmtpd queued (250 to DATA).",
     Kind::Counter,
     "",
     {},
     "",
     {}},
    {"estafette_esmtpd_rejects_total",
     "Refusing 4xx/5xx replies esmtpd sent, by reason.",
     Kind::Counter,
     "reason",
     kRejectReasons,
     "",
     {}},
    {"estafette_esmtpd_dnsbl_listed_total",
     "Connections a DNS list listed, by zone.",
     Kind::Counter,
     "",
     {},
     "zone",
     {}},
    {"estafette_deliveries_total",
     "Recipients' delivery attempts by result and destination.",
     Kind::Counter,
     "result",
     kResults,
     "destination",
     {}},
    {"estafette_dns_lookup_seconds",
     "esmtpd's DNS queries (checks, sender domains), from sending to the answer.",
     Kind::Histogram,
     "",
     {},
     "",
     kLatency,
     1e-6},
    {"estafette_milter_seconds",
     "Milter commands, from sending to the reply.",
     Kind::Histogram,
     "",
     {},
     "",
     kLatency,
     1e-6},
    {"estafette_queue_commit_batch_size",
     "Queue records committed by one fsync.",
     Kind::Histogram,
     "",
     {},
     "",
     kBatch,
     1},
    {"estafette_queue_commit_seconds",
     "esmtpd's group commits: a batch's last writes and its fsyncs.",
     Kind::Histogram,
     "",
     {},
     "",
     kFsync,
     1e-6},
    {"estafette_esmtpd_tls_handshakes_total",
     "STARTTLS handshakes in esmtpd, by result.",
     Kind::Counter,
     "result",
     kHandshakes,
     "",
     {}},
    {"estafette_esmtpclient_tls_handshakes_total",
     "STARTTLS handshakes of esmtpclient, by result.",
     Kind::Counter,
     "result",
     kHandshakes,
     "",
     {}},
}};

struct Offsets {
  std::array<std::size_t, kMetricCount> first{};
  std::array<std::size_t, kMetricCount> dynamic{};
  std::size_t total = 0;
  std::size_t dynamic_total = 0;
  std::uint64_t fingerprint = 0;
};

// FNV-1a over the table's text and sizes.
void mix(std::uint64_t& h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  h = (h ^ 0xff) * 0x100000001b3ULL;
}

Offsets compute() {
  Offsets o;
  o.fingerprint = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < kFamilies.size(); ++i) {
    const Family& f = kFamilies[i];
    o.first[i] = o.total;
    o.total += f.slot_count();
    o.dynamic[i] = f.dynamic_label.empty() ? 0 : o.dynamic_total++;
    mix(o.fingerprint, f.name);
    mix(o.fingerprint, f.label);
    for (auto v : f.values) mix(o.fingerprint, v);
    mix(o.fingerprint, f.dynamic_label);
    for (double b : f.buckets) mix(o.fingerprint, std::to_string(b));
    mix(o.fingerprint, std::to_string(f.slot_count()) + "/" + std::to_string(f.unit));
  }
  mix(o.fingerprint, std::to_string(kNameSlots) + "/" + std::to_string(kNameBytes));
  return o;
}

const Offsets& offsets() {
  static const Offsets o = compute();  // immutable once built
  return o;
}

}  // namespace

std::span<const Family> families() {
  return kFamilies;
}
const Family& family(Metric m) {
  return kFamilies.at(static_cast<std::size_t>(m));
}
std::size_t first_slot(Metric m) {
  return offsets().first.at(static_cast<std::size_t>(m));
}
std::size_t slot_count() {
  return offsets().total;
}
std::size_t dynamic_family_count() {
  return offsets().dynamic_total;
}
std::size_t dynamic_index(Metric m) {
  return offsets().dynamic.at(static_cast<std::size_t>(m));
}
std::uint64_t layout_fingerprint() {
  return offsets().fingerprint;
}

std::size_t cell_slot(Metric m, std::size_t fixed, std::size_t name) {
  const Family& f = family(m);
  if (fixed >= f.fixed_count() || name >= f.dynamic_count())
    throw std::out_of_range("metrics: no such cell");
  return first_slot(m) + (fixed * f.dynamic_count() + name) * f.cell_size();
}

}  // namespace estafette::metrics
