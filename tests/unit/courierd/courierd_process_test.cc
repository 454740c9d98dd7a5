// The real estafette-courierd with the real estafette-local, end to end: messages written to the
// queue with lib/queue and announced with NewMessage over courierd's socket end up in Maildirs
// byte for byte; a bad mailbox bounces into the sender's Maildir; a killed module is restarted;
// after kill -9 the queue is recovered (done recipients skipped, pending ones kept); SIGTERM
// exits 0. The programs are found in the build dir: this binary is BUILD/tests/unit/unit_tests.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/paths.h"
#include "lib/ipc/messages.h"
#include "lib/queue/queue.h"
#include "tests/unit/courierd/test_files.h"

namespace estafette::courierd {
namespace {

using namespace std::chrono_literals;

std::string build_dir() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  std::string dir(self, static_cast<std::size_t>(n));
  for (int i = 0; i < 3; ++i) dir.erase(dir.rfind('/'));  // unit_tests, unit, tests
  return dir;
}

using test::list_dir;
using test::slurp;

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// A log line that starts (after its prefix) with `start` and also holds `part`.
bool has_line(const std::string& text, const std::string& start, const std::string& part) {
  for (std::size_t at = text.find(start); at != std::string::npos; at = text.find(start, at + 1)) {
    std::size_t end = text.find('\n', at);
    if (text.substr(at, end == std::string::npos ? end : end - at).find(part) != std::string::npos)
      return true;
  }
  return false;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

// A minimal SMTP server on 127.0.0.1 in a thread: accepts everything and records each
// transaction (envelope and the wire-form data without the final ".\r\n").
class SmtpSink final {
 public:
  struct Mail {
    std::string mail_from;
    std::vector<std::string> rcpt_to;
    std::string data;
  };

  explicit SmtpSink(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ =
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 8) == 0;
    if (ok_) thread_ = std::thread([this] { run(); });
  }
  ~SmtpSink() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  bool ok() const { return ok_; }
  std::vector<Mail> mails() {
    std::lock_guard<std::mutex> lock(mutex_);
    return mails_;
  }

  // A free port now (nothing listens on it until a sink is made for it).
  static std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{0, 100000};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      serve(c);
      ::close(c);
    }
  }
  void send(int c, const std::string& s) {
    [[maybe_unused]] auto n = ::send(c, s.data(), s.size(), MSG_NOSIGNAL);
  }
  void serve(int c) {
    send(c, "220 sink.test ESMTP\r\n");
    std::string in;
    Mail mail;
    bool in_data = false;
    while (!stop_) {
      char buf[4096];
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n == 0) return;
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        return;
      }
      in.append(buf, static_cast<std::size_t>(n));
      for (;;) {
        if (in_data) {
          std::size_t end = in.rfind("\r\n.\r\n", 0) == 0 ? 0 : in.find("\r\n.\r\n");
          if (end == std::string::npos) break;
          mail.data += in.substr(0, end == 0 ? 0 : end + 2);
          in.erase(0, end == 0 ? 5 : end + 5);
          in_data = false;
          {
            std::lock_guard<std::mutex> lock(mutex_);
            mails_.push_back(mail);
          }
          mail = Mail{};
          send(c, "250 2.0.0 queued as SINK1\r\n");
          continue;
        }
        auto eol = in.find("\r\n");
        if (eol == std::string::npos) break;
        std::string line = in.substr(0, eol);
        in.erase(0, eol + 2);
        std::string verb = line.substr(0, 4);
        for (auto& ch : verb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (verb == "EHLO") {
          send(c, "250-sink.test\r\n250 8BITMIME\r\n");
        } else if (verb == "MAIL") {
          mail.mail_from = line.substr(line.find(':') + 1);
          send(c, "250 2.1.0 ok\r\n");
        } else if (verb == "RCPT") {
          mail.rcpt_to.push_back(line.substr(line.find(':') + 1));
          send(c, "250 2.1.5 ok\r\n");
        } else if (verb == "DATA") {
          in_data = true;
          send(c, "354 go ahead\r\n");
        } else if (verb == "QUIT") {
          send(c, "221 2.0.0 bye\r\n");
          return;
        } else {
          send(c, "250 ok\r\n");
        }
      }
    }
  }

  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Mail> mails_;
};

class CourierdProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    build_ = build_dir();
    for (const char* p : {"/estafette-courierd", "/estafette-local"}) {
      if (::access((build_ + p).c_str(), X_OK) != 0) GTEST_SKIP() << build_ << p << " is not built";
    }
    char tmpl[] = "/tmp/estafette-cd-XXXXXX";
    ASSERT_TRUE(::mkdtemp(tmpl));
    tmp_ = tmpl;
    later_port_ = SmtpSink::free_port();
    std::ofstream(tmp_ + "/routes") << "dead.test: 127.0.0.1,1\n"
                                    << "later.test: 127.0.0.1," << later_port_ << "\n";
    std::ofstream(tmp_ + "/estafette.conf")
        << "hostname = mx.estafette.test\n"
        << "state_dir = " << tmp_ << "/state\n"
        << "local_domains = local.test\n"
        << "local_mailboxes = create\n"
        << "esmtproutes = " << tmp_ << "/routes\n"
        << "retry_base = 200ms\nretry_max = 1s\nhost_backoff = 200ms\n"
        << "MAXDELS = 10\nMAXHOST = 2\nMAXRCPT = 10\n";
    ASSERT_TRUE(base::make_dirs(tmp_ + "/state/queue"));
    backend_ = queue::open_backend("segment", tmp_ + "/state/queue");
  }

  void TearDown() override {
    if (pid_ > 0) stop(SIGKILL);
    backend_.reset();
    if (!tmp_.empty() && !HasFailure() && !std::getenv("ESTAFETTE_KEEP_TEST_FILES")) {
      [[maybe_unused]] int rc = ::system(("rm -rf '" + tmp_ + "'").c_str());
    } else if (!tmp_.empty()) {
      std::fprintf(stderr, "courierd test files kept in %s\n", tmp_.c_str());
    }
  }

  void start() {
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::setenv("ESTAFETTE_LIBEXEC", build_.c_str(), 1);
      int err = ::open((tmp_ + "/stderr").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (err >= 0) {
        ::dup2(err, 1);
        ::dup2(err, 2);
      }
      std::string prog = build_ + "/estafette-courierd";
      std::string conf = tmp_ + "/estafette.conf";
      ::execl(prog.c_str(), prog.c_str(), "--config", conf.c_str(), nullptr);
      ::_exit(127);
    }
    ASSERT_TRUE(wait_for([&] {
      return log().find("listening socket=") != std::string::npos && connect_socket() >= 0;
    })) << "courierd did not start: "
        << slurp(tmp_ + "/stderr");
  }

  // Sends sig and waits (bounded) for courierd; returns its wait status, -1 on timeout.
  int stop(int sig) {
    ::kill(pid_, sig);
    int status = -1;
    bool gone = wait_for([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 10000ms);
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      status = -1;
    }
    pid_ = -1;
    return status;
  }

  int connect_socket() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = tmp_ + "/state/run/courierd.sock";
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  void notify(const std::vector<std::string>& ids) {
    int fd = connect_socket();
    ASSERT_GE(fd, 0);
    std::string frames;
    for (auto& id : ids) frames += ipc::encode(ipc::NewMessage{id});
    ASSERT_EQ(::write(fd, frames.data(), frames.size()), static_cast<ssize_t>(frames.size()));
    ::close(fd);
  }

  queue::QueueId queue(const std::string& sender, std::vector<std::string> rcpts,
                       const std::string& wire) {
    queue::Envelope env;
    env.arrival = ::time(nullptr);
    env.sender = sender;
    env.client_ip = "127.0.0.1";
    env.helo = "client.test";
    env.recipients = std::move(rcpts);
    queue::QueueId id;
    EXPECT_TRUE(queue::write_message(*backend_, env, wire, &id));
    return id;
  }

  // Logs go to stderr (flushed per line), which start() sends to a file.
  std::string log() const { return slurp(tmp_ + "/stderr"); }
  std::string maildir(const std::string& user) const {
    return tmp_ + "/state/maildir/" + user + "/new";
  }
  bool has_mail(const std::string& user, std::size_t n = 1) const {
    return list_dir(maildir(user)).size() >= n;
  }
  std::string only_mail(const std::string& user) const {
    auto files = list_dir(maildir(user));
    EXPECT_EQ(files.size(), 1u) << user;
    return files.empty() ? "" : slurp(maildir(user) + "/" + files[0]);
  }

  std::string build_;
  std::string tmp_;
  std::unique_ptr<queue::Backend> backend_;
  pid_t pid_ = -1;
  std::uint16_t later_port_ = 0;
};

const char kWire[] =
    "From: Sender <sender@local.test>\r\nSubject: hello\r\n..Dotted-Header: yes\r\n\r\n"
    "line one\r\n..leading dot\r\n\r\nlast\r\n";
