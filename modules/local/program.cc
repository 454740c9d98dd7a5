#include "modules/local/program.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "lib/base/exit_codes.h"
#include "lib/base/fd.h"

namespace estafette::local {

namespace {

constexpr std::size_t kMaxOutput = 4096;

std::string first_line(std::string_view output) {
  auto end = output.find('\n');
  std::string line(output.substr(0, end));
  for (auto& c : line)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (line.size() > 200) line.resize(200);
  return line;
}

}  // namespace

ipc::RcptResult program_result(int status, bool timed_out, std::string_view output) {
  std::string said = first_line(output);
  std::string tail = said.empty() ? "" : ": " + said;
  if (timed_out) return {ipc::RcptStatus::TempFail, "451 4.3.0 program timed out" + tail};
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (code == 0) return {ipc::RcptStatus::Delivered, "250 2.0.0 delivered to program"};
    if (code == base::kExTempFail)
      return {ipc::RcptStatus::TempFail, "451 4.3.0 program exited 75 (EX_TEMPFAIL)" + tail};
    return {ipc::RcptStatus::PermFail, "550 5.3.0 program exited " + std::to_string(code) + tail};
  }
  return {ipc::RcptStatus::PermFail,
          "550 5.3.0 program killed by signal " + std::to_string(WTERMSIG(status)) + tail};
}

ipc::RcptResult run_program(const ProgramRun& run, std::string_view message) {
  // Who runs it: the alias file's owner, never root.
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (run.uid != 0)
    ::getpwuid_r(run.uid, &pw, buf.data(), buf.size(), &found);
  else
    ::getpwnam_r(run.fallback_user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (!found || pw.pw_uid == 0)
    return {ipc::RcptStatus::TempFail,
            "451 4.3.0 no unprivileged user to run the program as (program_user = " +
                run.fallback_user + ")"};
  const bool switch_user = ::geteuid() == 0;
  std::string user = pw.pw_name, home = pw.pw_dir ? pw.pw_dir : "/";
  uid_t uid = pw.pw_uid;
  gid_t gid = pw.pw_gid;
  // The user's supplementary groups (initgroups(3)), looked up here: the child only calls
  // async-signal-safe functions.
  std::vector<gid_t> groups(64);
  int ngroups = static_cast<int>(groups.size());
  if (::getgrouplist(user.c_str(), gid, groups.data(), &ngroups) < 0) {
    groups.resize(static_cast<std::size_t>(ngroups));
    if (::getgrouplist(user.c_str(), gid, groups.data(), &ngroups) < 0) ngroups = 0;
  }
  groups.resize(static_cast<std::size_t>(ngroups));
  if (groups.empty()) groups.push_back(gid);

  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0)
    return {ipc::RcptStatus::TempFail, "451 4.3.0 pipe: " + std::string(std::strerror(errno))};
  base::UniqueFd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0)
    return {ipc::RcptStatus::TempFail, "451 4.3.0 pipe: " + std::string(std::strerror(errno))};
  base::UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);

  std::string env_sender = "SENDER=" + run.sender, env_rcpt = "RECIPIENT=" + run.recipient;
  std::string env_user = "USER=" + user, env_logname = "LOGNAME=" + user, env_home = "HOME=" + home;
  const char* envp[] = {env_sender.c_str(),  env_rcpt.c_str(), env_user.c_str(),
                        env_logname.c_str(), env_home.c_str(), "PATH=/usr/local/bin:/usr/bin:/bin",
                        "SHELL=/bin/sh",     nullptr};
  pid_t pid = ::fork();
  if (pid < 0)
    return {ipc::RcptStatus::TempFail, "451 4.3.0 fork: " + std::string(std::strerror(errno))};
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (switch_user && (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
                        ::setuid(uid) != 0 || ::getuid() == 0))
      ::_exit(base::kExTempFail);
    if (::dup2(in_r.get(), 0) < 0 || ::dup2(out_w.get(), 1) < 0 || ::dup2(out_w.get(), 2) < 0)
      ::_exit(base::kExTempFail);
    // Only stdin, stdout and stderr: whatever else this process holds (its link to courierd,
    // above all) is not the program's to read or write.
    base::close_fds_from(3);
    if (::chdir(home.c_str()) != 0 && ::chdir("/") != 0) ::_exit(base::kExTempFail);
    ::execle("/bin/sh", "sh", "-c", run.command.c_str(), nullptr, envp);
    ::_exit(base::kExTempFail);
  }
  ::setpgid(pid, pid);  // also here: no race with the kill below
  in_r.reset();
  out_w.reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  // Feed stdin and drain the output together, so a program that writes before reading does not
  // deadlock us; stop at the deadline.
  auto deadline = std::chrono::steady_clock::now() + run.timeout;
  std::string output;
  std::size_t written = 0;
  bool timed_out = false;
  while (out_r) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {in_w ? in_w.get() : -1, POLLOUT, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) {
      ssize_t w = ::write(in_w.get(), message.data() + written, message.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      // EPIPE: the program does not want the rest, as sendmail allows.
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == message.size()) in_w.reset();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char chunk[4096];
      ssize_t r = ::read(out_r.get(), chunk, sizeof chunk);
      if (r > 0) {
        output.append(chunk,
                      std::min<std::size_t>(r, kMaxOutput - std::min(kMaxOutput, output.size())));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        out_r.reset();  // every writer closed: the program (and its children) are done with it
      }
    }
  }
  in_w.reset();
  int status = 0;
  if (!timed_out) {
    // Output closed; wait for the exit within what is left of the timeout.
    while (true) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        timed_out = true;
        break;
      }
      ::usleep(5000);
    }
  }
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  return program_result(status, timed_out, output);
}

}  // namespace estafette::local
