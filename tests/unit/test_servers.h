// test_servers.h: helpers for unit tests that talk to real servers on loopback: free ports,
// child server processes owned by the test (killed by pid), the project's DNS and IDENT fixtures
// (tests/rig/fixture.py), and running a loop until a condition holds. Header-only, tests only.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/fd.h"
#include "lib/event/loop.h"

#ifndef ESTAFETTE_TEST_SRCDIR
#error ESTAFETTE_TEST_SRCDIR is set by tests/local.am
#endif

namespace estafette::testing {

inline sockaddr_in loopback(const char* ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// A port on 127.0.0.1 that was free for both UDP and TCP when checked.
inline int free_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    base::UniqueFd u(::socket(AF_INET, SOCK_DGRAM, 0));
    sockaddr_in a = loopback("127.0.0.1", 0);
    socklen_t len = sizeof a;
    ::bind(u.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(u.get(), reinterpret_cast<sockaddr*>(&a), &len);
    base::UniqueFd t(::socket(AF_INET, SOCK_STREAM, 0));
    if (::bind(t.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return ntohs(a.sin_port);
  }
  return -1;
}

inline bool tcp_connects(int port, const char* ip = "127.0.0.1") {
  base::UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = loopback(ip, port);
  return ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

// A UDP socket bound to 127.0.0.1 that nobody reads: a DNS server that never answers.
inline base::UniqueFd silent_udp(int& port) {
  base::UniqueFd s(::socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = loopback("127.0.0.1", 0);
  socklen_t len = sizeof a;
  ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return s;
}

// A child process (a real server) owned by the test: killed with SIGTERM and reaped on stop().
class ChildProcess final {
 public:
  ChildProcess() = default;
  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // args[0] is looked up in PATH when it has no '/'. stdout_fd: the child's stdout (-1: the
  // test's); stderr_log: a file its stderr is appended to ("": the test's).
  bool start(std::vector<std::string> args, int stdout_fd = -1,
             const std::string& stderr_log = "") {
    stop();
    pid_ = ::fork();
    if (pid_ == 0) {
      if (stdout_fd >= 0) ::dup2(stdout_fd, 1);
      if (!stderr_log.empty()) {
        int err = ::open(stderr_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (err >= 0) ::dup2(err, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    return pid_ > 0;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Waits for the child to exit by itself: how it ended ("exit N", "signal N").
  std::string wait_exit() {
    int status = 0;
    if (pid_ <= 0 || ::waitpid(pid_, &status, 0) != pid_) return "not running";
    pid_ = -1;
    return WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                             : "signal " + std::to_string(WTERMSIG(status));
  }
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// A dnsmasq command line answering only what `records` give (--host-record=..., --mx-host=...),
// authoritative for .test and 127.in-addr.arpa, on 127.0.0.1:port, in the foreground.
inline std::vector<std::string> dnsmasq_args(int port, const std::vector<std::string>& records) {
  std::vector<std::string> args = {"/usr/sbin/dnsmasq",
                                   "--keep-in-foreground",
                                   "--port=" + std::to_string(port),
                                   "--listen-address=127.0.0.1",
                                   "--bind-interfaces",
                                   "--no-resolv",
                                   "--no-hosts",
                                   "--conf-file=/dev/null",
                                   "--pid-file=",
                                   "--log-facility=/dev/null",
                                   "--local=/test/",
                                   "--local=/127.in-addr.arpa/"};
  args.insert(args.end(), records.begin(), records.end());
  if (::geteuid() == 0) args.push_back("--user=root");
  return args;
}

// Waits up to `limit` for a TCP listener on 127.0.0.1:port.
inline bool wait_tcp(int port, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(std::chrono::milliseconds(50)))
    if (tcp_connects(port)) return true;
  return false;
}

// One of the project's test fixtures (tests/rig/fixture.py: the DNS servers and the identd of
// bench/kit/orchestrate/rig.py, the same ones the integration tests and benchmarks use), run as a
// child of the test: start() returns once the fixture printed "ready"; stop() (or the
// destructor, or the test process dying) stops it and its servers. Its stderr goes to `log`.
class RigFixture final {
 public:
  RigFixture() = default;
  ~RigFixture() { stop(); }
  RigFixture(const RigFixture&) = delete;
  RigFixture& operator=(const RigFixture&) = delete;

  // args: "dns", DIR, PORT or "identd". False (and error() says why) unless ready in `limit`.
  bool start(const std::vector<std::string>& args, const std::string& log,
             std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    stop();
    error_.clear();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail("pipe2 failed");
    base::UniqueFd out(fds[0]), in(fds[1]);
    std::vector<std::string> argv = {"python3", ESTAFETTE_TEST_SRCDIR "/tests/rig/fixture.py"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!child_.start(argv, in.get(), log)) return fail("fork failed");
    in.reset();
    std::string said;
    pollfd p{out.get(), POLLIN, 0};
    for (auto end = std::chrono::steady_clock::now() + limit;
         said.find('\n') == std::string::npos;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        return fail("not ready after " + std::to_string(limit.count()) + " ms (log: " + log + ")");
      char buf[64];
      ssize_t n = ::read(out.get(), buf, sizeof buf);
      if (n <= 0) break;  // it exited
      said.append(buf, static_cast<std::size_t>(n));
    }
    if (said.rfind("ready\n", 0) == 0) return true;
    return fail("fixture.py ended (" + child_.wait_exit() + "): " + read(log));
  }

  void stop() { child_.stop(); }
  bool running() const { return child_.running(); }
  const std::string& error() const { return error_; }

 private:
  bool fail(std::string why) {
    stop();
    error_ = std::move(why);
    return false;
  }
  static std::string read(const std::string& path) {
    std::string text;
    base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char buf[4096];
    for (ssize_t n; fd && (n = ::read(fd.get(), buf, sizeof buf)) > 0;)
      text.append(buf, static_cast<std::size_t>(n));
    return text;
  }

  ChildProcess child_;
  std::string error_;
};

// Runs a shell command; true when it exits 0.
inline bool run_command(const std::string& command) {
  int rc = std::system(command.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

// Runs loop until done() or the deadline; true when done() holds.
inline bool run_until(event::Loop& loop, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  auto deadline = event::Clock::now() + limit;
  while (!done() && event::Clock::now() < deadline) {
    auto tick = loop.add_timer(std::chrono::milliseconds(2), [&loop] { loop.stop(); });
    loop.run();
    loop.cancel_timer(tick);
  }
  return done();
}

}  // namespace estafette::testing
