// lib/metrics/shm_file: what a daemon writes reads back exactly; a corrupt, truncated or hostile
// file (the unprivileged user writes them) is refused with its reason, never half read.
#include "lib/metrics/shm_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <vector>

#include "tests/unit/queue/queue_test_util.h"

namespace estafette::metrics {
namespace {

using Bytes = std::vector<unsigned char>;

Bytes valid_file() {
  auto w = Writer::anonymous("estafette-esmtpd");
  w->add(Metric::EsmtpdConnections, 0, 3);
  w->add(Metric::EsmtpdRejects, static_cast<std::size_t>(Reject::Relay));
  w->add_named(Metric::DeliveryResults, static_cast<std::size_t>(Result::Deferred), "dead.test");
  auto b = w->bytes();
  return Bytes(b.begin(), b.end());
}

TEST(MetricsShmFile, WrittenCountsReadBack) {
  auto w = Writer::anonymous("estafette-courierd");
  w->add(Metric::EsmtpdAccepted, 0, 2);
  w->add_named(Metric::DeliveryResults, 0, "sink.test", 4);
  w->add_named(Metric::DeliveryResults, 2, "sink.test");
  w->add_named(Metric::DeliveryResults, 1, "bad name\n");  // not a valid name: "other"
  w->observe(Metric::CommitSeconds, 0.003);
  w->observe(Metric::CommitSeconds, 100);
  std::string why;
  auto s = parse(w->bytes(), why);
  ASSERT_TRUE(s) << why;
  EXPECT_EQ(s->program, "estafette-courierd");
  EXPECT_EQ(s->pid, ::getpid());
  EXPECT_EQ(s->counters[cell_slot(Metric::EsmtpdAccepted, 0, 0)], 2u);
  const std::size_t table = dynamic_index(Metric::DeliveryResults);
  EXPECT_EQ(s->names[table][0], "sink.test");
  EXPECT_EQ(s->names[table][1], "");
  EXPECT_EQ(s->counters[cell_slot(Metric::DeliveryResults, 0, 0)], 4u);
  EXPECT_EQ(s->counters[cell_slot(Metric::DeliveryResults, 2, 0)], 1u);
  EXPECT_EQ(s->counters[cell_slot(Metric::DeliveryResults, 1, kNameSlots)], 1u);
  // 0.003 s is in the 0.005 bucket (index 3), 100 s beyond the last; the sum in microseconds.
  const std::size_t h = cell_slot(Metric::CommitSeconds, 0, 0);
  EXPECT_EQ(s->counters[h + 3], 1u);
  EXPECT_EQ(s->counters[h + family(Metric::CommitSeconds).buckets.size()], 1u);
  EXPECT_EQ(s->counters[h + family(Metric::CommitSeconds).buckets.size() + 1], 100003000u);
}

TEST(MetricsShmFile, NamesBeyondTheSlotsCountAsOther) {
  auto w = Writer::anonymous("estafette-courierd");
  for (std::size_t i = 0; i < kNameSlots + 5; ++i)
    w->add_named(Metric::DeliveryResults, 0, "d" + std::to_string(i) + ".test");
  w->add_named(Metric::DeliveryResults, 0, "d0.test");  // an old name keeps its slot
  std::string why;
  auto s = parse(w->bytes(), why);
  ASSERT_TRUE(s) << why;
  EXPECT_EQ(s->counters[cell_slot(Metric::DeliveryResults, 0, 0)], 2u);
  EXPECT_EQ(s->counters[cell_slot(Metric::DeliveryResults, 0, kNameSlots)], 5u);
}

struct Corruption {
  const char* name;
  std::function<void(Bytes&)> mutate;
  const char* why;  // a part of the reason
};

void put32(Bytes& b, std::size_t at, std::uint32_t v) {
  std::memcpy(b.data() + at, &v, 4);
}
void put64(Bytes& b, std::size_t at, std::uint64_t v) {
  std::memcpy(b.data() + at, &v, 8);
}
std::size_t first_name(std::size_t table) {
  return kHeaderSize + slot_count() * 8 + table * kNameSlots * kNameBytes;
}

const Corruption kCorruptions[] = {
    {"empty", [](Bytes& b) { b.clear(); }, "size 0"},
    {"one byte short", [](Bytes& b) { b.pop_back(); }, "size"},
    {"one byte long", [](Bytes& b) { b.push_back(0); }, "size"},
    {"magic", [](Bytes& b) { b[0] = 'X'; }, "bad magic"},
    {"version", [](Bytes& b) { put32(b, 8, 2); }, "version 2"},
    {"header size", [](Bytes& b) { put32(b, 12, 4096); }, "version"},
    {"fingerprint", [](Bytes& b) { put64(b, 16, 42); }, "another layout"},
    {"counter count", [](Bytes& b) { put32(b, 32, 1u << 30); }, "another layout"},
    {"name tables", [](Bytes& b) { put32(b, 36, 1000); }, "another layout"},
    {"name slots", [](Bytes& b) { put32(b, 40, 0xffffffff); }, "another layout"},
    {"name bytes", [](Bytes& b) { put32(b, 44, 255); }, "another layout"},
    {"pid zero", [](Bytes& b) { put64(b, 24, 0); }, "bad pid"},
    {"pid negative", [](Bytes& b) { put64(b, 24, static_cast<std::uint64_t>(-5)); }, "bad pid"},
    {"pid huge", [](Bytes& b) { put64(b, 24, 1ULL << 40); }, "bad pid"},
    {"program not terminated", [](Bytes& b) { std::memset(b.data() + 48, 'a', kProgramBytes); },
     "program"},
    {"program empty", [](Bytes& b) { std::memset(b.data() + 48, 0, kProgramBytes); }, "program"},
    {"program with a quote", [](Bytes& b) { b[48] = '"'; }, "program"},
    {"name too long", [](Bytes& b) { b[first_name(0)] = static_cast<unsigned char>(kNameBytes); },
     "bad name"},
    {"name length 255", [](Bytes& b) { b[first_name(0)] = 255; }, "bad name"},
    {"name with a quote",
     [](Bytes& b) {
       b[first_name(1)] = 3;
       std::memcpy(b.data() + first_name(1) + 1, "a\"b", 3);
     },
     "bad name"},
    {"name with a newline",
     [](Bytes& b) {
       b[first_name(1) + kNameBytes] = 2;
       std::memcpy(b.data() + first_name(1) + kNameBytes + 1, "a\n", 2);
     },
     "bad name"},
    {"name with a NUL",
     [](Bytes& b) {
       b[first_name(0)] = 2;
       std::memcpy(b.data() + first_name(0) + 1, "a\0", 2);
     },
     "bad name"},
};

class MetricsShmCorrupt : public ::testing::TestWithParam<Corruption> {};

TEST_P(MetricsShmCorrupt, IsRefused) {
  Bytes b = valid_file();
  std::string why;
  ASSERT_TRUE(parse(b, why)) << why;
  GetParam().mutate(b);
  why.clear();
  EXPECT_FALSE(parse(b, why));
  EXPECT_NE(why.find(GetParam().why), std::string::npos) << why;
}

INSTANTIATE_TEST_SUITE_P(Table, MetricsShmCorrupt, ::testing::ValuesIn(kCorruptions),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(MetricsShmFile, EveryTruncationIsRefused) {
  Bytes b = valid_file();
  for (std::size_t n = 0; n < b.size(); n += (n < kHeaderSize + 64 ? 1 : 97)) {
    std::string why;
    EXPECT_FALSE(parse(std::span<const unsigned char>(b.data(), n), why)) << n;
  }
}

TEST(MetricsShmFile, DirectoryReaderKeepsLiveFilesAndDropsTheRest) {
  queue::testing::TempDir dir;
  const std::string d = dir.sub("metrics");
  auto w = Writer::create(d, "estafette-esmtpd");
  w->add(Metric::EsmtpdConnections, 0, 7);
  ASSERT_EQ(w->path(), d + "/estafette-esmtpd." + std::to_string(::getpid()));
  // A dead process's file: a child that exited, its file left behind.
  pid_t child = ::fork();
  if (child == 0) {
    auto left = Writer::create(d, "estafette-courierd");
    std::string copy = left->path();
    left.release();  // no destructor: as after a crash
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::string dead = d + "/estafette-courierd." + std::to_string(child);
  ASSERT_EQ(::access(dead.c_str(), F_OK), 0);
  // Hostile entries: a link, a file naming another pid, a name that is no PROGRAM.PID.
  ASSERT_EQ(::symlink("/etc/passwd", (d + "/estafette-local.1").c_str()), 0);
  {
    std::ifstream in(w->path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(d + "/estafette-courierd.1", std::ios::binary) << bytes;  // pid 1 is alive
    std::ofstream(d + "/junk", std::ios::binary) << "x";
  }
  DirRead r = read_dir(d, 100, true);
  ASSERT_EQ(r.live.size(), 1u);
  EXPECT_EQ(r.live[0].counters[cell_slot(Metric::EsmtpdConnections, 0, 0)], 7u);
  EXPECT_EQ(::access(dead.c_str(), F_OK), -1) << "the dead process's file is removed";
  EXPECT_EQ(r.refused.size(), 3u);
  for (const auto& why : r.refused) SCOPED_TRACE(why);
  // At most max_files entries are looked at.
  EXPECT_FALSE(read_dir(d, 1, false).refused.empty());
  const std::string path = w->path();
  w.reset();
  EXPECT_EQ(::access(path.c_str(), F_OK), -1) << "the writer removes its file";
}

}  // namespace
}  // namespace estafette::metrics
