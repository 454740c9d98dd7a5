#include "lib/queue/committer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <thread>

#include "lib/queue/file_backend.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

using namespace std::chrono_literals;
using testing::list_names;
using testing::TempDir;
using testing::test_envelope;

// Delegates to a real backend; counts commit() rounds, can slow them down or hold them.
class ProbeBackend final : public Backend {
 public:
  explicit ProbeBackend(Backend& inner) : inner_(inner) {}
  std::unique_ptr<IncomingMessage> create(Envelope e) override { return inner_.create(e); }
  std::vector<bool> commit(std::vector<IncomingMessage*> batch) override {
    rounds.fetch_add(1);
    std::size_t n = batch.size();
    for (std::size_t seen = largest_batch.load(); n > seen;) {
      if (largest_batch.compare_exchange_weak(seen, n)) break;
    }
    committer_thread_id = std::this_thread::get_id();
    if (gate.valid() && gate.wait_for(5s) != std::future_status::ready) gate_timed_out = true;
    if (throw_in_commit) throw std::runtime_error("injected");
    std::this_thread::sleep_for(delay);
    return inner_.commit(std::move(batch));
  }
  void abort(std::unique_ptr<IncomingMessage> m) override {
    aborted.fetch_add(1);
    inner_.abort(std::move(m));
  }
  void scan(const std::function<void(StoredMessage&&)>& visit) override { inner_.scan(visit); }
  std::optional<StoredMessage> load(const QueueId& id) override { return inner_.load(id); }
  std::vector<QueueId> ids() override { return inner_.ids(); }
  bool mark_done(const QueueId& id, const std::vector<std::size_t>& r) override {
    return inner_.mark_done(id, r);
  }
  bool set_held(const std::vector<QueueId>& ids, bool held) override {
    return inner_.set_held(ids, held);
  }
  bool set_warned(const std::vector<QueueId>& ids) override { return inner_.set_warned(ids); }
  bool remove(const QueueId& id) override { return inner_.remove(id); }
  std::size_t count() override { return inner_.count(); }

  std::atomic<int> rounds{0};
  std::atomic<int> aborted{0};
  std::atomic<std::size_t> largest_batch{0};
  std::atomic<bool> gate_timed_out{false};
  std::thread::id committer_thread_id;
  std::shared_future<void> gate;  // set before use: commit() waits for it
  std::chrono::milliseconds delay{0};
  bool throw_in_commit = false;

 private:
  Backend& inner_;
};

// Runs the loop until stop() or the safety timeout; returns false on timeout.
bool run_with_timeout(event::Loop& loop, event::Clock::duration timeout = 20s) {
  bool timed_out = false;
  auto timer = loop.add_timer(timeout, [&] {
    timed_out = true;
    loop.stop();
  });
  loop.run();
  loop.cancel_timer(timer);
  return !timed_out;
}

std::unique_ptr<IncomingMessage> new_message(Backend& backend, int i) {
  auto m = backend.create(test_envelope(2));
  EXPECT_TRUE(m->append("Subject: " + std::to_string(i) + "\r\n\r\nbody\r\n"));
  return m;
}