const char kPlain[] =
    "From: Sender <sender@local.test>\nSubject: hello\n.Dotted-Header: yes\n\n"
    "line one\n.leading dot\n\nlast\n";

TEST_F(CourierdProcess, DeliversNewMessagesAndBouncesBadMailboxes) {
  start();
  auto id = queue("Sender@local.test", {"alice@local.test", "\"a/b\"@local.test"}, kWire);
  notify({id, id});  // the duplicate notice is ignored
  ASSERT_TRUE(wait_for([&] { return has_mail("alice"); })) << log();
  EXPECT_EQ(
      only_mail("alice"),
      std::string("Return-Path: <Sender@local.test>\nDelivered-To: alice@local.test\n") + kPlain);

  // The bounce for "a/b" goes to the sender's mailbox, from the null sender.
  ASSERT_TRUE(wait_for([&] { return has_mail("sender"); })) << log();
  std::string dsn = only_mail("sender");
  EXPECT_EQ(dsn.rfind("Return-Path: <>\nDelivered-To: Sender@local.test\n", 0), 0u) << dsn;
  EXPECT_NE(dsn.find("Subject: Undelivered Mail Returned to Sender\n"), std::string::npos);
  EXPECT_NE(dsn.find("Final-Recipient: rfc822; \"a/b\"@local.test\n"), std::string::npos);
  EXPECT_NE(dsn.find("Status: 5.1.1\n"), std::string::npos);
  EXPECT_NE(dsn.find("Reporting-MTA: dns; mx.estafette.test\n"), std::string::npos);
  // No RET=HDRS: the whole message comes back.
  EXPECT_NE(dsn.find(std::string("Content-Type: message/rfc822\n\n") + kPlain), std::string::npos)
      << dsn;

  // Both messages leave the queue.
  EXPECT_TRUE(wait_for([&] { return backend_->count() == 0; })) << log();
  std::string l = log();
  EXPECT_NE(l.find("queued id=" + id + " from=<Sender@local.test> nrcpt=2 size="),
            std::string::npos);
  EXPECT_TRUE(has_line(l, "id=" + id + " to=<alice@local.test> relay=local delay=",
                       " dsn=2.0.0 status=sent (250 2.0.0 delivered to maildir "))
      << l;
  EXPECT_TRUE(has_line(l, "id=" + id + " to=<\"a/b\"@local.test> relay=local",
                       " dsn=5.1.1 status=bounced ("))
      << l;
  EXPECT_NE(l.find("id=" + id + " removed"), std::string::npos);
  EXPECT_EQ(list_dir(maildir("alice")).size(), 1u);

  int status = stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(CourierdProcess, RestartsAKilledModule) {
  start();
  ASSERT_TRUE(wait_for([&] { return log().find("module ready name=local") != std::string::npos; }));
  std::string l = log();
  auto pos = l.find("module started name=local pid=");
  ASSERT_NE(pos, std::string::npos);
  pid_t local_pid = std::stoi(l.substr(pos + 30));
  ASSERT_EQ(::kill(local_pid, SIGKILL), 0);
  // The replacement: a local module started after the death was logged, and ready (there are
  // local_processes of them, so the count of ready lines says nothing).
  ASSERT_TRUE(wait_for([&] {
    std::string text = log();
    auto died = text.find("module died name=local pid=" + std::to_string(local_pid));
    if (died == std::string::npos) return false;
    auto started = text.find("module started name=local pid=", died);
    if (started == std::string::npos) return false;
    pid_t replacement = std::stoi(text.substr(started + 30));
    return text.find("module ready name=local announced=local pid=" +
                     std::to_string(replacement)) != std::string::npos;
  })) << log();
  auto id = queue("s@local.test", {"bob@local.test"}, kWire);
  notify({id});
  ASSERT_TRUE(wait_for([&] { return has_mail("bob"); })) << log();
  EXPECT_TRUE(wait_for([&] { return backend_->count() == 0; }));
  EXPECT_NE(log().find("module died name=local pid=" + std::to_string(local_pid) + " signal=9"),
            std::string::npos);
  int status = stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(CourierdProcess, RecoversTheQueueAfterKill9) {
  // Queued while courierd is down: one recipient already done before a crash.
  auto partly = queue("s@local.test", {"done@local.test", "carol@local.test"}, kWire);
  ASSERT_TRUE(backend_->mark_done(partly, {0}));
  // Pending on a dead route (nothing listens on port 1): stays queued across restarts.
  auto stuck = queue("s@local.test", {"u@dead.test"}, kWire);
  start();
  ASSERT_TRUE(wait_for([&] { return has_mail("carol"); })) << log();
  EXPECT_FALSE(has_mail("done"));
  EXPECT_TRUE(wait_for([&] { return !backend_->load(partly); }));
  EXPECT_NE(log().find("queued id=" + stuck + " from=<s@local.test> nrcpt=1 size="),
            std::string::npos);

  int status = stop(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status));
  ASSERT_TRUE(backend_->load(stuck));
  start();
  EXPECT_TRUE(wait_for([&] { return count_of(log(), "queued id=" + stuck) == 2; })) << log();
  EXPECT_NE(log().find("recovered messages=1"), std::string::npos);
  EXPECT_TRUE(backend_->load(stuck));
  EXPECT_EQ(list_dir(maildir("carol")).size(), 1u);
  status = stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(backend_->load(stuck));
}

TEST_F(CourierdProcess, DeliversToAHostThatComesBackAfterARestart) {
  if (::access((build_ + "/estafette-esmtpclient").c_str(), X_OK) != 0)
    GTEST_SKIP() << "estafette-esmtpclient is not built";
  auto id = queue("s@local.test", {"u@later.test", "v@later.test"}, kWire);
  start();
  // Nothing listens yet: the host fails and is held back, the message stays.
  ASSERT_TRUE(wait_for([&] {
    return has_line(log(), "id=" + id + " to=<u@later.test>", " status=deferred (");
  })) << log();
  EXPECT_NE(log().find("host_failed=yes"), std::string::npos);
  stop(SIGKILL);
  ASSERT_TRUE(backend_->load(id));

  SmtpSink sink(later_port_);
  ASSERT_TRUE(sink.ok());
  start();
  ASSERT_TRUE(wait_for([&] { return !sink.mails().empty(); })) << log();
  auto mails = sink.mails();
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0].mail_from.substr(0, 14), "<s@local.test>");
  ASSERT_EQ(mails[0].rcpt_to.size(), 2u);
  EXPECT_EQ(mails[0].rcpt_to[0], "<u@later.test>");
  EXPECT_EQ(mails[0].rcpt_to[1], "<v@later.test>");
  EXPECT_EQ(mails[0].data, kWire);
  EXPECT_TRUE(wait_for([&] { return backend_->count() == 0; })) << log();
  EXPECT_TRUE(has_line(log(), "id=" + id + " to=<v@later.test>", " status=sent (")) << log();
  int status = stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(CourierdProcess, RetriesAHeldHostWhenItComesBack) {
  if (::access((build_ + "/estafette-esmtpclient").c_str(), X_OK) != 0)
    GTEST_SKIP() << "estafette-esmtpclient is not built";
  start();
  auto id = queue("s@local.test", {"w@later.test"}, kWire);
  notify({id});
  ASSERT_TRUE(wait_for([&] { return count_of(log(), " status=deferred (") >= 2; })) << log();
  SmtpSink sink(later_port_);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE(wait_for([&] { return !sink.mails().empty(); })) << log();
  EXPECT_EQ(sink.mails()[0].data, kWire);
  EXPECT_TRUE(wait_for([&] { return backend_->count() == 0; })) << log();
  int status = stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(CourierdProcess, BadConfigExitsWithStatus2) {
  std::ofstream(tmp_ + "/bad.conf") << "no_such_setting = 1\n";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    std::string prog = build_ + "/estafette-courierd";
    std::string conf = tmp_ + "/bad.conf";
    ::execl(prog.c_str(), prog.c_str(), "--config", conf.c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

// A module whose courierd is gone before it is ready (its first send fails and closes the link,
// before its loop runs) exits at once instead of waiting in epoll_wait for ever, an orphan.
TEST(DeliveryModule, ExitsWhenItsLinkIsAlreadyClosedAtStart) {
  const std::string build = build_dir();
  for (const char* program : {"/estafette-local", "/estafette-esmtpclient"}) {
    const std::string path = build + program;
    if (::access(path.c_str(), X_OK) != 0) GTEST_SKIP() << path << " is not built";
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ::close(sv[0]);  // courierd's end: gone
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      std::string fd = std::to_string(sv[1]);
      ::execl(path.c_str(), path.c_str(), "--fd", fd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(sv[1]);
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 100 && done == 0; ++i) {  // 5 s at most
      done = ::waitpid(pid, &status, WNOHANG);
      if (done == 0) ::usleep(50000);
    }
    if (done == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    EXPECT_EQ(done, pid) << program << " still ran 5 s after its link closed";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << program << " status " << status;
  }
}

}  // namespace
}  // namespace estafette::courierd
