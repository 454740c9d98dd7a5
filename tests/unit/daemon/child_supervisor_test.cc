// The child-process supervisor: the backoff sequences of estafetted's and courierd's policies,
// spawn() (exit status, fds kept across exec and no others, the exec failure message), and
// ChildProcess on a real loop with real children: restarts with a growing delay, a failed start
// retried, stop with SIGTERM, SIGKILL after the grace period for a child that ignores SIGTERM.
#include "lib/daemon/child_supervisor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lib/base/fd.h"

namespace estafette::daemon {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

std::vector<long> delays(Backoff& b, int n, event::Clock::time_point started,
                         event::Clock::time_point ended) {
  std::vector<long> out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<long>(b.next(started, ended).count()));
  return out;
}

TEST(Backoff, DaemonPolicyDoublesTo30Seconds) {
  Backoff b(kDaemonRestart);
  auto t = event::Clock::now();
  EXPECT_EQ(delays(b, 9, t, t + 1s),
            (std::vector<long>{500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000}));
  // A run longer than 30 s starts over.
  EXPECT_EQ(delays(b, 2, t, t + 31s), (std::vector<long>{500, 500}));
  EXPECT_EQ(delays(b, 1, t, t + 30s), (std::vector<long>{1000}));  // not longer: goes on
}

TEST(Backoff, ModulePolicyDoublesTo32SecondsAndResets) {
  Backoff b(kModuleRestart);
  auto t = event::Clock::now();
  EXPECT_EQ(delays(b, 9, t, t),
            (std::vector<long>{250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 32000}));
  b.reset();  // a delivery result
  EXPECT_EQ(delays(b, 2, t, t), (std::vector<long>{250, 500}));
}

int wait_status(pid_t pid) {
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return status;
}

