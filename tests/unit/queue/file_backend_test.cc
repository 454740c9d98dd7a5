#include "lib/queue/file_backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <system_error>

#include "lib/base/fd.h"
#include "lib/queue/queue_file.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

using testing::list_names;
using testing::read_file;
using testing::scan_all;
using testing::stored_body;
using testing::TempDir;
using testing::test_body;
using testing::test_envelope;
using testing::write_file;

bool commit_one(Backend& backend, IncomingMessage& message) {
  auto ok = backend.commit({&message});
  return ok.size() == 1 && ok[0];
}

// Commits one message and returns its id.
QueueId add_message(Backend& backend, const std::string& body, std::size_t recipients = 3) {
  QueueId id;
  EXPECT_TRUE(write_message(backend, test_envelope(recipients), body, &id));
  return id;
}

TEST(QueueFileBackend, OpenCreatesDirs) {
  TempDir dir;
  auto backend = open_file_backend(dir.sub("q"));
  EXPECT_EQ(list_names(dir.sub("q")), (std::vector<std::string>{"corrupt", "msg", "tmp"}));
  EXPECT_EQ(backend->count(), 0u);
  EXPECT_TRUE(scan_all(*backend).empty());
}

TEST(QueueFileBackend, OpenFailsOnUnusablePath) {
  TempDir dir;
  write_file(dir.sub("file"), "x");
  EXPECT_THROW(open_file_backend(dir.sub("file")), std::system_error);
  EXPECT_THROW(open_file_backend(dir.sub("file/q")), std::system_error);
}

struct RoundTripCase {
  std::size_t body_size;
  std::vector<std::size_t> chunks;  // chunk sizes, cycled
};

void PrintTo(const RoundTripCase& c, std::ostream* os) {
  *os << "size " << c.body_size << " chunks " << ::testing::PrintToString(c.chunks);
}

class QueueFileBackendRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(QueueFileBackendRoundTrip, ScanAndLoadGiveEnvelopeAndExactBody) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  std::string body =
      test_body(GetParam().body_size, static_cast<std::uint32_t>(GetParam().body_size));
  Envelope envelope = test_envelope(5);
  auto message = backend->create(envelope);
  envelope.id = message->envelope().id;
  EXPECT_TRUE(valid_queue_id(envelope.id));
  EXPECT_EQ(message->envelope(), envelope);
  EXPECT_EQ(list_names(dir.sub("tmp")), std::vector<std::string>{envelope.id});
  std::size_t at = 0, k = 0;
  while (at < body.size()) {
    std::size_t n = std::min(GetParam().chunks[k++ % GetParam().chunks.size()], body.size() - at);
    ASSERT_TRUE(message->append(std::string_view(body).substr(at, n)));
    at += n;
  }
  EXPECT_EQ(message->body_size(), body.size());
  ASSERT_TRUE(commit_one(*backend, *message));
  message.reset();
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
  EXPECT_EQ(list_names(dir.sub("msg")), std::vector<std::string>{envelope.id});

  auto all = scan_all(*backend);
  ASSERT_EQ(all.size(), 1u);
  const StoredMessage& m = all[0];
  EXPECT_EQ(m.envelope, envelope);
  EXPECT_EQ(m.path, dir.path() + "/msg/" + envelope.id);
  EXPECT_EQ(m.body_size, body.size());
  EXPECT_TRUE(stored_body(m) == body) << "body differs";
  EXPECT_EQ(m.done, std::vector<bool>(5, false));
  EXPECT_TRUE(read_file(m.path).starts_with(kMagicLine));

  auto loaded = backend->load(envelope.id);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->envelope, envelope);
  EXPECT_EQ(loaded->body_offset, m.body_offset);
  EXPECT_EQ(loaded->body_size, m.body_size);

  base::UniqueFd fd(::open(m.path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string error;
  EXPECT_TRUE(read_queue_file(fd.get(), Check::kBody, &error)) << error;
  struct stat st {};
  ASSERT_EQ(::stat(m.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(backend->count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Queue, QueueFileBackendRoundTrip,
    ::testing::Values(RoundTripCase{0, {1}}, RoundTripCase{1, {1}}, RoundTripCase{1000, {1, 7}},
                      RoundTripCase{65536 - 300, {4093}}, RoundTripCase{65536, {65536}},
                      RoundTripCase{65537, {3, 65534}}, RoundTripCase{200003, {1, 7, 4093}},
                      RoundTripCase{200003, {65537}}, RoundTripCase{(1 << 20) + 3, {1 << 20}},
                      RoundTripCase{(1 << 20) + 3, {13, 70000, 1}}));

TEST(QueueFileBackend, ManyMessagesBatchedAndUniqueIds) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  std::set<QueueId> ids;
  for (int i = 0; i < 20; ++i) ids.insert(add_message(*backend, "m" + std::to_string(i)));
  std::vector<std::unique_ptr<IncomingMessage>> batch;
  std::vector<IncomingMessage*> raw;
  for (int i = 0; i < 300; ++i) {
    batch.push_back(backend->create(test_envelope(1)));
    ASSERT_TRUE(batch.back()->append("batch " + std::to_string(i) + "\r\n"));
    raw.push_back(batch.back().get());
    ids.insert(batch.back()->envelope().id);
  }
  EXPECT_EQ(backend->commit(raw), std::vector<bool>(300, true));
  batch.clear();
  EXPECT_EQ(ids.size(), 320u);
  auto all = scan_all(*backend);
  ASSERT_EQ(all.size(), 320u);
  std::set<QueueId> scanned;
  for (std::size_t i = 0; i < all.size(); ++i) {
    scanned.insert(all[i].envelope.id);
    if (i > 0) {
      EXPECT_LT(all[i - 1].envelope.id, all[i].envelope.id);
    }
  }
  EXPECT_EQ(scanned, ids);
  EXPECT_EQ(backend->count(), 320u);
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
}

TEST(QueueFileBackend, ForkedWritersShareOneQueue) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  constexpr int kChildren = 4, kPerChild = 25;
  EXPECT_TRUE(testing::run_forked(kChildren, [&](int c) {
    // Each child opens the dir too: its stale-tmp cleanup must spare its siblings' files.
    auto mine = open_file_backend(dir.path());
    bool ok = true;
    for (int i = 0; i < kPerChild; ++i) {
      ok = write_message(*mine, test_envelope(1), "child " + std::to_string(c)) && ok;
    }
    return ok;
  }));
  std::set<QueueId> ids;
  for (auto& m : scan_all(*backend)) ids.insert(m.envelope.id);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kChildren * kPerChild));
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
}

