// The read-only queue reader (estafette mailq without courierd), in both backends: it lists what
// the backend holds (done recipients, holds, removals) while the backend is open, changes nothing
// on disk, and skips a corrupt record, a FIFO or a symlink with a warning; the state log and
// .done parsers as tables.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "lib/queue/queue_reader.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

using testing::write_file;

// Every path below dir with its size, mode and modification time.
std::map<std::string, std::tuple<std::uintmax_t, unsigned, std::int64_t>> tree(
    const std::string& dir) {
  std::map<std::string, std::tuple<std::uintmax_t, unsigned, std::int64_t>> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    out[e.path().string()] = {static_cast<std::uintmax_t>(st.st_size), st.st_mode,
                              st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec};
  }
  return out;
}

std::vector<QueueId> ids_of(const QueueListing& l) {
  std::vector<QueueId> out;
  for (const auto& m : l.messages) out.push_back(m.envelope.id);
  return out;
}

class QueueReader : public testing::PerBackend {};

TEST_P(QueueReader, ListsPendingMessagesAndChangesNothing) {
  auto backend = open();  // held open, as by a running courierd
  QueueId a = add(*backend, 3), b = add(*backend), c = add(*backend), d = add(*backend, 1);
  ASSERT_TRUE(backend->mark_done(a, {1}));
  ASSERT_TRUE(backend->set_held({a}, true));
  ASSERT_TRUE(backend->set_held({b}, true));
  ASSERT_TRUE(backend->set_held({b}, false));
  ASSERT_TRUE(backend->remove(c));
  ASSERT_TRUE(backend->mark_done(d, {0}));  // all done, not yet removed: nothing to show
  const auto before = tree(dir_.path());
  QueueListing l = read_queue_readonly(GetParam(), dir_.path());
  EXPECT_EQ(tree(dir_.path()), before);
  EXPECT_TRUE(l.warnings.empty()) << l.warnings[0];
  std::vector<QueueId> want{a, b};
  std::sort(want.begin(), want.end());
  ASSERT_EQ(ids_of(l), want);
  const StoredMessage& ma = l.messages[want[0] == a ? 0 : 1];
  const StoredMessage& mb = l.messages[want[0] == a ? 1 : 0];
  EXPECT_EQ(ma.done, (std::vector<bool>{false, true, false}));
  EXPECT_TRUE(ma.held);
  EXPECT_FALSE(mb.held);
  EXPECT_EQ(mb.envelope.sender, "alice@example.org");
  EXPECT_EQ(mb.body_size, 3u);
  // The same as the backend itself says.
  auto loaded = backend->load(a);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->envelope, ma.envelope);
  EXPECT_EQ(loaded->body_offset, ma.body_offset);
}

