// estafette-local's Maildir delivery: mailbox names, wire -> plain conversion, the delivered
// file's bytes, and per-recipient results for bad names and unreadable queue files.
#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lib/base/fd.h"
#include "modules/local/maildir.h"
#include "modules/local/program.h"
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

// A router for local.test with mailboxes under root, made on first delivery by default.
std::shared_ptr<const routing::Router> router_for(
    const std::string& root,
    config::Config::LocalMailboxes mode = config::Config::LocalMailboxes::Create,
    std::size_t max_size = 0) {
  config::Config c;
  c.local_domains = {"local.test"};
  c.maildir_root = root;
  c.local_mailboxes = mode;
  c.max_mailbox_message_size = max_size;
  return std::make_shared<routing::Router>(c);
}

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

  auto router = router_for(tmp.path() + "/maildir");
  MaildirDelivery maildir(router, "host/with:odd");
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
  EXPECT_EQ(r.remote, "local");
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
  auto router = router_for(tmp.path() + "/maildir");
  MaildirDelivery maildir(router, "h");
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

// The queue file's path comes from courierd (the unprivileged user's): a symlink there is not
// followed, and with `user` set a root-only file cannot be read through it (issue 13, item 9).
TEST(LocalMaildir, QueuePathIsNotFollowedNorReadAsRoot) {
  TempDir tmp;
  const std::string secret = tmp.path() + "/secret";
  std::ofstream(secret) << "SECRET\r\n";
  ::chmod(secret.c_str(), 0600);
  ASSERT_EQ(::symlink(secret.c_str(), (tmp.path() + "/seg-link").c_str()), 0);
  config::Config c;
  c.local_domains = {"local.test"};
  c.maildir_root = tmp.path() + "/maildir";
  c.local_mailboxes = config::Config::LocalMailboxes::Create;
  auto router = std::make_shared<const routing::Router>(c);
  MaildirDelivery maildir(router, "h");
  ipc::Deliver d;
  d.path = tmp.path() + "/seg-link";
  d.body_size = 8;
  d.recipients = {"a@local.test"};
  auto r = maildir.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::TempFail) << r.results[0].reply;
  if (::geteuid() != 0) GTEST_SKIP() << "reading as the user needs root";
  c.user = "nobody";
  ::chmod(tmp.path().c_str(), 0755);
  auto as_user = std::make_shared<const routing::Router>(c);
  MaildirDelivery nobody(as_user, "h");
  d.path = secret;  // no link at all: nobody may not read it, so neither may we
  r = nobody.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::TempFail) << r.results[0].reply;
  EXPECT_NE(r.results[0].reply.find("Permission denied"), std::string::npos) << r.results[0].reply;
  EXPECT_EQ(::geteuid(), 0u);     // root again after the read
  ::chmod(secret.c_str(), 0644);  // readable by nobody: delivered
  r = nobody.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::Delivered) << r.results[0].reply;
}

TEST(LocalMaildir, UnusableRootIsATemporaryFailure) {
  TempDir tmp;
  std::ofstream(tmp.path() + "/q") << "x\r\n";
  auto router = router_for(tmp.path() + "/q/not-a-dir");
  MaildirDelivery maildir(router, "h");
  ipc::Deliver d;
  d.path = tmp.path() + "/q";
  d.body_size = 3;
  d.recipients = {"a@local.test"};
  auto r = maildir.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::TempFail);
}

TEST(LocalMaildir, MissingMailboxBouncesAndIsNotCreated) {
  TempDir tmp;
  std::ofstream(tmp.path() + "/q") << "x\r\n";
  ASSERT_EQ(::mkdir((tmp.path() + "/maildir").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((tmp.path() + "/maildir/alice").c_str(), 0700), 0);  // no tmp/new/cur yet
  auto router = router_for(tmp.path() + "/maildir", config::Config::LocalMailboxes::Existing);
  MaildirDelivery maildir(router, "h");
  ipc::Deliver d;
  d.path = tmp.path() + "/q";
  d.body_size = 3;
  d.recipients = {"alice@local.test", "nobody-here@local.test"};
  auto r = maildir.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::Delivered) << r.results[0].reply;
  EXPECT_EQ(list_dir(tmp.path() + "/maildir/alice/new").size(), 1u);
  EXPECT_EQ(r.results[1].status, ipc::RcptStatus::PermFail);
  EXPECT_EQ(r.results[1].reply.rfind("550 5.1.1 ", 0), 0u) << r.results[1].reply;
  struct stat st {};
  EXPECT_NE(::stat((tmp.path() + "/maildir/nobody-here").c_str(), &st), 0);
}

