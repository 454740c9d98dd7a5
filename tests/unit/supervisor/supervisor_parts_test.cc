// estafetted's parts around the Supervisor: the listening sockets it binds for esmtpd (real
// sockets on loopback: kept across a reload, bound anew when released), the settings a reload
// may not change (table), and sd_notify over a real datagram socket.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <system_error>

#include "lib/base/fd.h"
#include "supervisor/listeners.h"
#include "supervisor/reload_rules.h"
#include "supervisor/systemd_notify.h"

namespace estafette::supervisor {
namespace {

std::uint16_t free_port() {
  base::UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool listening(int fd) {
  int on = 0;
  socklen_t len = sizeof on;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

TEST(ListenerSet, OneSocketPerAddressAndProcessKeptAcrossAReload) {
  const std::uint16_t p1 = free_port(), p2 = free_port();
  ListenerSet set({{"127.0.0.1", p1}, {"127.0.0.1", p2}}, 2);
  set.bind_all();
  auto first = set.fds(1), second = set.fds(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_NE(first, second);  // SO_REUSEPORT: each process its own sockets
  for (int fd : first) EXPECT_TRUE(listening(fd));
  EXPECT_EQ(set.fds(1), first);  // asked again: the same sockets
  EXPECT_EQ(fd_list(first), std::to_string(first[0]) + "," + std::to_string(first[1]));

  // A reload keeping p1, dropping p2, adding p3 and a third process.
  const std::uint16_t p3 = free_port();
  auto next = set.successor({{"127.0.0.1", p1}, {"127.0.0.1", p3}}, 3);
  next->bind_all();
  EXPECT_EQ(next->fds(1)[0], first[0]);
  EXPECT_EQ(next->fds(2)[0], second[0]);
  EXPECT_NE(next->fds(1)[1], first[1]);
  EXPECT_EQ(next->fds(3).size(), 2u);
  EXPECT_EQ(next->processes(), 3u);

  // A process that died: its sockets go, and come back as new ones.
  int old = next->fds(3)[0];
  next->release(3);
  int again = next->fds(3)[0];
  EXPECT_TRUE(listening(again));
  (void)old;  // the number may be reused; the socket is a new one
}

TEST(ListenerSet, AnAddressInUseIsNamed) {
  const std::uint16_t port = free_port();
  base::UniqueFd squatter(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ASSERT_EQ(::bind(squatter.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(squatter.get(), 1), 0);
  ListenerSet set({{"127.0.0.1", port}}, 1);
  try {
    set.bind_all();
    FAIL() << "bound an address in use";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
  }
}

struct FixedCase {
  const char* what;
  void (*change)(config::Config&);
  std::string expected;  // "" : the reload may go on
};
class FixedSettings : public ::testing::TestWithParam<FixedCase> {};
TEST_P(FixedSettings, AreNamed) {
  config::Config running;
  running.state_dir = "/var/spool/estafette";
  config::Config next = running;
  GetParam().change(next);
  auto changed = fixed_settings_changed(running, next);
  std::string all;
  for (const auto& c : changed) all += (all.empty() ? "" : "; ") + c;
  EXPECT_EQ(all, GetParam().expected) << GetParam().what;
}
INSTANTIATE_TEST_SUITE_P(
    Table, FixedSettings,
    ::testing::Values(FixedCase{"nothing", [](config::Config&) {}, ""},
                      FixedCase{"local_domains may change",
                                [](config::Config& c) { c.local_domains = {"new.test"}; }, ""},
                      FixedCase{"listen may change",
                                [](config::Config& c) {
                                  c.listen = {{"127.0.0.1", 26}};
                                },
                                ""},
                      FixedCase{"state_dir", [](config::Config& c) { c.state_dir = "/srv/q"; },
                                "state_dir (/var/spool/estafette -> /srv/q)"},
                      FixedCase{"user", [](config::Config& c) { c.user = "estafette"; },
                                "user (unset -> estafette)"},
                      FixedCase{"two",
                                [](config::Config& c) {
                                  c.queue_backend = "file";
                                  c.user = "mail";
                                },
                                "user (unset -> mail); queue_backend (segment -> file)"}));

TEST(SystemdNotify, SendsToNotifySocket) {
  std::string path = "/tmp/estafette-notify-" + std::to_string(::getpid());
  ::unlink(path.c_str());
  base::UniqueFd sock(::socket(AF_UNIX, SOCK_DGRAM, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  ASSERT_EQ(::bind(sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  SystemdNotifier notifier;
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);  // not for the daemons it starts
  EXPECT_TRUE(notifier.notify("READY=1\nSTATUS=up"));
  char buf[64] = {};
  EXPECT_EQ(::recv(sock.get(), buf, sizeof buf, MSG_DONTWAIT), 17);
  EXPECT_STREQ(buf, "READY=1\nSTATUS=up");
  EXPECT_FALSE(SystemdNotifier().notify("READY=1"));  // not under systemd: nothing to do
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  EXPECT_FALSE(SystemdNotifier().notify("READY=1"));
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace estafette::supervisor
