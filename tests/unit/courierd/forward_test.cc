// estafette-local's ~/.forward: the parser (table), the file safety checks (on real files),
// loop detection and how the entries' results make the recipient's.
#include "modules/local/forward.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace estafette::local {
namespace {

using Kind = ForwardEntry::Kind;

struct ParseCase {
  std::string text;
  std::vector<ForwardEntry> entries;
  std::string error;  // expected error ("" = none)
};

class ForwardParse : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ForwardParse, Entries) {
  const auto& c = GetParam();
  auto is_local = [](std::string_view d) { return d == "local.test" || d == "other.local"; };
  auto list = parse_forward(c.text, "/home/alice/.forward", "alice", "local.test", is_local);
  EXPECT_EQ(list.error, c.error) << c.text;
  EXPECT_EQ(list.entries, c.entries) << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ForwardParse,
    ::testing::Values(
        ParseCase{"", {}, ""}, ParseCase{"# only a comment\n\n   \n", {}, ""},
        ParseCase{"\\alice\n", {{Kind::Mailbox, ""}}, ""},
        ParseCase{"alice", {{Kind::Mailbox, ""}}, ""},
        ParseCase{"ALICE@Other.Local", {{Kind::Mailbox, ""}}, ""},
        ParseCase{"alice@remote.test", {{Kind::Address, "alice@remote.test"}}, ""},
        ParseCase{"bob", {{Kind::Address, "bob@local.test"}}, ""},
        ParseCase{"\\bob", {{Kind::Address, "bob@local.test"}}, ""},
        ParseCase{"<Bob@Example.ORG>", {{Kind::Address, "bob@example.org"}}, ""},
        ParseCase{"\\alice, \"|/usr/bin/procmail -t, -a x\"\n# note\nbob@example.org,\ncarol",
                  {{Kind::Mailbox, ""},
                   {Kind::Program, "/usr/bin/procmail -t, -a x"},
                   {Kind::Address, "bob@example.org"},
                   {Kind::Address, "carol@local.test"}},
                  ""},
        ParseCase{"|  /bin/cat > x  ", {{Kind::Program, "/bin/cat > x"}}, ""},
        ParseCase{"\\alice, alice\nbob, bob@local.test",
                  {{Kind::Mailbox, ""}, {Kind::Address, "bob@local.test"}},
                  ""},
        ParseCase{"bob\n\"|cat", {}, "/home/alice/.forward:2: unterminated quote"},
        ParseCase{"|", {}, "/home/alice/.forward:1: empty program after '|'"},
        ParseCase{
            "ok\n:include:/etc/list", {}, "/home/alice/.forward:2: :include: is not allowed here"},
        // The line number only: the text may be a file the user must not see (issue 13).
        ParseCase{"bad address", {}, "/home/alice/.forward:1: bad address"},
        ParseCase{"x@", {}, "/home/alice/.forward:1: bad address"},
        ParseCase{"root:$6$secret:19000:0:99999:7:::", {}, "/home/alice/.forward:1: bad address"},
        ParseCase{"<>", {}, "/home/alice/.forward:1: empty address"}));

struct StatCase {
  mode_t mode;
  uid_t owner;
  off_t size;
  std::string problem;
  nlink_t links = 1;
};

class ForwardStat : public ::testing::TestWithParam<StatCase> {};

