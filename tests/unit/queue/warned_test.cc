// The "delay warning sent" state of queued messages (Backend::set_warned) in both backends:
// reported by load() and by a fresh instance's scan(), kept through the segment backend's state
// log rewrite, and gone with the message.
#include <gtest/gtest.h>

#include "lib/queue/backend.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

using testing::list_names;
using testing::read_file;
using testing::scan_all;
using testing::TempDir;
using testing::test_envelope;

class QueueWarned : public testing::PerBackend {
 protected:
  std::vector<std::pair<QueueId, bool>> warned_after_restart() {
    return after_restart(&StoredMessage::warned);
  }
  bool is_file() const { return std::string(GetParam()) == "file"; }
};

TEST_P(QueueWarned, SetSurvivesARestart) {
  auto backend = open();
  QueueId a = add(*backend), b = add(*backend), c = add(*backend);
  EXPECT_FALSE(backend->load(a)->warned);
  ASSERT_TRUE(backend->set_warned({a}));
  EXPECT_TRUE(backend->load(a)->warned);
  EXPECT_FALSE(backend->load(b)->warned);
  EXPECT_EQ(warned_after_restart(),
            (std::vector<std::pair<QueueId, bool>>{{a, true}, {b, false}, {c, false}}));

  // Again (a no-op for a), several at once, and seen by another instance's load().
  ASSERT_TRUE(backend->set_warned({a, c}));
  EXPECT_TRUE(open()->load(c)->warned);
  EXPECT_EQ(warned_after_restart(),
            (std::vector<std::pair<QueueId, bool>>{{a, true}, {b, false}, {c, true}}));
  if (!is_file()) {
    std::string state = read_file(dir_.sub("state"));
    EXPECT_EQ(state.find("W " + b), std::string::npos) << state;
  }
}

TEST_P(QueueWarned, UnknownIdsAreSkipped) {
  auto backend = open();
  QueueId a = add(*backend);
  EXPECT_TRUE(backend->set_warned({make_queue_id(), "../x", a}));
  EXPECT_TRUE(backend->load(a)->warned);
  EXPECT_TRUE(backend->set_warned({}));
  EXPECT_EQ(backend->count(), 1u);  // a marker is not a message
}

TEST_P(QueueWarned, KeptWithOtherStateAndLeavesWithTheMessage) {
  QueueId a, b;
  {
    auto backend = open();
    a = add(*backend, 3);
    b = add(*backend);
    ASSERT_TRUE(backend->mark_done(a, {2}));
    ASSERT_TRUE(backend->set_held({a}, true));
    ASSERT_TRUE(backend->set_warned({a, b}));
    ASSERT_TRUE(backend->remove(b));
    EXPECT_EQ(backend->count(), 1u);
    EXPECT_FALSE(backend->load(b));
  }
  // Start-up scans (each rewrites the segment backend's state log) keep every state of a.
  for (int round = 0; round < 2; ++round) {
    auto all = scan_all(*open());
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].envelope.id, a);
    EXPECT_TRUE(all[0].warned);
    EXPECT_TRUE(all[0].held);
    EXPECT_EQ(all[0].done, (std::vector<bool>{false, false, true}));
  }
  if (is_file()) {
    EXPECT_EQ(list_names(dir_.sub("msg")),
              (std::vector<std::string>{a, a + ".done", a + ".held", a + ".warned"}));
  } else {
    // The rewrite kept a's W line and dropped b's (only b's X line stays, its segment being a's).
    std::string state = read_file(dir_.sub("state"));
    EXPECT_NE(state.find("W " + a), std::string::npos) << state;
    EXPECT_EQ(state.find("W " + b), std::string::npos) << state;
  }
  ASSERT_TRUE(open()->remove(a));
  EXPECT_TRUE(scan_all(*open()).empty());
  if (is_file()) {
    EXPECT_TRUE(list_names(dir_.sub("msg")).empty());
  }
}

TEST_P(QueueWarned, AFreshMessageIsNotWarned) {
  // A message committed after another was warned starts unwarned (state is per message).
  auto backend = open();
  QueueId a = add(*backend);
  ASSERT_TRUE(backend->set_warned({a}));
  QueueId b = add(*backend);
  EXPECT_FALSE(backend->load(b)->warned);
  EXPECT_EQ(warned_after_restart(), (std::vector<std::pair<QueueId, bool>>{{a, true}, {b, false}}));
}

TEST(QueueWarnedFile, AMarkerWithoutItsMessageIsRemovedByTheScan) {
  // Left by a crash between the unlinks of remove().
  TempDir dir;
  auto backend = open_backend("file", dir.path());
  QueueId a;
  ASSERT_TRUE(write_message(*backend, test_envelope(1), "x\r\n", &a));
  ASSERT_TRUE(backend->set_warned({a}));
  testing::write_file(dir.sub("msg/ORPHAN-1.warned"), "");
  auto all = scan_all(*backend);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].warned);
  EXPECT_EQ(list_names(dir.sub("msg")), (std::vector<std::string>{a, a + ".warned"}));
}

INSTANTIATE_TEST_SUITE_P(Queue, QueueWarned, ::testing::Values("segment", "file"));

}  // namespace
}  // namespace estafette::queue
