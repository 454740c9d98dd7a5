// The hold state of queued messages (Backend::set_held) in both backends: durable across a
// reopen, reported by scan() and load(), undone by a release, gone with the message, and kept
// through the segment backend's state log rewrite.
#include <gtest/gtest.h>

#include <algorithm>

#include "lib/queue/backend.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

using testing::list_names;
using testing::read_file;
using testing::scan_all;

class QueueHeld : public testing::PerBackend {
 protected:
  std::vector<std::pair<QueueId, bool>> held_after_restart() {
    return after_restart(&StoredMessage::held);
  }
};

TEST_P(QueueHeld, HoldAndReleaseSurviveARestart) {
  auto backend = open();
  QueueId a = add(*backend), b = add(*backend);
  ASSERT_TRUE(backend->set_held({a}, true));
  EXPECT_TRUE(backend->load(a)->held);
  EXPECT_FALSE(backend->load(b)->held);
  EXPECT_EQ(held_after_restart(), (std::vector<std::pair<QueueId, bool>>{{a, true}, {b, false}}));

  ASSERT_TRUE(backend->set_held({a, b}, true));
  EXPECT_EQ(held_after_restart(), (std::vector<std::pair<QueueId, bool>>{{a, true}, {b, true}}));
  ASSERT_TRUE(backend->set_held({a}, false));
  EXPECT_FALSE(backend->load(a)->held);
  EXPECT_EQ(held_after_restart(), (std::vector<std::pair<QueueId, bool>>{{a, false}, {b, true}}));
}

TEST_P(QueueHeld, UnknownIdsAreSkipped) {
  auto backend = open();
  QueueId a = add(*backend);
  EXPECT_TRUE(backend->set_held({make_queue_id(), "../x", a}, true));
  EXPECT_TRUE(backend->load(a)->held);
  EXPECT_TRUE(backend->set_held({}, true));
}

TEST_P(QueueHeld, HoldKeepsDoneRecipientsAndLeavesWithTheMessage) {
  QueueId a, b;
  {
    auto backend = open();
    a = add(*backend, 3);
    b = add(*backend);
    ASSERT_TRUE(backend->mark_done(a, {1}));
    ASSERT_TRUE(backend->set_held({a, b}, true));
    ASSERT_TRUE(backend->remove(b));
    EXPECT_EQ(backend->count(), 1u);
  }
  // A start-up scan (which rewrites the segment backend's state log) keeps both states of a.
  auto all = scan_all(*open());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].envelope.id, a);
  EXPECT_TRUE(all[0].held);
  EXPECT_EQ(all[0].done, (std::vector<bool>{false, true, false}));
  auto again = scan_all(*open());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].held);
  EXPECT_EQ(again[0].done, (std::vector<bool>{false, true, false}));
  // Nothing of b is left behind.
  if (std::string(GetParam()) == "file") {
    EXPECT_EQ(list_names(dir_.sub("msg")), (std::vector<std::string>{a, a + ".done", a + ".held"}));
  } else {
    // Its segment is still there (a is in it): only its X line is kept, not its H line.
    std::string state = read_file(dir_.sub("state"));
    EXPECT_EQ(state.find("H " + b), std::string::npos) << state;
    EXPECT_NE(state.find("H " + a), std::string::npos) << state;
  }
  ASSERT_TRUE(open()->remove(a));
  EXPECT_TRUE(scan_all(*open()).empty());
}

// A filter's quarantine (the record's Z) starts the message on hold; a release is remembered
// across restarts and the segment backend's state log rewrite (else the record would hold it
// again), and a later hold still holds it.
TEST_P(QueueHeld, QuarantinedMessageIsHeldUntilReleased) {
  auto backend = open();
  Envelope env = testing::test_envelope(2);
  env.quarantine = "virus found by clamav";
  QueueId q;
  ASSERT_TRUE(write_message(*backend, env, "x\r\n", &q));
  QueueId plain = add(*backend);
  EXPECT_TRUE(backend->load(q)->held);
  EXPECT_EQ(backend->load(q)->envelope.quarantine, "virus found by clamav");
  EXPECT_FALSE(backend->load(plain)->held);
  EXPECT_EQ(held_after_restart(),
            (std::vector<std::pair<QueueId, bool>>{{q, true}, {plain, false}}));

  ASSERT_TRUE(backend->set_held({q}, false));
  EXPECT_FALSE(backend->load(q)->held);
  // Twice: the first start-up scan rewrites the segment backend's state log.
  EXPECT_EQ(held_after_restart(),
            (std::vector<std::pair<QueueId, bool>>{{q, false}, {plain, false}}));
  EXPECT_EQ(held_after_restart(),
            (std::vector<std::pair<QueueId, bool>>{{q, false}, {plain, false}}));

  auto again = open();
  ASSERT_TRUE(again->set_held({q}, true));
  EXPECT_TRUE(again->load(q)->held);
  EXPECT_EQ(held_after_restart(),
            (std::vector<std::pair<QueueId, bool>>{{q, true}, {plain, false}}));
  ASSERT_TRUE(open()->remove(q));
  if (std::string(GetParam()) == "file") {
    EXPECT_EQ(list_names(dir_.sub("msg")), (std::vector<std::string>{plain}));
  }
}

INSTANTIATE_TEST_SUITE_P(Queue, QueueHeld, ::testing::Values("segment", "file"));

}  // namespace
}  // namespace estafette::queue