TEST_P(QueueReader, SkipsCorruptRecordsFifosAndSymlinksWithAWarning) {
  auto backend = open();
  QueueId a = add(*backend);
  const bool segment = std::string(GetParam()) == "segment";
  const std::string sub = dir_.sub(segment ? "seg" : "msg");
  // A record that claims a huge body, a FIFO and a symlink under message names.
  QueueId bad = make_queue_id(), fifo = make_queue_id(), link = make_queue_id();
  write_file(sub + "/" + bad,
             "ESTAFETTE-QUEUE 1\nI " + bad + "\nT 1\nF a@b\nR c@d\nB 99999999999999999999\nx");
  ASSERT_EQ(::mkfifo((sub + "/" + fifo).c_str(), 0600), 0);
  std::filesystem::create_symlink("/etc/passwd", sub + "/" + link);
  write_file(sub + "/stray.txt", "x");
  const auto before = tree(dir_.path());
  QueueListing l = read_queue_readonly(GetParam(), dir_.path());
  EXPECT_EQ(tree(dir_.path()), before);
  EXPECT_EQ(ids_of(l), std::vector<QueueId>{a});
  auto warned = [&](const std::string& part) {
    return std::any_of(l.warnings.begin(), l.warnings.end(),
                       [&](const std::string& w) { return w.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(warned(bad));
  EXPECT_TRUE(warned(fifo));
  EXPECT_TRUE(warned(link));
  EXPECT_TRUE(warned("stray.txt"));
}

TEST_P(QueueReader, BoundedCountAndMissingQueue) {
  auto backend = open();
  for (int i = 0; i < 3; ++i) add(*backend);
  ReadOnlyOptions options;
  options.max_messages = 2;
  QueueListing l = read_queue_readonly(GetParam(), dir_.path(), options);
  EXPECT_EQ(l.messages.size(), 2u);
  ASSERT_EQ(l.warnings.size(), 1u);
  EXPECT_NE(l.warnings[0].find("more than 2"), std::string::npos);
  l = read_queue_readonly(GetParam(), dir_.sub("none"));
  EXPECT_TRUE(l.messages.empty());
  EXPECT_TRUE(l.warnings.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_.sub("none")));
  // A queue that cannot be read at all is an error, not an empty queue.
  write_file(dir_.sub("file"), "x");
  EXPECT_THROW(read_queue_readonly(GetParam(), dir_.sub("file")), std::system_error);
  EXPECT_THROW(read_queue_readonly("other", dir_.path()), std::invalid_argument);
}

// A quarantined record is listed held until it is released, as the backend says.
TEST_P(QueueReader, QuarantinedMessageIsHeldUntilReleased) {
  auto backend = open();
  Envelope env = testing::test_envelope(1);
  env.quarantine = "held by a milter";
  QueueId q;
  ASSERT_TRUE(write_message(*backend, env, "x\r\n", &q));
  QueueListing l = read_queue_readonly(GetParam(), dir_.path());
  ASSERT_EQ(l.messages.size(), 1u);
  EXPECT_TRUE(l.messages[0].held);
  EXPECT_EQ(l.messages[0].envelope.quarantine, "held by a milter");
  ASSERT_TRUE(backend->set_held({q}, false));
  l = read_queue_readonly(GetParam(), dir_.path());
  ASSERT_EQ(l.messages.size(), 1u);
  EXPECT_FALSE(l.messages[0].held);
  EXPECT_TRUE(l.warnings.empty()) << l.warnings[0];
  ASSERT_TRUE(backend->set_held({q}, true));
  EXPECT_TRUE(read_queue_readonly(GetParam(), dir_.path()).messages.at(0).held);
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueReader, ::testing::Values("segment", "file"));

TEST(QueueReaderParse, StateLog) {
  struct Row {
    std::string text;
    std::map<QueueId, LoggedState> want;
    std::size_t bad;
  };
  const std::vector<Row> table = {
      {"", {}, 0},
      {"X Q1\n", {{"Q1", {true, false, {}, false}}}, 0},
      {"D Q1 0 2\nD Q1 2 5\n", {{"Q1", {false, false, {0, 2, 5}, false}}}, 0},
      {"D Q1\n", {{"Q1", {}}}, 0},
      {"H Q1\nR Q1\nH Q2\n",
       {{"Q1", {false, false, {}, true}}, {"Q2", {false, true, {}, false}}},
       0},
      {"W Q1\n", {{"Q1", {}}}, 0},
      {"H Q1", {}, 0},        // torn last line: not yet
      {"D Q1 1 x\n", {}, 1},  // a bad index: the whole line
      {"D Q1 -1\n", {}, 1},
      {"D Q1 99999999999\n", {}, 1},  // over 32 bits
      {"D Q1 1  2\n", {}, 1},         // empty field
      {"H ../etc\nZ Q1\nX\nH Q1 extra\n", {}, 4},
      {"X Q1\nH Q1\n", {{"Q1", {true, true, {}, false}}}, 0},
  };
  for (const auto& row : table) {
    std::size_t bad = 0;
    EXPECT_EQ(parse_state_log(row.text, &bad), row.want) << row.text;
    EXPECT_EQ(bad, row.bad) << row.text;
  }
}

TEST(QueueReaderParse, DoneFile) {
  struct Row {
    std::string text;
    std::size_t recipients;
    std::vector<bool> want;
    std::size_t bad;
  };
  const std::vector<Row> table = {
      {"", 2, {false, false}, 0},
      {"1\n", 2, {false, true}, 0},
      {"0\n1\n0\n", 2, {true, true}, 0},
      {"2\n", 2, {false, false}, 1},  // not a recipient of the message
      {"x\n-1\n\n1 \n", 2, {false, false}, 4},
      {"1", 2, {false, false}, 0},  // torn
  };
  for (const auto& row : table) {
    std::size_t bad = 0;
    EXPECT_EQ(parse_done_file(row.text, row.recipients, &bad), row.want) << row.text;
    EXPECT_EQ(bad, row.bad) << row.text;
  }
}

}  // namespace
}  // namespace estafette::queue
