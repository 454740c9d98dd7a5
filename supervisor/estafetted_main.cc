// estafetted: the supervisor. `estafetted -f [-c CONFIG]` runs in the foreground; without -f it
// detaches, and its first process waits until every daemon is up: exit 0 then, else 1 with the
// first daemon's own error on stderr (`estafette start` relies on it). Under systemd
// (Type=notify) it says READY=1 instead. It checks the config, creates the state directories,
// binds the listen addresses (supervisor/listeners.h), writes <state>/run/estafetted.pid
// and keeps courierd and esmtpd running (see supervisor.h): esmtpd_processes of them ("auto": one
// per CPU this process may run on, so `taskset -c 0 estafetted` runs one), each told with
// `--processes N` that it shares the listen addresses. <state>/run/estafetted.children says
// which children run (status_file.h). It binds the local submission socket
// <state>/run/submit.sock itself (lib/submit/socket.h) and passes it to every esmtpd process
// with `--submit-fd N`, so connections waiting there survive the death of any one esmtpd.
// SIGHUP (`estafette reload`): re-reads the config and replaces every daemon by one started with
// it (supervisor.h), keeping sockets, sessions and mail; the outcome goes to the log and to
// <state>/estafetted.reload (status_file.h). A failed reload changes nothing.
// Without -c it reads the installed config when it runs installed (config::default_config_path).
// With `user` set it stays root itself (it restarts esmtpd, which binds port 25 as root before
// dropping to the user) and gives the state directory, queue/ and run/ to that user before any
// daemon starts, so that every daemon can do its job (docs/architecture.md, "Privileges").
// lib/daemon/daemon.h runs it: these checks and detaching come before logging is set up (a
// failure exits 2 with the reason on the terminal).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lib/base/cpus.h"
#include "lib/base/exit_codes.h"
#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/base/log.h"
#include "lib/base/paths.h"
#include "lib/base/privileges.h"
#include "lib/base/safe_dir.h"
#include "lib/config/config.h"
#include "lib/daemon/daemon.h"
#include "lib/daemon/status_file.h"
#include "lib/submit/maildrop.h"
#include "lib/submit/socket.h"
#include "supervisor/listeners.h"
#include "supervisor/reload_rules.h"
#include "supervisor/supervisor.h"
#include "supervisor/systemd_notify.h"

using namespace estafette;