TEST_P(ForwardStat, Problem) {
  const auto& c = GetParam();
  struct stat st {};
  st.st_mode = c.mode;
  st.st_uid = c.owner;
  st.st_size = c.size;
  st.st_nlink = c.links;
  EXPECT_EQ(forward_file_problem(st, 1000), c.problem);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ForwardStat,
    ::testing::Values(
        StatCase{S_IFREG | 0644, 1000, 10, ""}, StatCase{S_IFREG | 0600, 0, 10, ""},
        StatCase{S_IFREG | 0664, 1000, 10, "writable by group or others"},
        StatCase{S_IFREG | 0646, 1000, 10, "writable by group or others"},
        StatCase{S_IFREG | 0644, 1001, 10, "owned by uid 1001, not by the user or root"},
        StatCase{S_IFDIR | 0755, 1000, 10, "not a regular file"},
        StatCase{S_IFIFO | 0600, 1000, 0, "not a regular file"},
        StatCase{S_IFREG | 0644, 1000, kMaxForwardSize + 1, "larger than 65536 bytes"},
        // `ln /etc/shadow ~/.forward` where fs.protected_hardlinks = 0.
        StatCase{S_IFREG | 0640, 0, 10, "has other hard links", 2}));

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/estafette-forward-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { [[maybe_unused]] int rc = ::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ForwardFile, ReadsSafeFilesAndIgnoresTheOthers) {
  TempDir dir;
  const uid_t me = ::geteuid();
  const std::string file = dir.path() + "/.forward";
  EXPECT_EQ(read_forward_file(file, me).state, ForwardFile::State::Absent);
  std::ofstream(file) << "\\alice, bob\n";
  ::chmod(file.c_str(), 0644);
  auto f = read_forward_file(file, me);
  EXPECT_EQ(f.state, ForwardFile::State::Read);
  EXPECT_EQ(f.text, "\\alice, bob\n");

  ::chmod(file.c_str(), 0664);
  f = read_forward_file(file, me);
  EXPECT_EQ(f.state, ForwardFile::State::Ignored);
  EXPECT_EQ(f.reason, "writable by group or others");
  ::chmod(file.c_str(), 0644);

  // A symlink to a perfectly good file is still refused: O_NOFOLLOW.
  const std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
  f = read_forward_file(link, me);
  EXPECT_EQ(f.state, ForwardFile::State::Ignored);
  EXPECT_EQ(f.reason, "a symbolic link");

  // A FIFO does not block the open.
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  f = read_forward_file(fifo, me);
  EXPECT_EQ(f.state, ForwardFile::State::Ignored);
  EXPECT_EQ(f.reason, "not a regular file");

  // Owned by someone else (only root can make such a file).
  if (me == 0) {
    ASSERT_EQ(::chown(file.c_str(), 4242, 4242), 0);
    f = read_forward_file(file, 1000);
    EXPECT_EQ(f.state, ForwardFile::State::Ignored);
    EXPECT_EQ(f.reason, "owned by uid 4242, not by the user or root");
    EXPECT_EQ(read_forward_file(file, 4242).state, ForwardFile::State::Read);
  }
}

TEST(ForwardLoop, ReceivedCountAndDeliveredTo) {
  const std::string rcpt = "alice@local.test";
  EXPECT_EQ(forward_loop("Subject: x\n\nbody\n", rcpt), "");
  EXPECT_EQ(forward_loop("Delivered-To: bob@local.test\nSubject: x\n\nbody\n", rcpt), "");
  EXPECT_EQ(forward_loop("delivered-to:   Alice@Local.Test\nSubject: x\n\nbody\n", rcpt),
            "already delivered to alice@local.test (Delivered-To:)");
  // Only the header counts: the same line in the body is someone's quoted mail.
  EXPECT_EQ(forward_loop("Subject: x\n\nDelivered-To: alice@local.test\n", rcpt), "");
  std::string many;
  for (std::size_t i = 0; i < kMaxReceived; ++i) many += "Received: from a\n\tby b\n";
  EXPECT_EQ(forward_loop(many + "\nbody\n", rcpt), "");
  EXPECT_EQ(forward_loop("Received: from z\n" + many + "\nbody\n", rcpt),
            "more than 50 Received: header lines");
}

TEST(ForwardResults, PermanentThenTemporaryThenDelivered) {
  using S = ipc::RcptStatus;
  const ipc::RcptResult ok{S::Delivered, "250 2.0.0 delivered to maildir x"};
  const ipc::RcptResult temp{S::TempFail, "451 4.3.0 program timed out"};
  const ipc::RcptResult perm{S::PermFail, "550 5.3.0 program exited 1"};
  auto all_ok = combine_results("a@l.test", {ok, ok});
  EXPECT_EQ(all_ok.status, S::Delivered);
  EXPECT_EQ(all_ok.reply,
            "250 2.0.0 <a@l.test>: delivered through .forward; 2.0.0 delivered to maildir x; "
            "2.0.0 delivered to maildir x");
  EXPECT_EQ(combine_results("a@l.test", {ok, temp, ok}).reply, temp.reply);
  EXPECT_EQ(combine_results("a@l.test", {temp, perm, ok}).reply, perm.reply);
  EXPECT_EQ(combine_results("a@l.test", {perm, temp}).status, S::PermFail);
}

}  // namespace
}  // namespace estafette::local
