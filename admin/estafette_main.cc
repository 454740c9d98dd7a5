// estafette: the admin command. `estafette COMMAND [-c CONFIG]`.
//   start   runs estafetted in the background and waits until it has written its pid file
//   stop    sends SIGTERM to estafetted and waits until it has stopped every daemon
//   reload  sends SIGHUP to estafetted: esmtpd, courierd and estafette-local reload the routing
//           maps (aliases, locals, hosteddomains, hosted_mailboxes); a broken file is logged
//           with file:line and the old maps stay
//   status  exit 0 and "running (pid N)" when estafetted runs, then one line per daemon it keeps
//           (from <state>/run/estafetted.children) and per delivery module of courierd (from
//           /proc); exit 3 when estafetted does not run
//   check-config  loads the config and the files it names, checks what esmtpd checks at start;
//           "config OK: PATH" and exit 0, or every error as "file:line: reason" and exit 1
//   settings  every estafette.conf setting with its default and a line of doc (lib/config's
//           settings table, which estafette.conf(5) documents)
//   mailq [--json]  the queue as courierd's scheduler holds it, then a per-destination summary
//           by age (qshape); exit 75 (EX_TEMPFAIL) when courierd does not run
//   flush [QUEUE-ID|DOMAIN]  courierd retries now: one message (an argument without '.', '['
//           or ':'), the mail for a domain or destination, or everything; exit 75 as mailq
//   hold|release|cancel|delete QUEUE-ID...|-|ALL  put on hold (not delivered, not expired,
//           kept across restarts) / make deliverable again / bounce to the sender / remove
//           without a bounce: several ids, ids on stdin ("-"), or ALL (--all) at once in
//           courierd (lib/admin/commands.h). Exit 1 for an id not in the queue, 75 as mailq
//   passwd [--file PATH] [--stdin] [--scheme crypt|scram-sha-256] [--delete] USER  sets (adds
//           or replaces) USER's password in the `file:` auth backend's passwd file (--file, else
//           the config's auth_backend), read twice from the terminal without echo or
//           once from standard input; --scheme scram-sha-256 writes a SCRAM-SHA-256 secret
//           instead of a crypt(3) hash; --delete removes USER (admin/passwd.h). Exit 1 refused.
//   tls-policy DOMAIN...  per MX host of each domain, through dns_servers: whether the MX RRset
//           and the host are DNSSEC-secure, its TLSA records, and whether DANE applies
//           (admin/tls_policy.h). Exit 0: DANE for every MX host; 1: not for some; 75: a lookup
//           failed (a DANE delivery would be deferred)
//   mta-sts [--cached] DOMAIN  the MTA-STS policy for mail to DOMAIN: looked up and fetched (or
//           cached) as esmtpclient would, or only the cache; exit 0 a policy, 1 none published,
//           3 none to be had (DNS or fetch failed, none cached), 2 usage (admin/mta_sts.h)
//   tls-report [--date YYYY-MM-DD] [--print]  mails the SMTP TLS reports (RFC 8460) of the days
//           esmtpclient counted (tls_reporting = yes) to each domain's _smtp._tls rua, or prints
//           them; estafetted runs it once a day (admin/tls_report.h). Exit 75: kept for later
//   log QUEUE-ID... [--file PATH]  every log line of those messages and of the notices they
//           produced, oldest first, from log_file (or /var/log/mail.log) and its rotated copies
//           (admin/log.h). Exit 1: no line found
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admin/check_config.h"
#include "admin/log.h"
#include "admin/mta_sts.h"
#include "admin/passwd.h"
#include "admin/tls_policy.h"
#include "admin/tls_report.h"
#include "lib/admin/commands.h"
#include "lib/admin/courierd_client.h"
#include "lib/admin/mailq_format.h"
#include "lib/base/exit_codes.h"
#include "lib/base/paths.h"
#include "lib/config/config.h"
#include "lib/config/settings.h"
#include "lib/daemon/status_file.h"
#include "lib/ipc/messages.h"

