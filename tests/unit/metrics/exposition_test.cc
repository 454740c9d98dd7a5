// lib/metrics/exposition: processes' counters summed, dynamic names merged and bounded, the
// text format's lines exactly.
#include "lib/metrics/exposition.h"

#include <gtest/gtest.h>

#include <vector>

namespace estafette::metrics {
namespace {

Snapshot snapshot_of(const Writer& w) {
  std::string why;
  auto s = parse(w.bytes(), why);
  if (!s) throw std::runtime_error(why);
  return *s;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsExposition, SumsProcessesAndMergesNames) {
  auto a = Writer::anonymous("estafette-esmtpd");
  auto b = Writer::anonymous("estafette-esmtpd");
  auto c = Writer::anonymous("estafette-courierd");
  a->add(Metric::EsmtpdConnections, 0, 2);
  b->add(Metric::EsmtpdConnections, 0, 3);
  a->add(Metric::EsmtpdRejects, static_cast<std::size_t>(Reject::UnknownUser));
  b->add_named(Metric::EsmtpdDnsblListed, 0, "bl.test");
  a->add_named(Metric::EsmtpdDnsblListed, 0, "other.test");
  a->add_named(Metric::EsmtpdDnsblListed, 0, "bl.test", 2);
  c->add_named(Metric::DeliveryResults, static_cast<std::size_t>(Result::Delivered), "sink.test");
  c->add_named(Metric::DeliveryResults, static_cast<std::size_t>(Result::Deferred), "[127.0.0.9]",
               2);
  c->observe(Metric::CommitBatchSize, 3);
  c->observe(Metric::CommitBatchSize, 1);
  std::vector<Snapshot> s = {snapshot_of(*a), snapshot_of(*b), snapshot_of(*c)};
  std::vector<QueueShapeRow> queue = {{"dead.test", 2, 61.5}, {"we\"ird", 1, 0}};
  auto text = render({s, std::span<const QueueShapeRow>(queue)}, 1 << 20);
  ASSERT_TRUE(text);
  const std::string t = "\n" + *text;
  EXPECT_TRUE(has_line(t, "estafette_processes{program=\"estafette-courierd\"} 1"));
  EXPECT_TRUE(has_line(t, "estafette_processes{program=\"estafette-esmtpd\"} 2"));
  EXPECT_TRUE(has_line(t, "# TYPE estafette_esmtpd_connections_total counter"));
  EXPECT_TRUE(has_line(t, "estafette_esmtpd_connections_total 5"));
  EXPECT_TRUE(has_line(t, "estafette_esmtpd_rejects_total{reason=\"unknown_user\"} 1"));
  EXPECT_TRUE(has_line(t, "estafette_esmtpd_rejects_total{reason=\"relay\"} 0"));
  EXPECT_TRUE(has_line(t, "estafette_esmtpd_dnsbl_listed_total{zone=\"bl.test\"} 3"));
  EXPECT_TRUE(has_line(t, "estafette_esmtpd_dnsbl_listed_total{zone=\"other.test\"} 1"));
  EXPECT_TRUE(
      has_line(t, "estafette_deliveries_total{result=\"delivered\",destination=\"sink.test\"} 1"));
  EXPECT_TRUE(
      has_line(t, "estafette_deliveries_total{result=\"deferred\",destination=\"[127.0.0.9]\"} 2"));
  EXPECT_TRUE(has_line(t, "# TYPE estafette_queue_commit_batch_size histogram"));
  EXPECT_TRUE(has_line(t, "estafette_queue_commit_batch_size_bucket{le=\"1\"} 1"));
  EXPECT_TRUE(has_line(t, "estafette_queue_commit_batch_size_bucket{le=\"2\"} 1"));
  EXPECT_TRUE(has_line(t, "estafette_queue_commit_batch_size_bucket{le=\"4\"} 2"));
  EXPECT_TRUE(has_line(t, "estafette_queue_commit_batch_size_bucket{le=\"+Inf\"} 2"));
  EXPECT_TRUE(has_line(t, "estafette_queue_commit_batch_size_sum 4"));
  EXPECT_TRUE(has_line(t, "estafette_queue_commit_batch_size_count 2"));
  EXPECT_TRUE(has_line(t, "estafette_queue_commit_seconds_count 0"));
  EXPECT_TRUE(has_line(t, "estafette_queue_up 1"));
  EXPECT_TRUE(has_line(t, "estafette_queue_recipients{destination=\"dead.test\"} 2"));
  EXPECT_TRUE(has_line(t, "estafette_queue_oldest_seconds{destination=\"dead.test\"} 61.5"));
  EXPECT_TRUE(has_line(t, "estafette_queue_recipients{destination=\"we\\\"ird\"} 1"));
}

TEST(MetricsExposition, NamesBeyondTheBoundAreOther) {
  std::vector<std::unique_ptr<Writer>> writers;
  std::vector<Snapshot> s;
  for (std::size_t p = 0; p < 3; ++p) {
    writers.push_back(Writer::anonymous("estafette-courierd"));
    for (std::size_t i = 0; i < kNameSlots; ++i)
      writers.back()->add_named(Metric::DeliveryResults, 0,
                                "d" + std::to_string(p * kNameSlots + i) + ".test");
    s.push_back(snapshot_of(*writers.back()));
  }
  auto text = render({s, std::nullopt}, 1 << 20);
  ASSERT_TRUE(text);
  std::size_t series = 0;
  for (std::size_t at = 0;
       (at = text->find("\nestafette_deliveries_total{", at)) != std::string::npos; ++at)
    ++series;
  EXPECT_EQ(series, kMaxNames + 1);
  EXPECT_TRUE(
      has_line(*text, "estafette_deliveries_total{result=\"delivered\",destination=\"other\"} " +
                          std::to_string(3 * kNameSlots - kMaxNames)));
  EXPECT_TRUE(has_line(*text, "estafette_queue_up 0"));
  EXPECT_EQ(text->find("estafette_queue_recipients"), std::string::npos);
}

TEST(MetricsExposition, TooLargeIsRefused) {
  EXPECT_FALSE(render({{}, std::nullopt}, 100));
}

TEST(MetricsExposition, EscapesLabelValues) {
  EXPECT_EQ(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

}  // namespace
}  // namespace estafette::metrics
