// event::Acceptor on a real listening socket on 127.0.0.1: connections are accepted with the
// peer's address; out of fds (RLIMIT_NOFILE lowered so accept4 fails with EMFILE while a client
// is pending), the listener pauses instead of spinning and takes the client once fds are free.
#include "lib/event/acceptor.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "lib/base/net.h"

namespace estafette::event {
namespace {

using namespace std::chrono_literals;

std::uint16_t local_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  return ntohs(addr.sin_port);
}

base::UniqueFd connect_to(std::uint16_t port) {
  base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

// This process's CPU time (user + system).
std::chrono::microseconds cpu_time() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int highest_open_fd() {
  int highest = 2;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return 1024;
  while (dirent* e = ::readdir(dir)) highest = std::max(highest, std::atoi(e->d_name));
  ::closedir(dir);
  return highest;
}

// Lowers RLIMIT_NOFILE to the fds open now and fills every free slot below it, so that the
// next accept4 fails with EMFILE; release() (or the destructor) gives everything back.
class FdExhaustion final {
 public:
  FdExhaustion() : null_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(highest_open_fd() + 1);
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    for (;;) {
      int fd = ::fcntl(null_.get(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
    EXPECT_EQ(errno, EMFILE);
  }
  ~FdExhaustion() { release(); }
  FdExhaustion(const FdExhaustion&) = delete;
  FdExhaustion& operator=(const FdExhaustion&) = delete;
  void release() {
    for (int fd : fillers_) ::close(fd);
    fillers_.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  base::UniqueFd null_;
  rlimit saved_{};
  std::vector<int> fillers_;
};

TEST(Acceptor, AcceptsWithPeerAddress) {
  Loop loop;
  base::UniqueFd listener = base::listen_tcp("127.0.0.1", 0);
  std::vector<std::string> peers;
  std::vector<base::UniqueFd> accepted;
  Acceptor acceptor(loop, listener.get(), {},
                    [&](base::UniqueFd fd, const sockaddr_storage& peer, socklen_t len) {
                      EXPECT_GT(len, 0u);
                      peers.push_back(base::address_text(reinterpret_cast<const sockaddr*>(&peer)));
                      accepted.push_back(std::move(fd));
                      if (accepted.size() == 3) loop.stop();
                    });
  auto port = local_port(listener.get());
  auto a = connect_to(port), b = connect_to(port), c = connect_to(port);
  loop.add_timer(2s, [&] { loop.stop(); });
  loop.run();
  ASSERT_EQ(accepted.size(), 3u);
  EXPECT_EQ(peers, (std::vector<std::string>(3, "127.0.0.1")));
  EXPECT_FALSE(acceptor.paused());
  // Each accepted fd is non-blocking and close-on-exec.
  EXPECT_TRUE(::fcntl(accepted[0].get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(accepted[0].get(), F_GETFD) & FD_CLOEXEC);
}

TEST(Acceptor, OutOfFdsPausesInsteadOfSpinningThenAcceptsThePendingClient) {
  Loop loop;
  base::UniqueFd listener = base::listen_tcp("127.0.0.1", 0);
  int accepted = 0;
  Acceptor acceptor(loop, listener.get(), {.min_pause = 50ms, .max_pause = 200ms},
                    [&](base::UniqueFd, const sockaddr_storage&, socklen_t) {
                      ++accepted;
                      loop.stop();
                    });
  auto client = connect_to(local_port(listener.get()));  // pending in the backlog
  {
    FdExhaustion exhaustion;
    auto cpu0 = cpu_time();
    loop.add_timer(300ms, [&] { loop.stop(); });
    loop.run();
    // Pauses of 50, 100, 200, 200 ms: a handful of attempts, not the thousands of a spin.
    EXPECT_EQ(accepted, 0);
    EXPECT_TRUE(acceptor.paused());
    EXPECT_GE(acceptor.attempts(), 2u);
    EXPECT_LE(acceptor.attempts(), 8u);
    EXPECT_LT(cpu_time() - cpu0, 100ms);  // a spin burns the whole 300 ms
    exhaustion.release();
  }
  auto before = acceptor.attempts();
  auto t0 = Clock::now();
  loop.add_timer(2s, [&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(accepted, 1);
  EXPECT_FALSE(acceptor.paused());
  EXPECT_LT(Clock::now() - t0, 1s);  // taken at the next retry (at most max_pause away)
  EXPECT_LE(acceptor.attempts() - before, 2u);
}

TEST(Acceptor, DestroyedWhilePausedCancelsTheRetry) {
  Loop loop;
  base::UniqueFd listener = base::listen_tcp("127.0.0.1", 0);
  auto acceptor = std::make_unique<Acceptor>(
      loop, listener.get(), Acceptor::Options{.min_pause = 20ms},
      [&](base::UniqueFd, const sockaddr_storage&, socklen_t) { ADD_FAILURE(); });
  auto client = connect_to(local_port(listener.get()));
  {
    FdExhaustion exhaustion;
    loop.add_timer(10ms, [&] { loop.stop(); });
    loop.run();
    EXPECT_TRUE(acceptor->paused());
  }
  acceptor.reset();
  loop.add_timer(100ms, [&] { loop.stop(); });
  loop.run();  // the retry timer would have re-armed a dead Acceptor
}

}  // namespace
}  // namespace estafette::event
