// open_backend()'s verify_bodies (the queue_verify_bodies setting) in both backends: a message
// whose body was damaged on disk (its record structure intact) is loaded and scanned as it now
// reads without it, and set aside in corrupt/ with it, while the other messages are still found.
#include <gtest/gtest.h>

#include <string>

#include "lib/queue/backend.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

using testing::list_names;
using testing::read_file;
using testing::scan_all;
using testing::stored_body;
using testing::TempDir;
using testing::test_envelope;
using testing::write_file;

class QueueVerifyBodies : public ::testing::TestWithParam<const char*> {
 protected:
  std::unique_ptr<Backend> open(bool verify) {
    return open_backend(GetParam(), dir_.path(), {.verify_bodies = verify});
  }
  // Queues a message, then flips one byte of its body on disk.
  QueueId add_damaged(Backend& backend) {
    QueueId id;
    EXPECT_TRUE(write_message(backend, test_envelope(1), "Subject: x\r\n\r\nhello\r\n", &id));
    auto stored = backend.load(id);
    EXPECT_TRUE(stored);
    std::string text = read_file(stored->path);
    std::size_t at = text.find("hello", stored->body_offset);
    EXPECT_LT(at, stored->body_offset + stored->body_size);
    text[at] = 'j';
    write_file(stored->path, text);
    return id;
  }
  QueueId add_good(Backend& backend) {
    QueueId id;
    EXPECT_TRUE(write_message(backend, test_envelope(1), "Subject: y\r\n\r\nfine\r\n", &id));
    return id;
  }
  TempDir dir_;
};

TEST_P(QueueVerifyBodies, OffDeliversTheDamagedBodyAsItReads) {
  QueueId damaged, good;
  {
    auto writer = open(false);
    damaged = add_damaged(*writer);
    good = add_good(*writer);
  }
  auto backend = open(false);
  EXPECT_EQ(scan_all(*backend).size(), 2u);
  auto m = backend->load(damaged);
  ASSERT_TRUE(m);
  EXPECT_EQ(stored_body(*m), "Subject: x\r\n\r\njello\r\n");
  EXPECT_TRUE(list_names(dir_.sub("corrupt")).empty());
}

TEST_P(QueueVerifyBodies, OnSetsTheDamagedMessageAsideAndKeepsTheOthers) {
  QueueId damaged, good;
  {
    auto writer = open(false);
    damaged = add_damaged(*writer);
    good = add_good(*writer);
  }
  auto backend = open(true);
  auto all = scan_all(*backend);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].envelope.id, good);
  EXPECT_FALSE(backend->load(damaged));
  ASSERT_TRUE(backend->load(good));
  EXPECT_EQ(list_names(dir_.sub("corrupt")).size(), 1u);
}

// courierd's path: esmtpd (the writer) still holds its segment when courierd loads the new
// messages by id. A complete record whose body fails its crc is set aside at once; it must not
// hold up the messages behind it until the writer lets go of the segment.
TEST_P(QueueVerifyBodies, OnWhileTheWriterIsStillWriting) {
  auto writer = open(false);
  auto reader = open(true);
  QueueId damaged = add_damaged(*writer);
  QueueId good = add_good(*writer);
  EXPECT_FALSE(reader->load(damaged));
  auto m = reader->load(good);
  ASSERT_TRUE(m);
  EXPECT_EQ(stored_body(*m), "Subject: y\r\n\r\nfine\r\n");
  EXPECT_EQ(list_names(dir_.sub("corrupt")).size(), 1u);
  EXPECT_EQ(reader->count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Queue, QueueVerifyBodies, ::testing::Values("segment", "file"));

}  // namespace
}  // namespace estafette::queue