TEST(QueueFileBackend, TornFileAtEveryLengthIsMovedAsideNotDelivered) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  QueueId id = add_message(*backend, test_body(300));
  std::string msg_path = dir.sub("msg/" + id), corrupt_path = dir.sub("corrupt/" + id);
  std::string full = read_file(msg_path);
  for (std::size_t len = 0; len < full.size(); ++len) {
    write_file(msg_path, full.substr(0, len));
    EXPECT_TRUE(scan_all(*backend).empty()) << "length " << len;
    EXPECT_FALSE(std::filesystem::exists(msg_path)) << "length " << len;
    EXPECT_EQ(read_file(corrupt_path), full.substr(0, len)) << "length " << len;
    std::filesystem::remove(corrupt_path);  // (replacing it makes ext4 flush: slow)
  }
  // The same bytes, complete, are delivered: the checks above can fail.
  write_file(msg_path, full);
  EXPECT_EQ(scan_all(*backend).size(), 1u);
}

TEST(QueueFileBackend, CorruptFilesAreMovedAsideWithTheirState) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  QueueId good = add_message(*backend, "good\r\n");
  QueueId no_trailer = add_message(*backend, "a\r\n");
  QueueId garbage = add_message(*backend, "b\r\n");
  QueueId renamed = add_message(*backend, "c\r\n");
  ASSERT_TRUE(backend->mark_done(no_trailer, {0}));
  std::string text = read_file(dir.sub("msg/" + no_trailer));
  write_file(dir.sub("msg/" + no_trailer), text.substr(0, text.rfind("\nEND ")));
  write_file(dir.sub("msg/" + garbage), read_file(dir.sub("msg/" + garbage)) + "\n");
  // A valid file under another message's name is not that message.
  QueueId other = make_queue_id();
  std::filesystem::rename(dir.sub("msg/" + renamed), dir.sub("msg/" + other));

  EXPECT_FALSE(backend->load(no_trailer));
  auto all = scan_all(*backend);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].envelope.id, good);
  std::vector<std::string> moved{garbage, no_trailer, no_trailer + ".done", other};
  std::sort(moved.begin(), moved.end());
  EXPECT_EQ(list_names(dir.sub("corrupt")), moved);
  EXPECT_EQ(list_names(dir.sub("msg")), std::vector<std::string>{good});
}