TEST(LocalMaildir, MessageOverTheMailboxLimitBounces) {
  TempDir tmp;
  std::string body(2000, 'x');
  std::ofstream(tmp.path() + "/q") << body;
  auto router = router_for(tmp.path() + "/maildir", config::Config::LocalMailboxes::Create, 1000);
  MaildirDelivery maildir(router, "h");
  ipc::Deliver d;
  d.path = tmp.path() + "/q";
  d.body_size = body.size();
  d.recipients = {"alice@local.test"};
  auto r = maildir.deliver(d);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::PermFail);
  EXPECT_EQ(r.results[0].reply.rfind("552 5.2.3 ", 0), 0u) << r.results[0].reply;
}

TEST(LocalProgram, ExitStatusesMapLikeSendmail) {
  EXPECT_EQ(program_result(0, false, "").status, ipc::RcptStatus::Delivered);
  auto temp = program_result(75 << 8, false, "try later\nmore");
  EXPECT_EQ(temp.status, ipc::RcptStatus::TempFail);
  EXPECT_EQ(temp.reply, "451 4.3.0 program exited 75 (EX_TEMPFAIL): try later");
  auto perm = program_result(67 << 8, false, "no such user\n");
  EXPECT_EQ(perm.status, ipc::RcptStatus::PermFail);
  EXPECT_EQ(perm.reply, "550 5.3.0 program exited 67: no such user");
  EXPECT_EQ(program_result(9, false, "").status, ipc::RcptStatus::PermFail);  // killed
  EXPECT_EQ(program_result(0, true, "").status, ipc::RcptStatus::TempFail);   // timed out
}

