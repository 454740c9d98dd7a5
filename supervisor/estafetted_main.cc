// estafetted: the supervisor. `estafetted -f [-c CONFIG]` runs in the foreground; without -f it
// detaches. It checks the config, creates the state directories, writes <state>/run/estafetted.pid
// and keeps courierd and esmtpd running (see supervisor.h): esmtpd_processes of them ("auto": one
// per CPU this process may run on, so `taskset -c 0 estafetted` runs one), each told with
// `--processes N` that it shares the listen addresses. <state>/run/estafetted.children says
// which children run (status_file.h). It binds the local submission socket
// <state>/run/submit.sock itself (lib/submit/socket.h) and passes it to every esmtpd process
// with `--submit-fd N`, so connections waiting there survive the death of any one esmtpd.
// Without -c it reads the installed config when it runs installed (config::default_config_path).
// With `user` set it stays root itself (it restarts esmtpd, which binds port 25 as root before
// dropping to the user) and gives the state directory, queue/ and run/ to that user before any
// daemon starts, so that every daemon can do its job (docs/architecture.md, "Privileges").
// lib/daemon/daemon.h runs it: these checks and detaching come before logging is set up (a
// failure exits 2 with the reason on the terminal).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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
#include "lib/submit/socket.h"
#include "supervisor/supervisor.h"

using namespace estafette;

namespace {

void print_banner(const config::Config& c, const std::string& config_path,
                  std::size_t esmtpd_processes) {
  const auto& l = c.listen.front();
  std::string domain = c.local_domains.empty() ? "example.test" : c.local_domains.front();
  std::printf(
      "Estafette is running (config: %s)\n"
      "  SMTP:    %s (%zu esmtpd process%s)\n"
      "  queue:   %s\n"
      "  mail for @%s goes to %s/<user>/new/\n"
      "  routes:  %s\n"
      "  TLS:     %s\n"
      "  AUTH:    %s\n"
      "Send a test message from another shell:\n"
      "  swaks --server %s --port %u --to alice@%s --from you@%s\n"
      "or: python3 -c \"import smtplib; smtplib.SMTP('%s', %u).sendmail('you@%s', "
      "['alice@%s'], 'Subject: hi\\n\\nhello')\"\n"
      "then: ls %s/alice/new/\n"
      "Stop with Ctrl-C.\n",
      config_path.empty() ? "embedded default" : config_path.c_str(), l.to_string().c_str(),
      esmtpd_processes, esmtpd_processes == 1 ? "" : "es", c.queue_dir().c_str(), domain.c_str(),
      c.maildir_root.c_str(),
      c.routes.smarthost ? ("smarthost " + c.routes.smarthost->to_string()).c_str()
                         : "no smarthost: mail for other domains is refused",
      c.tls_cert_files.empty()
          ? "off (no tls_cert_file; README, \"TLS and submission\", turns it on)"
          : ("STARTTLS with " + c.tls_cert_files.front() +
             (c.tls_cert_files.size() > 1 ? " and others" : ""))
                .c_str(),
      c.auth_backend.empty() ? "off (no auth_backend: no submission port)" : c.auth_backend.c_str(),
      l.host.c_str(), l.port, domain.c_str(), domain.c_str(), l.host.c_str(), l.port,
      domain.c_str(), domain.c_str(), c.maildir_root.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<base::Account> account;
  base::UniqueFd submit;
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
        // Before detaching, so that a second instance fails here, on the terminal.
        submit = estafette::submit::open_submit_socket(config);
        if (account && ::geteuid() == 0) {
          // After the submission socket: a second instance has stopped by now. queue/, run/ and
          // mta-sts/ with everything in them (a queue left by a run as root).
          base::give_to(config.queue_dir(), *account, true);
          base::give_to(config.run_dir(), *account, true);
          base::give_to(config.mta_sts_dir(), *account, true);  // esmtpclient's policy cache
          base::give_to(config.tlsrpt_dir(), *account, true);   // its TLS report journals
        }
        if (!s.args.foreground) {
          pid_t pid = ::fork();
          if (pid < 0) return base::kExitFatal;
          if (pid > 0) return base::kExitStopped;
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
    const std::size_t esmtpd_processes =
        config::resolve_processes(config.esmtpd_processes, base::usable_cpus());
    if (ctx.args.foreground) print_banner(config, ctx.config_path, esmtpd_processes);
    std::vector<supervisor::Program> programs = {{"estafette-courierd", {}, 1, {}}};
    std::vector<std::string> esmtpd_args = {"--submit-fd", std::to_string(submit.get())};
    if (esmtpd_processes > 1)
      esmtpd_args.insert(esmtpd_args.end(), {"--processes", std::to_string(esmtpd_processes)});
    programs.push_back({"estafette-esmtpd", esmtpd_args, esmtpd_processes, {submit.get()}});
    if (config.metrics_listen) programs.push_back({"estafette-metrics", {}, 1, {}});  // stops first
    std::string status_file = config.run_dir() + "/estafetted.children";
    supervisor::Supervisor supervisor(ctx.loop, std::move(programs), ctx.config_path, status_file);
    // RFC 8460: yesterday's TLS reports, once a day shortly after midnight UTC.
    if (config.tls_reporting) supervisor.add_daily("estafette", {"tls-report"});
    ctx.on_stop([&] { supervisor.stop(); });
    ctx.on_reload([&] {  // reload: the daemons re-read their maps (aliases, ...)
      base::log("estafetted").information("SIGHUP: reloading the daemons' maps");
      supervisor.signal_children(SIGHUP);
    });
    supervisor.start();
    ctx.run();
    ::unlink(status_file.c_str());
    ::unlink(pidfile.c_str());
    ::unlink(estafette::submit::submit_socket_path(config).c_str());
    base::log("estafetted").information("stopped");
    return base::kExitStopped;
  });
}