TEST(Spawn, RunsTheCommandAndKeepsFds) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  base::UniqueFd read_end(p[0]), write_end(p[1]);
  Command c;
  c.path = "/bin/sh";
  c.args = {"-c", "echo kept >&" + std::to_string(write_end.get()) + "; exit 3"};
  c.keep_fds = {write_end.get()};
  pid_t pid = spawn(c, "test");
  ASSERT_GT(pid, 0);
  write_end.reset();
  int status = wait_status(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  char buf[16] = {};
  EXPECT_EQ(::read(read_end.get(), buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "kept\n");
  // Still close-on-exec in the parent.
  EXPECT_EQ(::fcntl(read_end.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

// Only the fds meant for the child cross exec: not one the parent left inheritable.
TEST(Spawn, ClosesEveryOtherFd) {
  int p[2], stray[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe(stray), 0);  // inheritable, as courierd's link is in estafette-local
  base::UniqueFd read_end(p[0]), write_end(p[1]), stray_r(stray[0]), stray_w(stray[1]);
  Command c;
  c.path = "/bin/sh";
  const std::string n = std::to_string(stray_w.get()), k = std::to_string(write_end.get());
  c.args = {"-c", "if [ -e /proc/$$/fd/" + n + " ]; then echo open >&" + k +
                      "; else echo closed >&" + k + "; fi"};
  c.keep_fds = {write_end.get()};
  pid_t pid = spawn(c, "test");
  ASSERT_GT(pid, 0);
  write_end.reset();
  int status = wait_status(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  char buf[16] = {};
  ssize_t got = ::read(read_end.get(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, got > 0 ? got : 0), "closed\n");
}

// A program that is not there fails before the fork, so the caller can log its path.
TEST(Spawn, MissingProgramFailsBeforeTheFork) {
  Command c;
  c.path = "/nonexistent/estafette-nothing";
  errno = 0;
  EXPECT_EQ(spawn(c, "estafetted"), -1);
  EXPECT_EQ(errno, ENOENT);
}

// One that is there but cannot be executed: the child says so and exits 127.
TEST(Spawn, ExecFailureSays127) {
  char path[] = "/tmp/estafette-not-a-program-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "\x7f\x01\x02junk", 7), 7);  // no #!, no ELF: ENOEXEC
  ::fchmod(fd, 0755);
  ::close(fd);
  Command c;
  c.path = path;
  ::testing::internal::CaptureStderr();  // the child's stderr is this file too
  pid_t pid = spawn(c, "estafetted");
  ASSERT_GT(pid, 0);
  int status = wait_status(pid);
  std::string err = ::testing::internal::GetCapturedStderr();
  ::unlink(path);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 127);
  EXPECT_EQ(err, "estafetted: cannot run " + std::string(path) + ": Exec format error\n");
}

// A loop with a reaper that hands every exit to one ChildProcess.
struct Rig {
  event::Loop loop;
  std::optional<ChildProcess> child;
  ChildReaper reaper{loop, [this](pid_t pid, int status) { child->child_exited(pid, status); }};
  std::vector<pid_t> started;
  std::vector<int> statuses;
  std::vector<std::optional<long>> restarts;  // restart_in per exit
  std::vector<std::string> failures;
  std::vector<pid_t> killed;

  ChildProcess::Callbacks callbacks(std::function<Command()> command) {
    ChildProcess::Callbacks cb;
    cb.command = std::move(command);
    cb.started = [this](pid_t pid) { started.push_back(pid); };
    cb.start_failed = [this](const std::string& reason, milliseconds) {
      failures.push_back(reason);
    };
    cb.exited = [this](pid_t, int status, std::optional<milliseconds> restart_in) {
      statuses.push_back(status);
      restarts.push_back(restart_in ? std::optional<long>(restart_in->count()) : std::nullopt);
    };
    cb.killing = [this](pid_t pid) { killed.push_back(pid); };
    return cb;
  }
};

Command shell(const std::string& script) {
  Command c;
  c.path = "/bin/sh";
  c.args = {"-c", script};
  return c;
}

TEST(ChildProcess, RestartsWithGrowingDelays) {
  Rig rig;
  rig.child.emplace(rig.loop, "test", RestartPolicy{20ms, 80ms, 10s},
                    rig.callbacks([] { return shell("exit 3"); }));
  rig.child->start();
  auto t0 = event::Clock::now();
  // Stop once the fifth run has ended: four restarts waited 20 + 40 + 80 + 80 ms.
  std::function<void()> poll = [&] {
    if (rig.statuses.size() >= 5) {
      rig.child->stop(SIGTERM, 0ms);
      rig.loop.stop();
      return;
    }
    rig.loop.add_timer(5ms, poll);
  };
  rig.loop.add_timer(5ms, poll);
  rig.loop.add_timer(10s, [&] { rig.loop.stop(); });  // a safety net
  rig.loop.run();
  ASSERT_EQ(rig.statuses.size(), 5u);
  EXPECT_EQ(rig.started.size(), 5u);
  for (int status : rig.statuses) EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3);
  EXPECT_EQ(rig.restarts, (std::vector<std::optional<long>>{20, 40, 80, 80, 80}));
  EXPECT_GE(event::Clock::now() - t0, 220ms);
  EXPECT_FALSE(rig.child->running());
}

TEST(ChildProcess, MissingProgramIsNamed) {
  Rig rig;
  rig.child.emplace(rig.loop, "test", RestartPolicy{10ms, 40ms, 10s}, rig.callbacks([] {
    Command c;
    c.path = "/nonexistent/estafette-esmtpd";
    return c;
  }));
  rig.child->start();
  std::function<void()> poll = [&] {
    if (rig.failures.size() >= 2) {
      rig.child->stop(0, 0ms);
      rig.loop.stop();
      return;
    }
    rig.loop.add_timer(5ms, poll);
  };
  rig.loop.add_timer(5ms, poll);
  rig.loop.add_timer(10s, [&] { rig.loop.stop(); });
  rig.loop.run();
  ASSERT_GE(rig.failures.size(), 2u);
  EXPECT_EQ(rig.failures[0], "cannot run /nonexistent/estafette-esmtpd: No such file or directory");
  EXPECT_TRUE(rig.started.empty());
}

TEST(ChildProcess, FailedStartIsRetried) {
  Rig rig;
  int attempts = 0;
  rig.child.emplace(rig.loop, "test", RestartPolicy{10ms, 40ms, 10s}, rig.callbacks([&] {
    if (++attempts < 3) throw std::runtime_error("socketpair failed: EMFILE");
    return shell("exit 0");
  }));
  rig.child->start();
  std::function<void()> poll = [&] {
    if (!rig.statuses.empty()) {
      rig.child->stop(0, 0ms);
      rig.loop.stop();
      return;
    }
    rig.loop.add_timer(5ms, poll);
  };
  rig.loop.add_timer(5ms, poll);
  rig.loop.add_timer(10s, [&] { rig.loop.stop(); });
  rig.loop.run();
  EXPECT_EQ(rig.failures,
            (std::vector<std::string>{"socketpair failed: EMFILE", "socketpair failed: EMFILE"}));
  EXPECT_EQ(attempts, 3);
  ASSERT_EQ(rig.started.size(), 1u);
  ASSERT_EQ(rig.statuses.size(), 1u);
  // The delays went on growing across the failed starts: 10, 20, then 40 after the exit.
  EXPECT_EQ(rig.restarts, (std::vector<std::optional<long>>{40}));
}

TEST(ChildProcess, StopSendsSigtermAndDoesNotRestart) {
  Rig rig;
  rig.child.emplace(rig.loop, "test", RestartPolicy{10ms, 40ms, 10s},
                    rig.callbacks([] { return shell("exec sleep 10"); }));
  rig.child->start();
  ASSERT_TRUE(rig.child->running());
  rig.loop.add_timer(50ms, [&] { rig.child->stop(SIGTERM, 5s); });
  std::function<void()> poll = [&] {
    if (!rig.statuses.empty()) {
      rig.loop.add_timer(50ms, [&] { rig.loop.stop(); });  // no restart meanwhile
      return;
    }
    rig.loop.add_timer(5ms, poll);
  };
  rig.loop.add_timer(5ms, poll);
  rig.loop.add_timer(10s, [&] { rig.loop.stop(); });
  rig.loop.run();
  ASSERT_EQ(rig.statuses.size(), 1u);
  EXPECT_TRUE(WIFSIGNALED(rig.statuses[0]) && WTERMSIG(rig.statuses[0]) == SIGTERM);
  EXPECT_EQ(rig.restarts, (std::vector<std::optional<long>>{std::nullopt}));
  EXPECT_EQ(rig.started.size(), 1u);
  EXPECT_TRUE(rig.killed.empty());
  EXPECT_TRUE(rig.child->stopping());
  rig.child->start();  // stopped for good
  EXPECT_FALSE(rig.child->running());
}

TEST(ChildProcess, KillsAfterTheGracePeriod) {
  Rig rig;
  // An ignored signal stays ignored across exec: sleep ignores SIGTERM.
  rig.child.emplace(rig.loop, "test", RestartPolicy{10ms, 40ms, 10s},
                    rig.callbacks([] { return shell("trap '' TERM; exec sleep 10"); }));
  rig.child->start();
  pid_t pid = rig.child->pid();
  auto t0 = event::Clock::now();
  rig.loop.add_timer(50ms, [&] { rig.child->stop(SIGTERM, 100ms); });
  std::function<void()> poll = [&] {
    if (!rig.statuses.empty()) return rig.loop.stop();
    rig.loop.add_timer(5ms, poll);
  };
  rig.loop.add_timer(5ms, poll);
  rig.loop.add_timer(10s, [&] { rig.loop.stop(); });
  rig.loop.run();
  ASSERT_EQ(rig.statuses.size(), 1u);
  EXPECT_TRUE(WIFSIGNALED(rig.statuses[0]) && WTERMSIG(rig.statuses[0]) == SIGKILL);
  EXPECT_EQ(rig.killed, (std::vector<pid_t>{pid}));
  EXPECT_GE(event::Clock::now() - t0, 150ms);
}

TEST(ChildProcess, SignalReachesTheChildAndOthersAreNotOurs) {
  Rig rig;
  rig.child.emplace(rig.loop, "test", RestartPolicy{10ms, 40ms, 10s},
                    rig.callbacks([] { return shell("exec sleep 10"); }));
  EXPECT_FALSE(rig.child->child_exited(12345, 0));  // not running: nothing is ours
  rig.child->start();
  EXPECT_FALSE(rig.child->child_exited(rig.child->pid() + 100000, 0));
  rig.child->signal(SIGUSR1);  // default action: terminate
  std::function<void()> poll = [&] {
    if (!rig.statuses.empty()) {
      rig.child->stop(SIGTERM, 1s);  // the restart is pending: cancelled
      rig.loop.add_timer(50ms, [&] { rig.loop.stop(); });
      return;
    }
    rig.loop.add_timer(5ms, poll);
  };
  rig.loop.add_timer(5ms, poll);
  rig.loop.add_timer(10s, [&] { rig.loop.stop(); });
  rig.loop.run();
  ASSERT_EQ(rig.statuses.size(), 1u);
  EXPECT_TRUE(WIFSIGNALED(rig.statuses[0]) && WTERMSIG(rig.statuses[0]) == SIGUSR1);
  EXPECT_EQ(rig.restarts, (std::vector<std::optional<long>>{10}));
  EXPECT_EQ(rig.started.size(), 1u);  // the restart never happened
}

}  // namespace
}  // namespace estafette::daemon