namespace {

void print_banner(const config::Config& c, const std::string& config_path,
                  std::size_t esmtpd_processes) {
  const auto& l = c.listen.front();
  std::string domain = c.local_domains.empty() ? "example.test" : c.local_domains.front();
  const bool lmtp = c.local_transport.lmtp();
  std::string where =
      lmtp ? "the LMTP server " + c.local_transport.to_string() : c.maildir_root + "/<user>/new/";
  std::string look = lmtp ? "alice's mailbox on the LMTP server" : c.maildir_root + "/alice/new/";
  std::printf(
      "Estafette is running (config: %s)\n"
      "  SMTP:    %s (%zu esmtpd process%s)\n"
      "  queue:   %s\n"
      "  mail for @%s goes to %s\n"
      "  routes:  %s\n"
      "  TLS:     %s\n"
      "  AUTH:    %s\n"
      "Send a test message from another shell:\n"
      "  swaks --server %s --port %u --to alice@%s --from you@%s\n"
      "or: python3 -c \"import smtplib; smtplib.SMTP('%s', %u).sendmail('you@%s', "
      "['alice@%s'], 'Subject: hi\\n\\nhello')\"\n"
      "then: look in %s\n"
      "Stop with Ctrl-C.\n",
      config_path.empty() ? "embedded default" : config_path.c_str(), l.to_string().c_str(),
      esmtpd_processes, esmtpd_processes == 1 ? "" : "es", c.queue_dir().c_str(), domain.c_str(),
      where.c_str(),
      c.routes.smarthost        ? ("smarthost " + c.routes.smarthost->to_string()).c_str()
      : c.relay_clients.empty() ? "no smarthost: mail for other domains is refused"
                                : "no smarthost: relay_clients' mail for other domains goes to "
                                  "their MX hosts",
      c.tls_cert_files.empty()
          ? "off (no tls_cert_file; README, \"TLS and submission\", turns it on)"
          : ("STARTTLS with " + c.tls_cert_files.front() +
             (c.tls_cert_files.size() > 1 ? " and others" : ""))
                .c_str(),
      c.auth_backend.empty() ? "off (no auth_backend: no submission port)" : c.auth_backend.c_str(),
      l.host.c_str(), l.port, domain.c_str(), domain.c_str(), l.host.c_str(), l.port,
      domain.c_str(), domain.c_str(), look.c_str());
  std::fflush(stdout);
}

std::size_t esmtpd_processes_of(const config::Config& c) {
  return config::resolve_processes(c.esmtpd_processes, base::usable_cpus());
}

std::vector<config::HostPort> listen_addresses(const config::Config& c) {
  std::vector<config::HostPort> out;
  for (const auto& l : c.listen) out.push_back(l.address());
  return out;
}

// The daemons of one config: courierd, then the esmtpd processes, each on its own sockets of
// `listeners` and all on the submission socket.
std::vector<supervisor::Program> programs_for(const config::Config& config,
                                              std::shared_ptr<supervisor::ListenerSet> listeners,
                                              int submit_fd) {
  supervisor::Program courierd;
  courierd.name = "estafette-courierd";
  courierd.drain_signal = SIGUSR2;  // let the deliveries in flight report, then exit
  courierd.drain_grace = std::chrono::seconds(75);
  const std::size_t processes = esmtpd_processes_of(config);
  supervisor::Program esmtpd;
  esmtpd.name = "estafette-esmtpd";
  esmtpd.args = {"--submit-fd", std::to_string(submit_fd)};
  esmtpd.copies = processes;
  esmtpd.pass_fds = {submit_fd};
  if (processes > 1)
    esmtpd.args.insert(esmtpd.args.end(), {"--processes", std::to_string(processes)});
  esmtpd.per_copy = [listeners](std::size_t copy, std::vector<std::string>& args,
                                std::vector<int>& fds) {
    auto mine = listeners->fds(copy);
    args.insert(args.end(), {"--listen-fds", supervisor::fd_list(mine)});
    fds.insert(fds.end(), mine.begin(), mine.end());
  };
  esmtpd.exited = [listeners](std::size_t copy) { listeners->release(copy); };
  esmtpd.overlap = true;
  esmtpd.drain_signal = SIGUSR2;  // stop accepting, let the sessions end
  // A drained esmtpd's sessions end by themselves: bounded by session_deadline.
  esmtpd.drain_grace = std::chrono::duration_cast<std::chrono::seconds>(config.session_deadline) +
                       std::chrono::seconds(60);
  // What estafette-sendmail kept in the maildrop while we were down. One at a time (two would
  // submit a file twice): a reload stops the old one (between files) before the new one starts.
  supervisor::Program pickup;
  pickup.name = "estafette-pickup";
  std::vector<supervisor::Program> programs = {courierd};
  // One estafette-filterhost per `module-isolated:` entry of `filters` (copy i runs the i-th),
  // before esmtpd, which connects to it per session. It takes over its socket path by rename, so
  // a reload starts the new ones first (overlap) and drains the old ones (their sessions end).
  std::vector<std::size_t> isolated;
  for (std::size_t i = 0; i < config.filters.size(); ++i)
    if (config.filters[i].kind == "module-isolated") isolated.push_back(i);
  if (!isolated.empty()) {
    supervisor::Program filterhost;
    filterhost.name = "estafette-filterhost";
    filterhost.copies = isolated.size();
    filterhost.per_copy = [isolated](std::size_t copy, std::vector<std::string>& args,
                                     std::vector<int>&) {
      args.insert(args.end(), {"--entry", std::to_string(isolated.at(copy - 1))});
    };
    filterhost.overlap = true;
    filterhost.drain_grace = esmtpd.drain_grace;  // its sessions are esmtpd's
    programs.push_back(filterhost);
  }
  programs.push_back(esmtpd);
  programs.push_back(pickup);
  // The metrics endpoint (last: stopped first); its successor binds metrics_listen after it.
  if (config.metrics_listen) {
    supervisor::Program metrics;
    metrics.name = "estafette-metrics";
    programs.push_back(metrics);
  }
  return programs;
}

// Waits (in the process `estafetted` was started as) for the detached estafetted to say whether
// every daemon came up: 0, or 1 with its reason on stderr.
int wait_for_detached(base::UniqueFd ready) {
  std::string bytes;
  const auto deadline =
      std::chrono::steady_clock::now() + supervisor::kStartTimeout + std::chrono::seconds(30);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{ready.get(), POLLIN, 0};
    int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr,
                   "estafetted: the daemons did not come up within %lld s (see the log "
                   "and `estafette status`)\n",
                   static_cast<long long>(supervisor::kStartTimeout.count() + 30));
      return base::kExitFatal;
    }
    char buf[256];
    ssize_t got = ::read(ready.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got > 0) bytes.append(buf, static_cast<std::size_t>(got));
    auto report = daemon::parse_ready_report(bytes, got <= 0);
    if (report.state == daemon::ReadyReport::State::Waiting) continue;
    if (report.state == daemon::ReadyReport::State::Ready) return base::kExitStopped;
    std::fprintf(stderr, "estafetted: %s\n",
                 report.error.empty() ? "stopped before the daemons were up (see its log)"
                                      : report.error.c_str());
    return base::kExitFatal;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<base::Account> account;
  base::UniqueFd submit;
  std::shared_ptr<supervisor::ListenerSet> listeners;
  const supervisor::SystemdNotifier systemd;  // before any child is started
  daemon::DaemonSpec spec{
      .program = "estafetted",
      .log_name = "estafetted",
      .usage = "[-f] [-c CONFIG]",
      .options = {.fd = false, .foreground = true},
      .default_config = true,
      .reload = true,
      .prepare = [&](daemon::Startup& s) -> std::optional<int> {
        const config::Config& config = s.config;
        if (!config.user.empty()) account = base::require_account(config.user, config.source);
        if (account && ::geteuid() != 0 && ::geteuid() != account->uid)
          throw std::runtime_error("user = " + account->name +
                                   ": start estafetted as root (it is uid " +
                                   std::to_string(::geteuid()) + ")");
        if (!base::make_dirs(config.state_dir))
          throw std::runtime_error("cannot create " + config.state_dir + ": " +
                                   std::strerror(errno));
        if (account && ::geteuid() == 0) {
          // The state directory is root's (an older run gave it to the user: taken back), so
          // the user cannot swap queue/, run/ or maildir/ for a symlink or a tree of its own;
          // maildir/ below it is estafette-local's (root's).
          base::give_to(config.state_dir, base::Account{"root", 0, 0}, false);
        }
        // Created without following a symlink (an older state directory was the user's).
        base::UniqueFd state(::open(config.state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!state)
          throw std::runtime_error("cannot open " + config.state_dir + ": " + std::strerror(errno));
        for (const char* sub : {"run", "queue", "mta-sts", "tlsrpt"}) {
          std::string why;
          if (!base::open_dir_at(state.get(), config.state_dir, sub,
                                 {.create = true, .trusted = false}, &why))
            throw std::runtime_error("cannot create " + config.state_dir + "/" + sub + ": " + why);
        }
        // Before detaching, so that a second instance fails here, on the terminal; so does an
        // address another program listens on.
        submit = estafette::submit::open_submit_socket(config);
        listeners = std::make_shared<supervisor::ListenerSet>(listen_addresses(config),
                                                              esmtpd_processes_of(config));
        listeners->bind_all();
        estafette::submit::open_maildrop(config);  // root's, 1733: lib/submit/maildrop.h
        if (account && ::geteuid() == 0) {
          // After the submission socket: a second instance has stopped by now. queue/, run/ and
          // mta-sts/ with everything in them (a queue left by a run as root).
          base::give_to(config.queue_dir(), *account, true);
          base::give_to(config.run_dir(), *account, true);
          base::give_to(config.mta_sts_dir(), *account, true);  // esmtpclient's policy cache
          base::give_to(config.tlsrpt_dir(), *account, true);   // its TLS report journals
        }
        if (!s.args.foreground) {
          int fds[2];
          if (::pipe2(fds, O_CLOEXEC) != 0) return base::kExitFatal;
          pid_t pid = ::fork();
          if (pid < 0) return base::kExitFatal;
          if (pid > 0) {
            ::close(fds[1]);
            return wait_for_detached(base::UniqueFd(fds[0]));
          }
          ::close(fds[0]);
          s.ready.reset(fds[1]);  // "ready" once every daemon is, or why not
          ::setsid();
          int null = ::open("/dev/null", O_RDWR);
          ::dup2(null, 0);
          ::dup2(null, 1);
          if (!config.log_file.empty()) ::dup2(null, 2);
          if (null > 2) ::close(null);
        }
        // Children log to the same place; with no log file they share our stderr.
        return std::nullopt;
      }};
  return daemon::run(argc, argv, spec, [&](daemon::Context& ctx) {
    const config::Config& config = ctx.config;
    std::string pidfile = config.run_dir() + "/estafetted.pid";
    // run/ is the user's: replaced, never written through a link planted there.
    if (!base::replace_file(pidfile, std::to_string(::getpid()) + "\n"))
      base::log("estafetted").error("cannot write " + pidfile + ": " + base::errno_text(errno));
    const std::size_t esmtpd_processes = esmtpd_processes_of(config);
    if (ctx.args.foreground) print_banner(config, ctx.config_path, esmtpd_processes);
    std::string status_file = config.run_dir() + "/estafetted.children";
    const std::string reload_file = config.state_dir + "/estafetted.reload";
    supervisor::Supervisor supervisor(ctx.loop, ctx.config_path, status_file);
    // RFC 8460: yesterday's TLS reports, once a day shortly after midnight UTC (while the
    // config, reloaded or not, says tls_reporting).
    supervisor.add_daily("estafette", {"tls-report"}, [&ctx] { return ctx.config.tls_reporting; });
    int status = base::kExitStopped;
    ctx.on_stop([&] { supervisor.stop(); });
    ctx.hold_ready();  // ready when the daemons are
    supervisor.start(programs_for(config, listeners, submit.get()),
                     [&](bool ok, const std::string& error) {
                       if (ok) {
                         base::log("estafetted").information("every daemon is up");
                         ctx.ready();
                         systemd.notify("READY=1\nSTATUS=every daemon is up");
                         return;
                       }
                       base::log("estafetted").critical("start failed: " + error);
                       ctx.failed(error);
                       systemd.notify("STATUS=start failed: " + error);
                       status = base::kExitFatal;
                       supervisor.stop();
                     });
    // Reload: the whole config again, and new daemons with it (supervisor.h). One at a time;
    // a SIGHUP during one runs another after it.
    std::uint64_t reloads = 0;
    bool reload_again = false;
    std::function<void()> reload = [&] {
      if (supervisor.busy()) {
        reload_again = true;
        return;
      }
      systemd.notify("RELOADING=1");
      base::log("estafetted")
          .information("SIGHUP: reloading " +
                       (ctx.config_path.empty() ? "the embedded default" : ctx.config_path));
      auto finish = [&](bool ok, const std::string& error) {
        daemon::ReloadResult r{::getpid(), ++reloads, ok, error};
        if (!base::replace_file(reload_file, daemon::format_reload(r), 0644))
          base::log("estafetted")
              .error("cannot write " + reload_file + ": " + base::errno_text(errno));
        if (ok)
          base::log("estafetted").information("reloaded: every daemon runs the new config");
        else
          base::log("estafetted").error("reload failed, the daemons keep the old config: " + error);
        systemd.notify(ok ? "READY=1\nSTATUS=reloaded" : "READY=1\nSTATUS=reload failed");
        if (std::exchange(reload_again, false)) ctx.loop.post(reload);
      };
      auto next = std::make_shared<config::Config>();
      std::shared_ptr<supervisor::ListenerSet> next_listeners;
      try {
        *next = config::load_config(ctx.config_path);
        auto fixed = supervisor::fixed_settings_changed(ctx.config, *next);
        if (!fixed.empty()) {
          std::string names;
          for (const auto& f : fixed) names += (names.empty() ? "" : ", ") + f;
          throw std::runtime_error("cannot change while running: " + names +
                                   "; use `estafette restart`");
        }
        next_listeners = listeners->successor(listen_addresses(*next), esmtpd_processes_of(*next));
        next_listeners->bind_all();
      } catch (const std::exception& e) {
        finish(false, e.what());
        return;
      }
      bool logging_changed = next->log_file != ctx.config.log_file ||
                             next->syslog != ctx.config.syslog ||
                             next->log_level != ctx.config.log_level;
      supervisor.replace(
          programs_for(*next, next_listeners, submit.get()),
          [&, finish, next, next_listeners, logging_changed](bool ok, const std::string& error) {
            if (ok) {
              ctx.config = *next;
              listeners = next_listeners;
              if (logging_changed) {
                try {
                  base::setup_logging(
                      {"estafetted", ctx.config.log_file, ctx.config.syslog, ctx.config.log_level});
                } catch (const std::exception& e) {
                  base::log("estafetted").error(e.what());
                }
              }
            }
            finish(ok, error);
          });
    };
    ctx.on_reload([&] { reload(); });
    ctx.run();
    ::unlink(status_file.c_str());
    ::unlink(pidfile.c_str());
    ::unlink(estafette::submit::submit_socket_path(config).c_str());
    base::log("estafetted").information("stopped");
    return status;
  });
}
