// RecipientLookups and esmtpd's RCPT on real sockets: a mailbox check that blocks (a slow NSS)
// delays only the session that waits for it. The Server runs on this thread's loop; the
// clients are threads with blocking sockets on 127.0.0.1.
#include "esmtpd/recipient_lookups.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "esmtpd/server.h"
#include "lib/base/fd.h"

namespace estafette::esmtpd {
namespace {

using namespace std::chrono_literals;
using Outcome = RecipientLookups::Outcome;

// A lookup that does not answer until the test says so.
class Gate final {
 public:
  void pass() {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  bool wait_entered(int n, std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return entered_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int entered_ = 0;
  bool open_ = false;
};

// Runs the loop until `done` holds (checked every 5 ms) or `limit` passes.
void run_until(event::Loop& loop, const std::function<bool()>& done,
               std::chrono::milliseconds limit = 10s) {
  auto until = event::Clock::now() + limit;
  std::function<void()> tick = [&] {
    if (done() || event::Clock::now() > until) {
      loop.stop();
      return;
    }
    loop.add_timer(5ms, tick);
  };
  loop.add_timer(0ms, tick);
  loop.run();
}

std::shared_ptr<const routing::Router> test_router() {
  config::Config c;
  c.local_domains = {"example.com"};
  return std::make_shared<routing::Router>(c);
}

TEST(RecipientLookups, AnswersOnTheLoopWhenTheLookupReturns) {
  event::Loop loop;
  Gate gate;
  RecipientLookups lookups(loop, {.threads = 1, .max_queued = 4, .timeout = 10s},
                           [&](const routing::Router&, const std::string& address) {
                             gate.pass();
                             return smtp::RecipientVerdict{true, "x " + address};
                           });
  std::vector<std::string> answers;
  auto loop_thread = std::this_thread::get_id();
  ASSERT_TRUE(lookups.submit(test_router(), "a@example.com",
                             [&](Outcome o, const smtp::RecipientVerdict& v) {
                               EXPECT_EQ(std::this_thread::get_id(), loop_thread);
                               EXPECT_EQ(o, Outcome::Answered);
                               answers.push_back(v.reply);
                             }));
  ASSERT_TRUE(gate.wait_entered(1));
  run_until(
      loop, [] { return false; }, 100ms);
  EXPECT_TRUE(answers.empty());  // not before the lookup returns
  gate.open();
  run_until(loop, [&] { return !answers.empty(); });
  EXPECT_EQ(answers, std::vector<std::string>{"x a@example.com"});
  EXPECT_EQ(lookups.pending(), 0u);
}

TEST(RecipientLookups, BoundedQueueAndTimeout) {
  event::Loop loop;
  Gate gate;
  std::atomic<int> started{0};
  RecipientLookups lookups(loop, {.threads = 1, .max_queued = 2, .timeout = 300ms},
                           [&](const routing::Router&, const std::string&) {
                             ++started;
                             gate.pass();
                             return smtp::RecipientVerdict{true, ""};
                           });
  std::vector<Outcome> outcomes;
  auto record = [&](Outcome o, const smtp::RecipientVerdict&) { outcomes.push_back(o); };
  ASSERT_TRUE(lookups.submit(test_router(), "a@example.com", record));
  ASSERT_TRUE(gate.wait_entered(1));  // the only thread is stuck in it
  EXPECT_TRUE(lookups.submit(test_router(), "b@example.com", record));
  EXPECT_TRUE(lookups.submit(test_router(), "c@example.com", record));
  EXPECT_FALSE(lookups.submit(test_router(), "d@example.com", record));  // 2 queued: full
  auto start = event::Clock::now();
  run_until(loop, [&] { return outcomes.size() == 3; });
  auto took = event::Clock::now() - start;
  EXPECT_EQ(outcomes, std::vector<Outcome>(3, Outcome::Failed));
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
  gate.open();  // the stuck lookup returns late: dropped; the timed-out ones never start
  run_until(
      loop, [] { return false; }, 200ms);
  EXPECT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(started.load(), 1);
  EXPECT_EQ(lookups.pending(), 0u);
}

// ---------------------------------------------------------------------------------------------
// The whole esmtpd Server with a lookup injected in place of the mailbox check.

class Client final {
 public:
  explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    timeval tv{20, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  bool connected() const { return connected_; }
  void send(const std::string& text) { ::send(fd_.get(), text.data(), text.size(), MSG_NOSIGNAL); }
  // The next whole reply's last line, without CRLF; "" on EOF or timeout.
  std::string reply() {
    for (;;) {
      for (auto eol = buf_.find("\r\n"); eol != std::string::npos; eol = buf_.find("\r\n")) {
        std::string line = buf_.substr(0, eol);
        buf_.erase(0, eol + 2);
        if (line.size() < 4 || line[3] != '-') return line;
      }
      char chunk[4096];
      ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  std::string code() { return reply().substr(0, 3); }

 private:
  base::UniqueFd fd_;
  bool connected_ = false;
  std::string buf_;
};

class EsmtpdRcptLookup : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/estafette-rcpt-lookup-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/run");
    std::filesystem::create_directories(dir_ + "/maildir");
    config_.hostname = "mx.test";
    config_.state_dir = dir_;
    config_.maildir_root = dir_ + "/maildir";
    config_.local_domains = {"example.com"};
    config_.local_mailboxes = config::Config::LocalMailboxes::Existing;
    config_.listen = {{"127.0.0.1", 0}};
    config_.sender_dns_check = false;  // no DNS here: remote.test need not resolve
    config_.rdns_check = false;
  }
  void TearDown() override {
    gate_.open();  // also when a test failed before it opened the gate
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Starts the Server on loop_ with `lookup`; returns its port.
  std::uint16_t start(RecipientLookups::Lookup lookup, RecipientLookups::Options options = {}) {
    auto listeners = bind_listeners(config_, 1);
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(listeners.at(0).get(), reinterpret_cast<sockaddr*>(&addr), &len);
    server_ = std::make_unique<Server>(loop_, config_, std::move(listeners), 1, -1,
                                       std::move(lookup), options);
    return ntohs(addr.sin_port);
  }

  std::string dir_;
  config::Config config_;
  // Lookups wait here. Declared before server_, so destroyed after it: a pool thread still in
  // pass() when a test ends (a lookup the server gave up on) must never find it gone, or the
  // pool's destructor would wait for that thread for ever.
  Gate gate_;
  event::Loop loop_;
  std::unique_ptr<Server> server_;
};

// The brief's real blocking lookup: slow@ sleeps 3 s in the lookup (an NSS that hangs), the
// others answer at once. A second client on its own socket runs a whole transaction while the
// first one's RCPT is stuck; with the lookup on the loop it would wait the 3 s too.
TEST_F(EsmtpdRcptLookup, ASlowLookupDoesNotStallOtherSessions) {
  auto port = start([](const routing::Router& router, const std::string& address) {
    if (address.starts_with("slow@")) std::this_thread::sleep_for(3s);
    return RecipientLookups::expand(router, address);
  });
  std::filesystem::create_directories(dir_ + "/maildir/slow");
  std::filesystem::create_directories(dir_ + "/maildir/fast");
  std::atomic<bool> a_done{false}, b_done{false};
  std::string a_rcpt, b_codes;
  event::Clock::duration b_took{}, a_took{};
  std::atomic<bool> a_waiting{false};
  std::thread a([&] {
    Client c(port);
    c.reply();
    c.send("EHLO a\r\n");
    c.reply();
    c.send("MAIL FROM:<a@remote.test>\r\n");
    c.reply();
    auto start = event::Clock::now();
    c.send("RCPT TO:<slow@example.com>\r\n");
    a_waiting = true;
    a_rcpt = c.reply();
    a_took = event::Clock::now() - start;
    c.send("QUIT\r\n");
    c.reply();
    a_done = true;
  });
  std::thread b([&] {
    while (!a_waiting) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(200ms);  // A's RCPT is in its lookup by now
    auto start = event::Clock::now();
    Client c(port);
    b_codes += c.code();
    for (const char* line : {"EHLO b\r\n", "MAIL FROM:<b@remote.test>\r\n",
                             "RCPT TO:<fast@example.com>\r\n", "DATA\r\n"}) {
      c.send(line);
      b_codes += " " + c.code();
    }
    c.send("Subject: b\r\n\r\nbody\r\n.\r\n");
    b_codes += " " + c.code();
    b_took = event::Clock::now() - start;
    c.send("QUIT\r\n");
    b_codes += " " + c.code();
    b_done = true;
  });
  run_until(
      loop_, [&] { return a_done && b_done; }, 20s);
  a.join();
  b.join();
  EXPECT_EQ(b_codes, "220 250 250 250 354 250 221");
  EXPECT_LT(b_took, 1500ms) << "the second session waited for the first one's lookup";
  EXPECT_EQ(a_rcpt, "250 2.1.5 Ok");
  EXPECT_GE(a_took, 2900ms);
}

// Pipelined commands after a waiting RCPT are answered in order once it is answered; another
// session meanwhile gets its replies; a lookup that never answers gives 451 4.4.3 in time.
TEST_F(EsmtpdRcptLookup, PipelinedCommandsWaitInOrderAndMissingMailboxesAreRefused) {
  Gate& gate = gate_;
  auto port = start([&](const routing::Router& router, const std::string& address) {
    if (address.starts_with("held@")) gate.pass();
    return RecipientLookups::expand(router, address);
  });
  std::filesystem::create_directories(dir_ + "/maildir/held");
  std::filesystem::create_directories(dir_ + "/maildir/alice");
  std::atomic<bool> done{false};
  std::vector<std::string> a_replies;
  std::string b_codes;
  std::thread clients([&] {
    Client a(port), b(port);
    a.reply();
    b.reply();
    a.send(
        "EHLO a\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<held@example.com>\r\n"
        "RCPT TO:<nobody@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
    a_replies.push_back(a.reply());  // EHLO
    a_replies.push_back(a.reply());  // MAIL
    EXPECT_TRUE(gate.wait_entered(1));
    for (const char* line : {"EHLO b\r\n", "MAIL FROM:<b@remote.test>\r\n",
                             "RCPT TO:<alice@example.com>\r\n", "RSET\r\n"}) {
      b.send(line);
      b_codes += b.code() + " ";
    }
    gate.open();
    for (int i = 0; i < 4; ++i) a_replies.push_back(a.reply());
    a.send(".\r\n");
    a_replies.push_back(a.code());
    done = true;
  });
  run_until(
      loop_, [&] { return done.load(); }, 20s);
  clients.join();
  EXPECT_EQ(b_codes, "250 250 250 250 ");
  ASSERT_EQ(a_replies.size(), 7u);
  EXPECT_EQ(a_replies[2], "250 2.1.5 Ok");
  EXPECT_EQ(a_replies[3], "550 5.1.1 <nobody@example.com>: no such mailbox");
  EXPECT_EQ(a_replies[4], "250 2.1.5 Ok");
  EXPECT_EQ(a_replies[5].substr(0, 3), "354");
  EXPECT_EQ(a_replies[6], "250");
}

// A stuck lookup: the RCPT behind it gets 451 4.4.3 after the timeout; with the one thread stuck
// and its queue full, the next RCPT gets 451 4.3.0 at once; the sessions go on.
TEST_F(EsmtpdRcptLookup, AStuckLookupTimesOutAndAFullQueueIsBusy) {
  Gate& gate = gate_;
  auto port = start(
      [&](const routing::Router& router, const std::string& address) {
        gate.pass();
        return RecipientLookups::expand(router, address);
      },
      {.threads = 1, .max_queued = 1, .timeout = 1s});
  std::atomic<bool> done{false};
  std::string a_rcpt, b_rcpt, c_rcpt, a_after;
  event::Clock::duration a_took{}, c_took{};
  std::thread clients([&] {
    Client a(port), b(port), c(port);
    for (Client* x : {&a, &b, &c}) {
      x->reply();
      x->send("EHLO x\r\nMAIL FROM:<x@remote.test>\r\n");
      x->reply();
      x->reply();
    }
    auto start = event::Clock::now();
    a.send("RCPT TO:<a@example.com>\r\nNOOP\r\n");
    EXPECT_TRUE(gate.wait_entered(1));  // the only thread is stuck in A's lookup
    b.send("RCPT TO:<b@example.com>\r\n");
    std::this_thread::sleep_for(100ms);  // B's request is queued: the queue is full
    auto c_start = event::Clock::now();
    c.send("RCPT TO:<c@example.com>\r\n");
    c_rcpt = c.reply();
    c_took = event::Clock::now() - c_start;
    a_rcpt = a.reply();
    a_took = event::Clock::now() - start;
    a_after = a.code();
    b_rcpt = b.reply();
    done = true;
  });
  run_until(
      loop_, [&] { return done.load(); }, 20s);
  clients.join();
  gate.open();
  EXPECT_EQ(c_rcpt, "451 4.3.0 <c@example.com>: Recipient lookups are busy, try again later");
  EXPECT_LT(c_took, 500ms);
  EXPECT_EQ(a_rcpt, "451 4.4.3 <a@example.com>: Temporary lookup failure, try again later");
  EXPECT_GE(a_took, 900ms);
  EXPECT_LT(a_took, 3s);
  EXPECT_EQ(a_after, "250");  // the NOOP pipelined after it
  EXPECT_EQ(b_rcpt, "451 4.4.3 <b@example.com>: Temporary lookup failure, try again later");
}

}  // namespace
}  // namespace estafette::esmtpd
