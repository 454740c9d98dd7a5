#include "lib/daemon/root_spawner.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <vector>

namespace estafette::daemon {

namespace {

constexpr std::uint32_t kRequest = 0x45535000;  // "ESP" and the program's index

struct Reply {
  std::int32_t pid;  // -1: failed
  std::int32_t err;  // errno when failed
};

void write_stderr(const std::string& text) {
  [[maybe_unused]] auto n = ::write(2, text.data(), text.size());
}

bool send_reply(int link, Reply reply, int fd) {
  iovec iov{&reply, sizeof reply};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  return ::sendmsg(link, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof reply);
}

// One start: a socketpair, a sibling of ours (courierd's child) running the program.
Reply start_one(const Command& command, uid_t real_uid, const std::string& parent, int* ours) {
  // Not there: courierd's log names the path with this errno (ChildProcess::start).
  if (::access(command.path.c_str(), X_OK) != 0) return {-1, errno};
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return {-1, errno};
  std::vector<std::string> words = {command.path};
  words.insert(words.end(), command.args.begin(), command.args.end());
  words.insert(words.end(), {"--fd", std::to_string(sv[1])});
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  // CLONE_PARENT: the new process is courierd's child, reaped and signalled by courierd.
  long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) {
    int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    return {-1, err};
  }
  if (pid == 0) {
    ::fcntl(sv[1], F_SETFD, 0);
    int keep[] = {sv[1]};
    base::close_fds_from(3, keep);
    if (::setresgid(0, 0, 0) != 0 || ::setresuid(real_uid, 0, 0) != 0) {
      write_stderr(parent + ": cannot set the ids of " + command.path + "\n");
      ::_exit(127);
    }
    ::execv(argv[0], argv.data());
    write_stderr(parent + ": cannot run " + command.path + ": " + std::strerror(errno) + "\n");
    ::_exit(127);
  }
  ::close(sv[1]);
  *ours = sv[0];
  return {static_cast<std::int32_t>(pid), 0};
}

[[noreturn]] void helper_main(int link, const std::vector<Command>& commands, uid_t real_uid,
                              const std::string& parent) {
  int keep[] = {link};
  base::close_fds_from(3, keep);
  for (;;) {
    std::uint32_t request = 0;
    ssize_t n = ::recv(link, &request, sizeof request, MSG_WAITALL);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof request) || request < kRequest ||
        request - kRequest >= commands.size())
      ::_exit(0);
    int ours = -1;
    Reply reply = start_one(commands[request - kRequest], real_uid, parent, &ours);
    bool sent = send_reply(link, reply, ours);
    if (ours >= 0) ::close(ours);
    if (!sent) ::_exit(0);
  }
}

}  // namespace

RootSpawner::RootSpawner(std::vector<Command> commands, uid_t real_uid, std::string parent) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::system_error(errno, std::generic_category(), "socketpair for the root spawner");
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    throw std::system_error(err, std::generic_category(), "fork of the root spawner");
  }
  if (pid == 0) {
    ::close(sv[0]);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Stopping courierd's process group must not leave the helper behind; it also ends on EOF.
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGINT, SIG_IGN);
    helper_main(sv[1], commands, real_uid, parent);
  }
  ::close(sv[1]);
  link_.reset(sv[0]);
  helper_ = pid;
}

RootSpawner::~RootSpawner() {
  link_.reset();
}

pid_t RootSpawner::spawn(std::size_t index, base::UniqueFd* channel) {
  if (!link_) {
    errno = EPIPE;
    return -1;
  }
  std::uint32_t request = kRequest + static_cast<std::uint32_t>(index);
  if (::send(link_.get(), &request, sizeof request, MSG_NOSIGNAL) != sizeof request) return -1;
  Reply reply{};
  iovec iov{&reply, sizeof reply};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(link_.get(), &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof reply)) {
    link_.reset();  // the helper is gone: no more starts
    errno = n < 0 ? errno : EPIPE;
    return -1;
  }
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if (reply.pid <= 0) {
    if (fd >= 0) ::close(fd);
    errno = reply.err ? reply.err : EIO;
    return -1;
  }
  channel->reset(fd);
  return reply.pid;
}

}  // namespace estafette::daemon
