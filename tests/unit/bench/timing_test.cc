// What estafette-bench's sink and source write for the orchestration (bench/kit/timing.h): time
// records, stats lines and the Message-ID the source records; and their options.
#include "bench/kit/timing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/kit/options.h"
#include "bench/kit/sink_session.h"
#include "bench/kit/source.h"

namespace estafette::bench {
namespace {

TEST(BenchTiming, TimeRecord) {
  EXPECT_EQ(time_record(1700000000.25, "<1.x@y>"), "1700000000.250000 <1.x@y>\n");
  EXPECT_EQ(time_record(0, ""), "0.000000 \n");
}

TEST(BenchTiming, StatsLine) {
  EXPECT_EQ(stats_line(1700000000.5, {{"messages", 3}, {"rejected", 0}}),
            "time=1700000000.500 messages=3 rejected=0\n");
  EXPECT_EQ(stats_line(1.0004, {}), "time=1.000\n");
  EXPECT_EQ(stats_line(2, {{"sent", 18446744073709551615ull}}),
            "time=2.000 sent=18446744073709551615\n");
}

// The id the source records is the one the sink reads from the message's header.
TEST(BenchTiming, SourceIdMatchesSinkId) {
  for (std::size_t size : {100u, 400u, 65536u}) {
    MessageTemplate message(size, "a@b.test", "c@d.test", "77.123");
    for (std::uint64_t n : {1ull, 42ull, 9999999999999999ull}) {
      const std::string& text = message.with_id(n);
      std::string id(message.message_id());
      EXPECT_EQ(id.front(), '<');
      EXPECT_EQ(id.back(), '>');
      EXPECT_NE(id.find(std::to_string(n) + ".77.123@"), std::string::npos) << id;
      EXPECT_EQ(message_id_of(text.substr(0, text.find("\r\n\r\n") + 2)), id);
    }
  }
}

TEST(BenchTiming, Options) {
  auto sink = parse_sink_options(
      {"--listen", "127.0.0.1:25", "--record-times", "t", "--stats=s", "--stats-interval", "100"});
  EXPECT_EQ(sink.record_times, "t");
  EXPECT_EQ(sink.stats, "s");
  EXPECT_EQ(sink.stats_interval_ms, 100u);
  EXPECT_EQ(parse_sink_options({"--listen", "127.0.0.1:25"}).stats_interval_ms, 250u);
  auto source =
      parse_source_options({"--target", "127.0.0.1:25", "--messages", "1", "--record-sends", "r",
                            "--stats", "s", "--stats-interval", "60000"});
  EXPECT_EQ(source.record_sends, "r");
  EXPECT_EQ(source.stats, "s");
  EXPECT_EQ(source.stats_interval_ms, 60000u);
  for (const char* bad : {"9", "60001", "x", ""}) {
    EXPECT_THROW(parse_sink_options({"--listen", "127.0.0.1:25", "--stats-interval", bad}),
                 UsageError)
        << bad;
    EXPECT_THROW(parse_source_options(
                     {"--target", "127.0.0.1:25", "--messages", "1", "--stats-interval", bad}),
                 UsageError)
        << bad;
  }
  EXPECT_THROW(parse_sink_options({"--listen", "127.0.0.1:25", "--record-times"}), UsageError);
}

// The open-loop source's schedule: message i is due i / rate seconds after the start.
TEST(BenchSource, OfferTime) {
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;
  struct Case {
    std::uint64_t i;
    double rate;
    nanoseconds want;
  } cases[] = {
      {0, 50, nanoseconds(0)},         {1, 50, milliseconds(20)},
      {100, 50, milliseconds(2000)},   {3, 2.5, milliseconds(1200)},
      {1, 3, nanoseconds(333333333)},  {2, 3, nanoseconds(666666667)},  // to the nearest nanosecond
      {1, 1000000, nanoseconds(1000)}, {7, 0.5, milliseconds(14000)},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(offer_time(c.i, c.rate), c.want) << c.i << " at " << c.rate;
  }
  // Never decreasing, also where it is capped (about 95 years).
  nanoseconds last(0);
  for (std::uint64_t i : {1ull, 1000ull, 1000000000ull, 1ull << 40, 1ull << 62, ~0ull}) {
    EXPECT_GE(offer_time(i, 0.001), last) << i;
    last = offer_time(i, 0.001);
  }
  EXPECT_LE(last, std::chrono::hours(24 * 366 * 100));
}

}  // namespace
}  // namespace estafette::bench