using namespace estafette;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The program name of a running process (argv[0] without its directory).
std::string program_of(pid_t pid) {
  std::string cmdline = slurp("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
  return argv0.substr(argv0.rfind('/') + 1);
}

// The pid of the running estafetted, or 0. run/ belongs to the unprivileged user when `user`
// is set, so the pid file is not trusted alone: the process must be an estafetted owned by root
// or by us, never a process the file's writer could have put there for root to signal.
pid_t running_pid(const std::string& pidfile) {
  std::ifstream in(pidfile);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  if (::kill(pid, 0) != 0) return 0;
  struct stat st;
  if (::stat(("/proc/" + std::to_string(pid)).c_str(), &st) != 0) return 0;
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) return 0;
  return program_of(pid) == "estafetted" ? pid : 0;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::istringstream in(
      slurp("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  std::vector<pid_t> out;
  for (pid_t child; in >> child;) out.push_back(child);
  return out;
}

// One line per daemon estafetted keeps, and per module under each (courierd's children).
void print_children(const std::string& status_file) {
  for (const auto& c : daemon::parse_status(slurp(status_file))) {
    std::string name = c.program;
    if (c.instances > 1)
      name += " " + std::to_string(c.instance) + "/" + std::to_string(c.instances);
    if (c.pid > 0 && ::kill(c.pid, 0) == 0) {
      std::printf("  %-26s pid %d\n", name.c_str(), c.pid);
      for (pid_t m : children_of(c.pid))
        std::printf("    %-24s pid %d\n", program_of(m).c_str(), m);
    } else {
      std::printf("  %-26s not running%s%s\n", name.c_str(), c.note.empty() ? "" : ": ",
                  c.note.c_str());
    }
  }
}

int usage(std::FILE* to = stderr) {
  std::fprintf(to,
               "usage: estafette start|stop|reload|status|check-config [-c CONFIG]\n"
               "       estafette mailq [--json] [-c CONFIG]\n"
               "       estafette flush [QUEUE-ID|DOMAIN] [-c CONFIG]\n"
               "       estafette hold|release|cancel|delete QUEUE-ID...|-|ALL [-c CONFIG]\n"
               "       estafette passwd [-c CONFIG | --file PATH] [--stdin]\n"
               "                        [--scheme crypt|scram-sha-256] [--delete] USER\n"
               "       estafette tls-policy DOMAIN... [-c CONFIG]\n"
               "       estafette log QUEUE-ID... [--file PATH] [-c CONFIG]\n"
               "       estafette mta-sts [--cached] DOMAIN [-c CONFIG]\n"
               "       estafette tls-report [--date YYYY-MM-DD] [--print] [-c CONFIG]\n"
               "       estafette settings\n"
               "\n"
               "  start, stop, status  run, stop, show estafetted and its daemons\n"
               "  check-config   check the config and every file it names (file:line errors)\n"
               "  settings       every setting of estafette.conf, its default and what it does\n"
               "  mailq          the queue, then a summary per destination by age; --json\n"
               "  flush          retry now: one message, a domain or destination, or all\n"
               "  hold           keep messages from delivery and expiry until released\n"
               "  release        make held messages deliverable again, at once\n"
               "  cancel         bounce a message to its sender (\"cancelled by the "
               "administrator\")\n"
               "  delete         remove a message without a bounce\n"
               "  passwd         set (--delete: remove) a user of an auth_backend file\n"
               "  tls-policy     DNSSEC and TLSA (DANE) of each MX host, through dns_servers\n"
               "  mta-sts        the MTA-STS policy of a domain (exit 0 one, 1 none, 3 unknown)\n"
               "  tls-report     mail (--print: show) the TLS reports of past days, or of --date\n"
               "  log            the log lines of messages and of their notices, oldest first\n"
               "Exit 1: no such message; 75: courierd does not run (try again later).\n"
               "tls-policy: exit 0 DANE for every MX host, 1 not for some, 75 a lookup failed.\n");
  return 2;
}

int check_config(const std::string& path) {
  auto r = admin::check_config(path);
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
  for (const auto& e : r.errors) std::printf("%s\n", e.c_str());
  if (!r.errors.empty()) return 1;
  std::printf("config OK: %s\n", r.source.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string_view cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  if (cmd == "settings") {  // the table itself: no config is read
    if (argc != 2) return usage();
    std::fputs(config::settings_listing().c_str(), stdout);
    return 0;
  }
  std::string config_path;
  bool json = false;
  bool cached_only = false;  // mta-sts --cached
  admin::TlsReportOptions tls_report;
  admin::PasswdOptions passwd;
  std::string log_path;  // log --file
  std::vector<std::string> operands;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc)
      config_path = argv[++i];
    else if (a == "--json" && cmd == "mailq")
      json = true;
    else if (cmd == "passwd" && a == "--file" && i + 1 < argc)
      passwd.file = argv[++i];
    else if (cmd == "passwd" && a == "--stdin")
      passwd.from_stdin = true;
    else if (cmd == "passwd" && a == "--scheme" && i + 1 < argc) {
      std::string scheme = argv[++i];
      if (scheme != "crypt" && scheme != "scram-sha-256") return usage();
      passwd.scram = scheme == "scram-sha-256";
    } else if (cmd == "passwd" && a == "--delete")
      passwd.remove = true;
    else if (cmd == "passwd" && passwd.user.empty() && !a.empty() && a[0] != '-')
      passwd.user = a;
    else if (cmd == "flush" && operands.empty() && !a.empty() && a[0] != '-')
      operands.emplace_back(a);
    else if (cmd == "tls-policy" && !a.empty() && a[0] != '-')
      operands.emplace_back(a);
    else if (cmd == "tls-report" && a == "--date" && i + 1 < argc)
      tls_report.date = argv[++i];
    else if (cmd == "tls-report" && a == "--print")
      tls_report.print = true;
    else if (cmd == "mta-sts" && a == "--cached")
      cached_only = true;
    else if (cmd == "mta-sts" && operands.empty() && !a.empty() && a[0] != '-')
      operands.emplace_back(a);
    else if (cmd == "log" && a == "--file" && i + 1 < argc)
      log_path = argv[++i];
    else if (cmd == "log" && !a.empty() && a[0] != '-')
      operands.emplace_back(a);
    else if ((cmd == "hold" || cmd == "release" || cmd == "cancel" || cmd == "delete") &&
             (a == "--all" || a == "-" || (!a.empty() && a[0] != '-')))
      operands.emplace_back(a);
    else
      return usage();
  }
  if (config_path.empty()) config_path = config::default_config_path();
  if (cmd == "passwd") {  // --file, else the config's auth_backend = file:PATH
    if (passwd.user.empty()) return usage();
    if (passwd.file.empty()) {
      std::string backend;
      try {
        backend = config::load_config(config_path).auth_backend;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "estafette: %s\n", e.what());
        return 2;
      }
      if (!backend.starts_with("file:")) {
        std::fprintf(stderr,
                     "estafette passwd: %s has no auth_backend = file:PATH; name the file with "
                     "--file PATH\n",
                     config_path.c_str());
        return 2;
      }
      passwd.file = backend.substr(5);
    }
    return admin::passwd(passwd, stdout, stderr);
  }
  if (cmd == "check-config") return check_config(config_path);
  if (cmd == "log" && operands.empty()) return usage();
  if (cmd == "log" && !log_path.empty()) return admin::show_log(operands, log_path, stdout, stderr);
  config::Config config;
  try {
    config = config::load_config(config_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estafette: %s\n", e.what());
    return 2;
  }
  if (cmd == "mta-sts") {
    if (operands.size() != 1) return usage();
    return admin::mta_sts(config, operands[0], cached_only, stdout, stderr);
  }
  if (cmd == "tls-report") return admin::tls_report(config, tls_report, stdout, stderr);
  if (cmd == "log")  // without log_file, the daemons log to syslog (mail) or stderr
    return admin::show_log(
        operands, config.log_file.empty() ? "/var/log/mail.log" : config.log_file, stdout, stderr);
  std::string pidfile = config.run_dir() + "/estafetted.pid";
  using namespace std::chrono_literals;

  if (cmd == "mailq" || cmd == "flush") {
    try {
      return cmd == "mailq" ? admin::mailq(config, json, stdout)
                            : admin::flush(config, operands.empty() ? "" : operands[0], stdout);
    } catch (const std::exception& e) {  // CourierdDown, a timeout: try again later
      std::fprintf(stderr, "estafette: %s\n", e.what());
      return base::kExTempFail;
    }
  }

  if (cmd == "hold" || cmd == "release" || cmd == "cancel" || cmd == "delete") {
    std::string why;
    auto requests = admin::queue_op_requests(cmd, operands, std::cin, &why);
    if (!requests) {
      std::fprintf(stderr, "estafette %s: %s\n", std::string(cmd).c_str(), why.c_str());
      return usage();
    }
    try {
      return admin::queue_op(config, *requests, stdout, stderr);
    } catch (const std::exception& e) {  // CourierdDown, a timeout: try again later
      std::fprintf(stderr, "estafette: %s\n", e.what());
      return base::kExTempFail;
    }
  }

  if (cmd == "tls-policy") {
    if (operands.empty()) return usage();
    try {
      return admin::tls_policy(config, operands, stdout);
    } catch (const std::exception& e) {  // the resolver could not be set up
      std::fprintf(stderr, "estafette: %s\n", e.what());
      return base::kExTempFail;
    }
  }

  if (cmd == "status") {
    pid_t pid = running_pid(pidfile);
    if (pid) {
      std::printf("estafette: running (pid %d)\n", pid);
      print_children(config.run_dir() + "/estafetted.children");
    } else {
      std::printf("estafette: not running\n");
    }
    return pid ? 0 : 3;
  }
  if (cmd == "start") {
    if (pid_t pid = running_pid(pidfile)) {
      std::printf("estafette: already running (pid %d)\n", pid);
      return 0;
    }
    ::unlink(pidfile.c_str());
    std::string daemon = base::program_path("estafetted");
    pid_t child = ::fork();
    if (child == 0) {
      if (config_path.empty())
        ::execl(daemon.c_str(), daemon.c_str(), nullptr);
      else
        ::execl(daemon.c_str(), daemon.c_str(), "-c", config_path.c_str(), nullptr);
      std::fprintf(stderr, "estafette: cannot run %s: %s\n", daemon.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(child, &status, 0);  // estafetted forks and its parent exits at once
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    for (int i = 0; i < 100; ++i) {
      if (pid_t pid = running_pid(pidfile)) {
        std::printf("estafette: started (pid %d)\n", pid);
        return 0;
      }
      std::this_thread::sleep_for(50ms);
    }
    std::fprintf(stderr, "estafette: estafetted did not start (see its log)\n");
    return 1;
  }
  if (cmd == "reload") {  // the daemons re-read their maps; errors go to the log
    pid_t pid = running_pid(pidfile);
    if (!pid) {
      std::fprintf(stderr, "estafette: not running\n");
      return 1;
    }
    ::kill(pid, SIGHUP);
    std::printf("estafette: reload signalled (pid %d)\n", pid);
    return 0;
  }
  if (cmd == "stop") {
    pid_t pid = running_pid(pidfile);
    if (!pid) {
      std::printf("estafette: not running\n");
      return 0;
    }
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      if (::kill(pid, 0) != 0) {
        std::printf("estafette: stopped\n");
        return 0;
      }
      std::this_thread::sleep_for(50ms);
    }
    std::fprintf(stderr, "estafette: pid %d did not stop within 15 s\n", pid);
    return 1;
  }
  return usage();
}