TEST(QueueCommitter, ManyCommitsFromTheLoopCompleteInBatches) {
  TempDir dir;
  auto file = open_file_backend(dir.path());
  ProbeBackend probe(*file);
  probe.delay = 2ms;  // like an fsync: lets the next batch gather
  event::Loop loop;
  constexpr int kMessages = 200;
  int reported = 0, ok_count = 0;
  bool wrong_thread = false;
  auto loop_thread = std::this_thread::get_id();
  Committer committer(loop, probe);
  loop.add_timer(0ms, [&] {
    for (int i = 0; i < kMessages; ++i) {
      committer.commit(new_message(probe, i), [&](bool ok, int) {
        wrong_thread = wrong_thread || std::this_thread::get_id() != loop_thread;
        ++reported;
        ok_count += ok ? 1 : 0;
        if (reported == kMessages) loop.stop();
      });
    }
    EXPECT_EQ(committer.pending(), static_cast<std::size_t>(kMessages));
    EXPECT_EQ(reported, 0);  // never reported from inside commit()
  });
  ASSERT_TRUE(run_with_timeout(loop));
  EXPECT_EQ(reported, kMessages);
  EXPECT_EQ(ok_count, kMessages);
  EXPECT_FALSE(wrong_thread);
  EXPECT_NE(probe.committer_thread_id, loop_thread);
  EXPECT_EQ(committer.pending(), 0u);
  EXPECT_LT(probe.rounds.load(), kMessages);
  EXPECT_EQ(committer.rounds(), static_cast<std::uint64_t>(probe.rounds.load()));
  EXPECT_GT(probe.largest_batch.load(), 1u);
  EXPECT_EQ(probe.count(), static_cast<std::size_t>(kMessages));
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
}

TEST(QueueCommitter, LoopKeepsRunningWhileACommitIsInProgress) {
  TempDir dir;
  auto file = open_file_backend(dir.path());
  ProbeBackend probe(*file);
  std::promise<void> open_gate;
  probe.gate = open_gate.get_future().share();
  event::Loop loop;
  Committer committer(loop, probe);
  bool timer_ran = false, done = false, done_ok = false;
  committer.commit(new_message(probe, 0), [&](bool ok, int) {
    done = true;
    done_ok = ok;
    loop.stop();
  });
  loop.add_timer(20ms, [&] {
    timer_ran = true;
    EXPECT_FALSE(done);
    EXPECT_EQ(committer.pending(), 1u);
    open_gate.set_value();
  });
  ASSERT_TRUE(run_with_timeout(loop));
  EXPECT_TRUE(timer_ran);
  EXPECT_TRUE(done_ok);
  EXPECT_FALSE(probe.gate_timed_out.load());
}

TEST(QueueCommitter, DiskErrorReportsNotOk) {
  TempDir dir;
  auto file = open_file_backend(dir.path());
  ProbeBackend probe(*file);
  event::Loop loop;
  Committer committer(loop, probe);
  std::filesystem::remove_all(dir.sub("msg"));  // renames into msg/ fail
  constexpr int kMessages = 10;
  int reported = 0, ok_count = 0;
  for (int i = 0; i < kMessages; ++i) {
    committer.commit(new_message(probe, i), [&](bool ok, int) {
      ok_count += ok ? 1 : 0;
      if (++reported == kMessages) loop.stop();
    });
  }
  ASSERT_TRUE(run_with_timeout(loop));
  EXPECT_EQ(ok_count, 0);
  EXPECT_EQ(probe.aborted.load(), kMessages);
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
}

TEST(QueueCommitter, ThrowingBackendReportsNotOk) {
  TempDir dir;
  auto file = open_file_backend(dir.path());
  ProbeBackend probe(*file);
  probe.throw_in_commit = true;
  event::Loop loop;
  Committer committer(loop, probe);
  std::optional<bool> result;
  committer.commit(new_message(probe, 0), [&](bool ok, int) {
    result = ok;
    loop.stop();
  });
  ASSERT_TRUE(run_with_timeout(loop));
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result);
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
}

TEST(QueueCommitter, DestructionCompletesAndReportsPendingCommits) {
  TempDir dir;
  auto file = open_file_backend(dir.path());
  ProbeBackend probe(*file);
  probe.delay = 5ms;
  event::Loop loop;
  int ok_count = 0;
  {
    Committer committer(loop, probe);
    for (int i = 0; i < 20; ++i) {
      committer.commit(new_message(probe, i), [&](bool ok, int) { ok_count += ok ? 1 : 0; });
    }
    EXPECT_EQ(committer.pending(), 20u);
  }  // the loop never ran: the destructor reports
  EXPECT_EQ(ok_count, 20);
  EXPECT_EQ(probe.count(), 20u);
}

}  // namespace
}  // namespace estafette::queue