TEST(QueueFileBackend, BodyCorruptionIsCaughtOnlyWithVerifyBody) {
  TempDir dir;
  QueueId id;
  {
    auto backend = open_file_backend(dir.path());
    id = add_message(*backend, "Subject: x\r\n\r\nhello\r\n");
  }
  std::string text = read_file(dir.sub("msg/" + id));
  text[text.find("hello")] = 'j';
  write_file(dir.sub("msg/" + id), text);
  EXPECT_EQ(scan_all(*open_file_backend(dir.path())).size(), 1u);
  FileBackendOptions verify;
  verify.verify_body_on_read = true;
  auto checking = open_file_backend(dir.path(), verify);
  EXPECT_FALSE(checking->load(id));
  EXPECT_EQ(list_names(dir.sub("corrupt")), std::vector<std::string>{id});
}

TEST(QueueFileBackend, StaleTmpFilesAreCleanedLiveOnesKept) {
  TempDir dir;
  auto first = open_file_backend(dir.path());
  auto live = first->create(test_envelope());
  ASSERT_TRUE(live->append("in flight\r\n"));
  write_file(dir.sub("tmp/STALE-1"), "left by a crashed writer");
  write_file(dir.sub("tmp/STALE-2"), "");
  auto second = open_file_backend(dir.path());  // e.g. another process starting up
  EXPECT_EQ(list_names(dir.sub("tmp")), std::vector<std::string>{live->envelope().id});
  EXPECT_TRUE(commit_one(*first, *live));
  EXPECT_EQ(second->count(), 1u);
}

TEST(QueueFileBackend, AbortAndDestroyRemoveTheTmpFile) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  auto a = backend->create(test_envelope());
  auto b = backend->create(test_envelope());
  ASSERT_TRUE(a->append(test_body(100000)));
  EXPECT_EQ(list_names(dir.sub("tmp")).size(), 2u);
  backend->abort(std::move(a));
  b.reset();
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
  EXPECT_EQ(backend->count(), 0u);
}

TEST(QueueFileBackend, InvalidEnvelopeThrowsAndLeavesNothing) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  Envelope e = test_envelope();
  e.recipients.push_back("x@y\r\nR injected@z");
  try {
    backend->create(e);
    FAIL() << "no exception";
  } catch (const std::system_error& err) {
    EXPECT_EQ(err.code(), std::errc::invalid_argument);
  }
  e = test_envelope();
  e.id = "../escape";
  EXPECT_THROW(backend->create(e), std::system_error);
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
}

TEST(QueueFileBackend, GivenIdIsKeptAndNeverReplacesACommittedMessage) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  Envelope e = test_envelope();
  e.id = "FIXED-ID-1";
  ASSERT_TRUE(write_message(*backend, e, "first\r\n"));
  auto again = backend->create(e);
  ASSERT_TRUE(again->append("second\r\n"));
  EXPECT_FALSE(commit_one(*backend, *again));
  backend->abort(std::move(again));
  auto loaded = backend->load("FIXED-ID-1");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(stored_body(*loaded), "first\r\n");
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
}

TEST(QueueFileBackend, MarkDoneIsAppliedByScanAndLoad) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  QueueId id = add_message(*backend, "x\r\n", 4);
  EXPECT_TRUE(backend->mark_done(id, {1}));
  EXPECT_TRUE(backend->mark_done(id, {3}));
  EXPECT_EQ(read_file(dir.sub("msg/" + id + ".done")), "1\n3\n");
  auto all = scan_all(*backend);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].done, (std::vector<bool>{false, true, false, true}));
  EXPECT_EQ(backend->load(id)->done, (std::vector<bool>{false, true, false, true}));
  EXPECT_FALSE(backend->mark_done(make_queue_id(), {0}));
  EXPECT_FALSE(backend->mark_done("../x", {0}));
}

