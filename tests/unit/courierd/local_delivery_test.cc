// estafette-local's Maildir delivery: mailbox names, wire -> plain conversion, the delivered
// file's bytes, and per-recipient results for bad names and unreadable queue files.
#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "modules/local/maildir.h"
#include "tests/unit/courierd/test_files.h"

namespace estafette::local {
namespace {

using test::list_dir;
using test::slurp;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/estafette-local-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { [[maybe_unused]] int rc = ::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(LocalMaildir, MailboxNames) {
  EXPECT_EQ(mailbox_name("Alice@local.test"), "alice");
  EXPECT_EQ(mailbox_name("first.last@local.test"), "first.last");
  EXPECT_EQ(mailbox_name("\"John Doe\"@local.test"), "john doe");
  EXPECT_EQ(mailbox_name("user+tag@local.test"), "user+tag");
  EXPECT_EQ(mailbox_name("postmaster"), "postmaster");
  EXPECT_FALSE(mailbox_name("\"a/b\"@local.test"));
  EXPECT_FALSE(mailbox_name("\"../etc\"@local.test"));
  EXPECT_FALSE(mailbox_name(".hidden@local.test"));
  EXPECT_FALSE(mailbox_name("@local.test"));
  EXPECT_FALSE(mailbox_name("\"a\\\nb\"@local.test"));
}

TEST(LocalMaildir, WireToPlain) {
  EXPECT_EQ(wire_to_plain("a\r\n..b\r\n.c\r\n\r\nbare\rcr\r\n"), "a\n.b\nc\n\nbare\rcr\n");
  EXPECT_EQ(wire_to_plain(""), "");
}

TEST(LocalMaildir, DeliversIntoNewWithEnvelopeHeaders) {
  TempDir tmp;
  std::string queue_file = tmp.path() + "/queued";
  std::string prefix = "HEADER-RECORDS\n";
  std::string wire = "Subject: test\r\n\r\nline 1\r\n..leading dot\r\n";
  std::ofstream(queue_file, std::ios::binary) << prefix << wire << "TRAILER";

  MaildirDelivery maildir(tmp.path() + "/maildir", "host/with:odd");
  ipc::Deliver d;
  d.job_id = 7;
  d.queue_id = "Q1";
  d.path = queue_file;
  d.body_offset = prefix.size();
  d.body_size = wire.size();
  d.sender = "sender@origin.test";
  d.destination = "local";
  d.recipients = {"Alice@local.test", "\"a/b\"@local.test", "bob@local.test"};
  auto r = maildir.deliver(d);
  EXPECT_EQ(r.job_id, 7u);
  EXPECT_EQ(r.remote, "maildir");
  EXPECT_FALSE(r.host_failed);
  ASSERT_EQ(r.results.size(), 3u);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::Delivered);
  EXPECT_EQ(r.results[1].status, ipc::RcptStatus::PermFail);
  EXPECT_EQ(r.results[1].reply.rfind("550 5.1.1 ", 0), 0u);
  EXPECT_EQ(r.results[2].status, ipc::RcptStatus::Delivered);

  auto files = list_dir(tmp.path() + "/maildir/alice/new");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_NE(files[0].find(".host\\057with\\072odd"), std::string::npos) << files[0];
  EXPECT_TRUE(list_dir(tmp.path() + "/maildir/alice/tmp").empty());
  EXPECT_TRUE(list_dir(tmp.path() + "/maildir/alice/cur").empty());
  EXPECT_EQ(slurp(tmp.path() + "/maildir/alice/new/" + files[0]),
            "Return-Path: <sender@origin.test>\nDelivered-To: Alice@local.test\n"
            "Subject: test\n\nline 1\n.leading dot\n");
  auto bob = list_dir(tmp.path() + "/maildir/bob/new");
  ASSERT_EQ(bob.size(), 1u);
  EXPECT_NE(bob[0], files[0]);
}

TEST(LocalMaildir, NullSenderAndUnreadableQueueFile) {
  TempDir tmp;
  MaildirDelivery maildir(tmp.path() + "/maildir", "h");
  ipc::Deliver d;
  d.path = tmp.path() + "/missing";
  d.body_size = 10;
  d.recipients = {"a@local.test", "b@local.test"};
  auto r = maildir.deliver(d);
  ASSERT_EQ(r.results.size(), 2u);
  for (auto& one : r.results) {
    EXPECT_EQ(one.status, ipc::RcptStatus::TempFail);
    EXPECT_EQ(one.reply.rfind("451 4.3.0 ", 0), 0u) << one.reply;
  }
  // A queue file shorter than the recorded body is a temporary failure too.
  std::ofstream(tmp.path() + "/short") << "abc";
  d.path = tmp.path() + "/short";
  r = maildir.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::TempFail);
  d.body_size = 3;
  d.sender = "";
  r = maildir.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::Delivered);
  auto files = list_dir(tmp.path() + "/maildir/a/new");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(slurp(tmp.path() + "/maildir/a/new/" + files[0]),
            "Return-Path: <>\nDelivered-To: a@local.test\nabc");
}

TEST(LocalMaildir, UnusableRootIsATemporaryFailure) {
  TempDir tmp;
  std::ofstream(tmp.path() + "/q") << "x\r\n";
  MaildirDelivery maildir(tmp.path() + "/q/not-a-dir", "h");
  ipc::Deliver d;
  d.path = tmp.path() + "/q";
  d.body_size = 3;
  d.recipients = {"a@local.test"};
  auto r = maildir.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::TempFail);
}

}  // namespace
}  // namespace estafette::local
