// auth::DovecotBackend against a real Dovecot (Debian dovecot-core, started by the test on a
// unix socket in a temp dir with a passwd-file passdb), and against hostile fake servers on a
// real unix socket: one that never answers, one that sends an endless line, one without PLAIN.
#include "lib/auth/dovecot_backend.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "lib/auth/passwd_file.h"
#include "lib/base/net.h"
#include "tests/unit/auth/verify_util.h"
#include "tests/unit/queue/queue_test_util.h"

extern char** environ;

namespace estafette::auth {
namespace {

using namespace std::chrono_literals;
using testing::check;
using testing::creds;

constexpr const char* kDovecot = "/usr/sbin/dovecot";

using TempDir = queue::testing::TempDir;

class RealDovecot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kDovecot, X_OK) != 0) GTEST_SKIP() << "dovecot-core is not installed";
    if (::geteuid() != 0) GTEST_SKIP() << "dovecot needs root to start its services";
    ::chmod(dir_.path().c_str(), 0755);  // Dovecot's auth process reads the users file
    std::ofstream(dir_.path() + "/users") << "alice:{CRYPT}" << hash_password("secret")
                                          << "\nbob:{CRYPT}" << hash_password("pw") << "\n";
    socket_ = dir_.path() + "/auth-client";
    std::ofstream(dir_.path() + "/dovecot.conf")
        << "base_dir = " << dir_.path() << "/run\nstate_dir = " << dir_.path()
        << "/state\nlog_path = " << dir_.path() << "/dovecot.log\nprotocols =\nssl = no\n"
        << "disable_plaintext_auth = no\nauth_mechanisms = plain login\n"
        << "auth_failure_delay = 0\ndefault_internal_user = dovecot\n"
        << "default_login_user = dovenull\n"
        << "passdb {\n  driver = passwd-file\n  args = username_format=%u " << dir_.path()
        << "/users\n}\nuserdb {\n  driver = static\n  args = uid=nobody gid=nogroup "
        << "home=/nonexistent\n}\nservice auth {\n  unix_listener " << socket_
        << " {\n    mode = 0666\n  }\n}\n";
    start();
  }
  void TearDown() override { stop(); }

  void start() {
    std::string conf = dir_.path() + "/dovecot.conf";
    const char* argv[] = {kDovecot, "-F", "-c", conf.c_str(), nullptr};
    ASSERT_EQ(::posix_spawn(&pid_, kDovecot, nullptr, nullptr, const_cast<char**>(argv), environ),
              0);
    for (int i = 0; i < 500; ++i) {
      if (base::connect_unix(socket_)) return;
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "dovecot did not listen on " << socket_;
  }
  void stop() {
    if (pid_ <= 0) return;
    // Dovecot and every process it started at once, as a crash would: its auth process must
    // not go on serving the connections it has.
    std::vector<pid_t> all{pid_};
    for (std::size_t i = 0; i < all.size(); ++i) {
      std::ifstream kids("/proc/" + std::to_string(all[i]) + "/task/" + std::to_string(all[i]) +
                         "/children");
      for (pid_t kid; kids >> kid;) all.push_back(kid);
    }
    for (pid_t p : all) ::kill(p, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    ::unlink(socket_.c_str());
  }

  TempDir dir_;
  std::string socket_;
  pid_t pid_ = 0;
  event::Loop loop_;
};

TEST_F(RealDovecot, GoodBadAndUnknown) {
  DovecotBackend backend(loop_, {.socket_path = socket_});
  auto ok = check(loop_, backend, creds("alice", "secret")).answer;
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->verdict, Verdict::Accepted);
  EXPECT_EQ(ok->user, "alice");
  auto bad = check(loop_, backend, creds("alice", "wrong")).answer;
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->verdict, Verdict::Refused);
  EXPECT_EQ(bad->user, "");
  auto unknown = check(loop_, backend, creds("mallory", "secret")).answer;
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->verdict, Verdict::Refused);
}

TEST_F(RealDovecot, RequestsBeforeTheHandshakeEndsAreAnswered) {
  DovecotBackend backend(loop_, {.socket_path = socket_});
  std::vector<Verdict> verdicts;
  auto record = [&](Verdict v, const std::string&) {
    verdicts.push_back(v);
    if (verdicts.size() == 3) loop_.stop();
  };
  backend.verify(creds("alice", "secret"), {}, record);
  backend.verify(creds("bob", "pw"), {}, record);
  backend.verify(creds("bob", "nope"), {}, record);
  loop_.add_timer(10s, [&] { loop_.stop(); });
  loop_.run();
  ASSERT_EQ(verdicts.size(), 3u);
  EXPECT_EQ(std::count(verdicts.begin(), verdicts.end(), Verdict::Accepted), 2);
  EXPECT_EQ(std::count(verdicts.begin(), verdicts.end(), Verdict::Refused), 1);
}