TEST(QueueFileBackend, TornStateLogLineIsIgnoredAndRepaired) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  QueueId id = add_message(*backend, "x\r\n", 4);
  // A crash in the middle of appending "2\n", plus a line that is out of range.
  write_file(dir.sub("msg/" + id + ".done"), "1\n9\n2");
  EXPECT_EQ(backend->load(id)->done, (std::vector<bool>{false, true, false, false}));
  EXPECT_TRUE(backend->mark_done(id, {0, 3}));
  EXPECT_EQ(read_file(dir.sub("msg/" + id + ".done")), "1\n9\n0\n3\n");
  EXPECT_EQ(backend->load(id)->done, (std::vector<bool>{true, true, false, true}));
}

TEST(QueueFileBackend, RemoveDeletesMessageAndState) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  QueueId keep = add_message(*backend, "keep\r\n");
  QueueId id = add_message(*backend, "x\r\n");
  ASSERT_TRUE(backend->mark_done(id, {0, 1, 2}));
  EXPECT_EQ(backend->count(), 2u);
  EXPECT_TRUE(backend->remove(id));
  EXPECT_EQ(list_names(dir.sub("msg")), std::vector<std::string>{keep});
  EXPECT_EQ(backend->count(), 1u);
  EXPECT_FALSE(backend->load(id));
  EXPECT_FALSE(backend->remove(id));
  auto all = scan_all(*backend);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].envelope.id, keep);
}

TEST(QueueFileBackend, ScanRemovesStateLogWithoutMessage) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  QueueId id = add_message(*backend, "x\r\n");
  write_file(dir.sub("msg/ORPHAN-1.done"), "0\n");
  ASSERT_TRUE(backend->mark_done(id, {0}));
  EXPECT_EQ(scan_all(*backend).size(), 1u);
  EXPECT_EQ(list_names(dir.sub("msg")), (std::vector<std::string>{id, id + ".done"}));
}

TEST(QueueFileBackend, CommitFailsWhenTheQueueDirIsBroken) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  auto message = backend->create(test_envelope());
  ASSERT_TRUE(message->append("x\r\n"));
  std::filesystem::remove_all(dir.sub("msg"));
  EXPECT_FALSE(commit_one(*backend, *message));
  backend->abort(std::move(message));
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
  EXPECT_FALSE(write_message(*backend, test_envelope(), "y\r\n"));
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
}

// Write errors (as on a full disk) via RLIMIT_FSIZE: write() fails with EFBIG.
class FileSizeLimit final {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit limit = old_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  sighandler_t old_handler_;
};

TEST(QueueFileBackend, WriteErrorFailsAppendAndCommit) {
  TempDir dir;
  auto backend = open_file_backend(dir.path());
  auto big = backend->create(test_envelope());
  auto small = backend->create(test_envelope());
  {
    FileSizeLimit limit(256 * 1024);
    bool failed = false;
    std::string chunk = test_body(10000);
    for (int i = 0; i < 100 && !failed; ++i) failed = !big->append(chunk);
    EXPECT_TRUE(failed);
    EXPECT_FALSE(big->append("more"));  // stays failed
    // Buffered below the limit, but its trailer pushes it over at commit time.
    std::size_t header = encode_header(small->envelope()).text.size();
    ASSERT_TRUE(small->append(test_body(256 * 1024 - header - 10)));
    auto ok = backend->commit({big.get(), small.get()});
    EXPECT_EQ(ok, (std::vector<bool>{false, false}));
    // What esmtpd tells a full disk (452) from other failures (451) by.
    EXPECT_EQ(big->write_error(), EFBIG);
    EXPECT_EQ(small->write_error(), EFBIG);
  }
  backend->abort(std::move(big));
  backend->abort(std::move(small));
  EXPECT_TRUE(list_names(dir.sub("tmp")).empty());
  EXPECT_EQ(backend->count(), 0u);
}

TEST(QueueFileBackend, ForeignMessageIsNotCommitted) {
  TempDir dir;
  auto a = open_file_backend(dir.sub("a"));
  auto b = open_file_backend(dir.sub("b"));
  auto message = a->create(test_envelope());
  EXPECT_EQ(b->commit({message.get()}), std::vector<bool>{false});
  EXPECT_TRUE(commit_one(*a, *message));
}

}  // namespace
}  // namespace estafette::queue