TEST(LocalProgram, RunsWithTheMessageOnStdinAndATimeout) {
  TempDir tmp;
  ::chmod(tmp.path().c_str(), 0777);  // the program may run as an unprivileged user
  ProgramRun run;
  run.uid = ::geteuid() == 0 ? 0 : ::geteuid();  // root: program_user (nobody)
  run.command = "cat > " + tmp.path() + "/out; echo done";
  run.sender = "s@x.test";
  run.recipient = "prog@local.test";
  auto r = run_program(run, "hello\n");
  EXPECT_EQ(r.status, ipc::RcptStatus::Delivered) << r.reply;
  EXPECT_EQ(slurp(tmp.path() + "/out"), "hello\n");
  struct stat st {};
  ASSERT_EQ(::stat((tmp.path() + "/out").c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u);

  run.command = "echo busy; exit 75";
  r = run_program(run, "x\n");
  EXPECT_EQ(r.status, ipc::RcptStatus::TempFail);
  EXPECT_EQ(r.reply, "451 4.3.0 program exited 75 (EX_TEMPFAIL): busy");

  // A child that keeps the output open is killed with the whole group at the timeout.
  run.command = "sleep 30 & sleep 30";
  run.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  r = run_program(run, "x\n");
  EXPECT_EQ(r.status, ipc::RcptStatus::TempFail);
  EXPECT_EQ(r.reply.rfind("451 4.3.0 program timed out", 0), 0u) << r.reply;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// estafette-local holds its link to courierd (and whatever else) without FD_CLOEXEC: the
// program must still get only stdin, stdout and stderr, or it could read other Deliver frames
// and forge results. `exec ls` lists its own fds: 0-2 and the directory it reads.
TEST(LocalProgram, GetsOnlyStdinStdoutAndStderr) {
  TempDir tmp;
  ::chmod(tmp.path().c_str(), 0777);  // the program may run as an unprivileged user
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);  // inheritable, like courierd's link
  base::UniqueFd ours(sv[0]), theirs(sv[1]);
  ProgramRun run;
  run.uid = ::geteuid() == 0 ? 0 : ::geteuid();
  run.command = "exec ls -l /proc/self/fd > " + tmp.path() + "/fds";
  auto r = run_program(run, "x\n");
  ASSERT_EQ(r.status, ipc::RcptStatus::Delivered) << r.reply;
  std::string listing = slurp(tmp.path() + "/fds");
  std::istringstream lines(listing);
  std::vector<int> open_fds;
  for (std::string line; std::getline(lines, line);) {
    auto arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;  // "total 0"
    auto name_start = line.rfind(' ', arrow - 1) + 1;
    int fd = std::stoi(line.substr(name_start, arrow - name_start));
    open_fds.push_back(fd);
    std::string target = line.substr(arrow + 4);
    EXPECT_EQ(target.find("socket:"), std::string::npos) << line;
    if (fd > 2) {
      EXPECT_EQ(target.rfind("/proc/", 0), 0u) << "leaked: " << line;  // ls's own
    }
  }
  std::sort(open_fds.begin(), open_fds.end());
  EXPECT_EQ(open_fds, (std::vector<int>{0, 1, 2, 3})) << listing;
}

// The trust boundary: a Deliver (from courierd, built from a queue record esmtpd wrote; both
// unprivileged) only claims a program. estafette-local runs what its own read of the aliases
// names for that alias, as the user that read gives, and refuses anything else.
TEST(LocalProgram, RunsOnlyWhatItsOwnAliasesName) {
  TempDir tmp;
  ::chmod(tmp.path().c_str(), 0777);  // the programs run as an unprivileged user
  const std::string t = tmp.path();
  std::string queue_file = t + "/queued";
  const std::string wire = "Subject: x\r\n\r\nbody\r\n";
  std::ofstream(queue_file, std::ios::binary) << wire;
  std::ofstream(t + "/aliases") << "prog: \"|touch " << t << "/ran\", \"|touch " << t
                                << "/ran-legacy\"\n";
  config::Config c;
  c.local_domains = {"local.test"};
  c.maildir_root = t + "/maildir";
  c.aliases = {t + "/aliases", "test"};
  c.allow_program_delivery = true;
  c.program_timeout = std::chrono::seconds(10);
  std::shared_ptr<const routing::Router> router = routing::Router::load(c);
  MaildirDelivery maildir(router, "host");
  ipc::Deliver d;
  d.job_id = 1;
  d.queue_id = "Q1";
  d.path = queue_file;
  d.body_size = wire.size();
  d.sender = "s@origin.test";
  d.destination = "local";
  d.recipients = {"prog@local.test", "prog@local.test", "alice@local.test", "prog@local.test",
                  "prog@local.test"};
  d.programs = {"touch " + t + "/ran",
                "touch " + t + "/forged-other-command",  // the alias names other programs
                "touch " + t + "/forged-no-alias",       // alice is no alias at all
                "0 touch " + t + "/ran-legacy",          // an old record: its uid is ignored
                "0 touch " + t + "/forged-legacy"};
  auto r = maildir.deliver(d);
  ASSERT_EQ(r.results.size(), 5u);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::Delivered) << r.results[0].reply;
  EXPECT_EQ(r.results[3].status, ipc::RcptStatus::Delivered) << r.results[3].reply;
  for (std::size_t i : {1u, 2u, 4u}) {
    EXPECT_EQ(r.results[i].status, ipc::RcptStatus::PermFail) << i;
    EXPECT_EQ(r.results[i].reply.rfind("550 5.7.1 <", 0), 0u) << r.results[i].reply;
  }
  struct stat st {};
  EXPECT_EQ(::stat((t + "/ran").c_str(), &st), 0);
  ASSERT_EQ(::stat((t + "/ran-legacy").c_str(), &st), 0);
  // Root's alias file: program_user, whatever uid the record named.
  if (::geteuid() == 0) {
    EXPECT_NE(st.st_uid, 0u);
  }
  for (const char* forged : {"/forged-other-command", "/forged-no-alias", "/forged-legacy"})
    EXPECT_NE(::stat((t + forged).c_str(), &st), 0) << forged;

  // Programs off: nothing runs, whatever the record says.
  c.allow_program_delivery = false;
  router = routing::Router::load(c);
  d.recipients = {"prog@local.test"};
  d.programs = {"touch " + t + "/ran-while-off"};
  r = maildir.deliver(d);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].status, ipc::RcptStatus::PermFail);
  EXPECT_NE(::stat((t + "/ran-while-off").c_str(), &st), 0);
}

}  // namespace
}  // namespace estafette::local