// Dovecot down: 451 (Unavailable), and once it is back the next check reconnects.
TEST_F(RealDovecot, DownThenBackAgain) {
  DovecotBackend backend(loop_, {.socket_path = socket_});
  ASSERT_EQ(check(loop_, backend, creds("alice", "secret")).answer->verdict, Verdict::Accepted);
  stop();
  auto down = check(loop_, backend, creds("alice", "secret")).answer;
  ASSERT_TRUE(down);
  EXPECT_EQ(down->verdict, Verdict::Unavailable);
  auto still = check(loop_, backend, creds("alice", "secret")).answer;
  ASSERT_TRUE(still);
  EXPECT_EQ(still->verdict, Verdict::Unavailable);
  start();
  auto back = check(loop_, backend, creds("alice", "secret")).answer;
  ASSERT_TRUE(back);
  EXPECT_EQ(back->verdict, Verdict::Accepted);
}

// A fake auth server on a real unix socket that answers the handshake with `handshake`, then
// `after` to each request line (or nothing).
class FakeServer {
 public:
  FakeServer(std::string path, std::string handshake, std::string after) : path_(std::move(path)) {
    listener_ = base::listen_unix_exclusive(path_, 0600, 8);
    thread_ = std::thread([this, handshake = std::move(handshake), after = std::move(after)] {
      // The listener is non-blocking: accept() right away would find no client yet when this
      // thread runs first, and the server would be gone (the backend then waited for a
      // handshake until the test's limit; seen under load).
      pollfd ready{listener_.get(), POLLIN, 0};
      while (!stop_ && ::poll(&ready, 1, 50) == 0) {
      }
      if (stop_) return;
      int c = ::accept(listener_.get(), nullptr, nullptr);
      if (c < 0) return;
      base::UniqueFd conn(c);
      (void)!::write(c, handshake.data(), handshake.size());
      char buf[4096];
      while (!stop_) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        if (!after.empty() && std::string_view(buf, n).find("AUTH\t") != std::string_view::npos)
          (void)!::write(c, after.data(), after.size());
      }
    });
  }
  ~FakeServer() {
    stop_ = true;
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }

 private:
  std::string path_;
  base::UniqueFd listener_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

const std::string kHandshake =
    "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\tx\nDONE\n";

TEST(DovecotBackendHostile, ServerThatNeverAnswersTimesOut) {
  TempDir dir;
  event::Loop loop;
  FakeServer server(dir.path() + "/s", kHandshake, "");
  DovecotBackend backend(loop, {.socket_path = dir.path() + "/s", .timeout = 300ms});
  auto start = event::Clock::now();
  auto a = check(loop, backend, creds("alice", "secret"), 5s).answer;
  ASSERT_TRUE(a);
  EXPECT_EQ(a->verdict, Verdict::Unavailable);
  EXPECT_LT(event::Clock::now() - start, 3s);
}

TEST(DovecotBackendHostile, EndlessLineIsCutOff) {
  TempDir dir;
  event::Loop loop;
  FakeServer server(dir.path() + "/s", kHandshake + "OK\t1\tuser=" + std::string(100000, 'a'), "");
  // The backend's own timeout is far: an answer in time can only be the cut-off (a loaded
  // machine may still take seconds to move 100 KB).
  DovecotBackend backend(loop, {.socket_path = dir.path() + "/s", .timeout = 60s});
  auto a = check(loop, backend, creds("alice", "secret"), 30s).answer;
  ASSERT_TRUE(a);
  EXPECT_EQ(a->verdict, Verdict::Unavailable);
}

TEST(DovecotBackendHostile, NoPlainOrWrongVersionOrTemporaryFailure) {
  TempDir dir;
  event::Loop loop;
  {
    FakeServer server(dir.path() + "/a", "VERSION\t1\t2\nMECH\tCRAM-MD5\nDONE\n", "OK\t1\n");
    DovecotBackend backend(loop, {.socket_path = dir.path() + "/a"});
    EXPECT_EQ(check(loop, backend, creds("a", "b")).answer->verdict, Verdict::Unavailable);
  }
  {
    FakeServer server(dir.path() + "/b", "VERSION\t2\t0\nMECH\tPLAIN\nDONE\n", "OK\t1\n");
    DovecotBackend backend(loop, {.socket_path = dir.path() + "/b"});
    EXPECT_EQ(check(loop, backend, creds("a", "b")).answer->verdict, Verdict::Unavailable);
  }
  {
    FakeServer server(dir.path() + "/c", kHandshake, "FAIL\t1\ttemp\n");
    DovecotBackend backend(loop, {.socket_path = dir.path() + "/c"});
    EXPECT_EQ(check(loop, backend, creds("a", "b")).answer->verdict, Verdict::Unavailable);
  }
  {
    FakeServer server(dir.path() + "/d", kHandshake, "OK\t1\tuser=alice\n");
    DovecotBackend backend(loop, {.socket_path = dir.path() + "/d"});
    auto a = check(loop, backend, creds("ALICE", "b")).answer;
    EXPECT_EQ(a->verdict, Verdict::Accepted);
    EXPECT_EQ(a->user, "alice");  // Dovecot's name for the user
  }
}

}  // namespace
}  // namespace estafette::auth
