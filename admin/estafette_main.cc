// estafette: the admin command. `estafette COMMAND [-c CONFIG]`.
//   start   runs estafetted, which detaches once every daemon is up and listening: exit 0, or
//           1 with the first daemon's own error (estafetted prints it) and nothing left running
//   stop    sends SIGTERM to estafetted and waits until it has stopped every daemon
//   restart stop, then start
//   reload  sends SIGHUP to estafetted, which re-reads the config and every file it names and
//           replaces the daemons without dropping sessions or mail (supervisor/supervisor.h);
//           waits for its answer in <state>/estafetted.reload: exit 0, or 1 with the exact
//           error (the old config stays in force)
//   status  "running (pid N)" when estafetted runs, then one line per daemon it keeps (from
//           <state>/run/estafetted.children: starting, draining, or not running with why) and per
//           delivery module of courierd (from /proc); exit 0 when every daemon is up, 1 when one
//           is not, 3 when estafetted does not run
//   check-config [--strict]  loads the config and the files it names, checks what esmtpd checks
//           at start; "config OK: PATH" and exit 0, or every error as "file:line: reason" and
//           exit 1; warnings first ("warning: file:line: why"). --strict: more warnings (settings
//           without effect, alias targets without a mailbox, ignored lines), and any warning
//           makes the exit 1
//   settings  every estafette.conf setting with its default and a line of doc (lib/config's
//           settings table, which estafette.conf(5) documents)
//   mailq [--json]  the queue as courierd's scheduler holds it, then a per-destination summary
//           by age (qshape); when courierd does not run, the queue files read directly
//           (admin/offline_mailq.h); exit 75 (EX_TEMPFAIL) when courierd does not answer
//   flush [QUEUE-ID|DOMAIN]  courierd retries now: one message (an argument without '.', '['
//           or ':'), the mail for a domain or destination, or everything; exit 75 as mailq
//   hold|release|cancel|delete|flush --sender ADDR --rcpt-domain D --destination DEST
//           --older-than DURATION --reason TEXT  the messages matching every option given,
//           selected and acted on in one request inside courierd; a line per message, then the
//           count; exit 1 when none matched (lib/admin/commands.h)
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
//   newaliases  checks the aliases file as courierd and esmtpd load it ("file:line: reason",
//           exit 1, nothing reloaded), prints "PATH: N aliases", then has a running estafetted
//           reload (as `reload`) so that both use it; exit 75 when that reload cannot be made or
//           fails. Not running: exit 0 (the daemons read the file when they start). The
//           `newaliases` and `sendmail -bi` names run this (sendmail/sendmail_main.cc)
//   log QUEUE-ID... [--file PATH]  every log line of those messages and of the notices they
//           produced, oldest first, from log_file (or /var/log/mail.log) and its rotated copies
//           (admin/log.h). Exit 1: no line found
//   import-postfix [POSTFIX_DIR] OUT_DIR  translates a Postfix configuration (POSTFIX_DIR/main.cf,
//           default /etc/postfix, and the tables it names) into OUT_DIR/estafette.conf and the
//           files beside it, with a report of each setting (admin/import_postfix.h); reads no
//           config of ours, writes nothing but the new OUT_DIR. Exit 1: refused (why on stderr)
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admin/check_config.h"
#include "admin/import_postfix.h"
#include "admin/log.h"
#include "admin/mta_sts.h"
#include "admin/offline_mailq.h"
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
#include "lib/routing/router.h"

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

int usage(std::FILE* to = stderr) {
  std::fprintf(to,
               "usage: estafette start|stop|restart|reload|status [-c CONFIG]\n"
               "       estafette check-config [--strict] [-c CONFIG]\n"
               "       estafette mailq [--json] [-c CONFIG]\n"
               "       estafette flush [QUEUE-ID|DOMAIN] [-c CONFIG]\n"
               "       estafette hold|release|cancel|delete QUEUE-ID...|-|ALL [-c CONFIG]\n"
               "       estafette hold|release|cancel|delete|flush SELECTION... [-c CONFIG]\n"
               "         SELECTION: --sender ADDR|<> --rcpt-domain DOMAIN --destination DEST\n"
               "                    --older-than N{s,m,h,d} --reason TEXT (all must match)\n"
               "       estafette passwd [-c CONFIG | --file PATH] [--stdin]\n"
               "                        [--scheme crypt|scram-sha-256] [--delete] USER\n"
               "       estafette tls-policy DOMAIN... [-c CONFIG]\n"
               "       estafette log QUEUE-ID... [--file PATH] [-c CONFIG]\n"
               "       estafette mta-sts [--cached] DOMAIN [-c CONFIG]\n"
               "       estafette tls-report [--date YYYY-MM-DD] [--print] [-c CONFIG]\n"
               "       estafette newaliases [-c CONFIG]\n"
               "       estafette import-postfix [POSTFIX_DIR] OUT_DIR\n"
               "       estafette settings\n"
               "\n"
               "  start, stop, restart, status  run, stop, show estafetted and its daemons\n"
               "  reload         re-read the config and every file it names; replace the daemons\n"
               "  check-config   check the config and every file it names (file:line errors);\n"
               "                 --strict: warn about what has no effect, fail on warnings\n"
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
               "  newaliases     check the aliases file, then reload a running Estafette\n"
               "  import-postfix write an Estafette config from a Postfix one (default\n"
               "                 /etc/postfix) into the new OUT_DIR, with a report\n"
               "Exit 1: no such message (nothing selected); 75: courierd does not run (try again\n"
               "later); mailq reads the queue files when courierd does not run.\n"
               "start, reload: exit 1 with the reason; status: 1 a daemon is not up, 3 stopped.\n"
               "tls-policy: exit 0 DANE for every MX host, 1 not for some, 75 a lookup failed.\n");
  return 2;
}

int check_config(const std::string& path, bool strict) {
  auto r = admin::check_config(path, strict);
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
  for (const auto& e : r.errors) std::printf("%s\n", e.c_str());
  if (!r.errors.empty()) return 1;
  if (strict && !r.warnings.empty()) {
    std::printf("config has warnings (--strict): %s\n", r.source.c_str());
    return 1;
  }
  std::printf("config OK: %s\n", r.source.c_str());
  return 0;
}

// status: estafetted and each daemon it keeps. Exit 0 when every daemon runs and said it was
// ready, 1 when one is missing, starting, or restarting (with its reason), 3 when estafetted
// does not run (LSB).
int status(const config::Config& config, const std::string& pidfile) {
  pid_t pid = running_pid(pidfile);
  if (!pid) {
    std::printf("estafette: not running\n");
    return 3;
  }
  std::printf("estafette: running (pid %d)\n", pid);
  auto children = daemon::parse_status(slurp(config.run_dir() + "/estafetted.children"));
  bool whole = !children.empty();
  for (const auto& c : children) {
    std::string name = c.program;
    if (c.instances > 1)
      name += " " + std::to_string(c.instance) + "/" + std::to_string(c.instances);
    const bool alive = c.pid > 0 && ::kill(c.pid, 0) == 0;
    if (alive && c.state == daemon::ChildState::Draining) {
      std::printf("  %-26s pid %d draining (replaced by a reload)\n", name.c_str(), c.pid);
      continue;
    }
    if (!alive || c.state != daemon::ChildState::Running) whole = false;
    if (alive) {
      std::printf("  %-26s pid %d%s\n", name.c_str(), c.pid,
                  c.state == daemon::ChildState::Starting ? " starting" : "");
      for (pid_t m : children_of(c.pid))
        std::printf("    %-24s pid %d\n", program_of(m).c_str(), m);
    } else {
      std::printf("  %-26s not running%s%s\n", name.c_str(), c.note.empty() ? "" : ": ",
                  c.note.c_str());
    }
  }
  if (auto r = daemon::parse_reload(slurp(config.state_dir + "/estafetted.reload"));
      r && r->pid == pid && !r->ok)
    std::printf("estafette: the last reload failed: %s\n", r->error.c_str());
  if (!whole) std::printf("estafette: not every daemon is up\n");
  return whole ? 0 : 1;
}

// start: estafetted detaches once every daemon is up, or exits 1 with the first one's error on
// stderr (supervisor/estafetted_main.cc).
int start(const std::string& config_path, const std::string& pidfile) {
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
  int wstatus = 0;
  while (::waitpid(child, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    // estafetted reported the failure and is stopping what it started: wait for it to be gone
    // (it kills a daemon still running after 10 s), so that a `status` or `start` right after
    // this finds nothing running rather than the tail of this attempt.
    using namespace std::chrono_literals;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (running_pid(pidfile) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    std::fprintf(stderr, "estafette: not started\n");
    return 1;
  }
  pid_t pid = running_pid(pidfile);
  std::printf("estafette: started (pid %d)\n", pid);
  return 0;
}

// reload: SIGHUP to estafetted, then its answer from <state>/estafetted.reload.
int reload(const config::Config& config, const std::string& pidfile) {
  using namespace std::chrono_literals;
  pid_t pid = running_pid(pidfile);
  if (!pid) {
    std::fprintf(stderr, "estafette: not running\n");
    return 1;
  }
  const std::string result_file = config.state_dir + "/estafetted.reload";
  auto before = daemon::parse_reload(slurp(result_file));
  const std::uint64_t seen = before && before->pid == pid ? before->count : 0;
  ::kill(pid, SIGHUP);
  // courierd may take its drain time (75 s) and a queue scan.
  const auto deadline = std::chrono::steady_clock::now() + 420s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    auto r = daemon::parse_reload(slurp(result_file));
    if (r && r->pid == pid && r->count > seen) {
      if (r->ok) {
        std::printf("estafette: reloaded (pid %d)\n", pid);
        return 0;
      }
      std::fprintf(stderr, "estafette: reload failed, nothing changed: %s\n", r->error.c_str());
      return 1;
    }
    if (::kill(pid, 0) != 0) {
      std::fprintf(stderr, "estafette: estafetted stopped during the reload (see its log)\n");
      return 1;
    }
  }
  std::fprintf(stderr, "estafette: no answer to the reload within 420 s (see the log)\n");
  return 1;
}

// newaliases: the aliases file checked as the daemons load it, then a reload when they run.
int newaliases(const config::Config& config, const std::string& pidfile) {
  if (config.aliases.path.empty()) {
    std::printf("estafette newaliases: no aliases file (the aliases setting of %s)\n",
                config.source.c_str());
    return 0;
  }
  std::shared_ptr<const routing::Router> router;
  try {
    router = routing::Router::load(config);
  } catch (const std::exception& e) {  // ConfigError "file:line: reason", an unreadable file
    std::fprintf(stderr, "estafette newaliases: %s\n", e.what());
    return 1;
  }
  std::printf("%s: %zu aliases\n", config.aliases.path.c_str(), router->alias_count());
  pid_t pid = running_pid(pidfile);
  if (!pid) {
    std::printf(
        "estafette newaliases: Estafette is not running; it reads the aliases when it "
        "starts\n");
    return 0;
  }
  if (::kill(pid, 0) != 0 && errno == EPERM) {
    std::fprintf(stderr,
                 "estafette newaliases: cannot make estafetted (pid %d) reload: not permitted "
                 "(run newaliases or `estafette reload` as root)\n",
                 pid);
    return base::kExTempFail;
  }
  return reload(config, pidfile) == 0 ? 0 : base::kExTempFail;
}

int stop(const std::string& pidfile) {
  using namespace std::chrono_literals;
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
  if (cmd == "import-postfix") {  // reads Postfix's files, not ours
    if (argc == 3) return admin::postfix::import_postfix("/etc/postfix", argv[2], stdout, stderr);
    if (argc == 4) return admin::postfix::import_postfix(argv[2], argv[3], stdout, stderr);
    return usage();
  }
  std::string config_path;
  bool json = false;
  bool cached_only = false;  // mta-sts --cached
  bool strict = false;       // check-config --strict
  admin::TlsReportOptions tls_report;
  admin::PasswdOptions passwd;
  std::string log_path;  // log --file
  std::vector<std::string> operands;
  std::vector<std::pair<std::string, std::string>> selection_args;  // --sender ADDR, ...
  const bool queue_command =
      cmd == "hold" || cmd == "release" || cmd == "cancel" || cmd == "delete" || cmd == "flush";
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc)
      config_path = argv[++i];
    else if (a == "--json" && cmd == "mailq")
      json = true;
    else if (cmd == "check-config" && a == "--strict")
      strict = true;
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
    else if (queue_command && admin::is_selection_option(a) && i + 1 < argc) {
      selection_args.emplace_back(std::string(a), argv[i + 1]);
      ++i;
    } else if (cmd == "flush" && operands.empty() && !a.empty() && a[0] != '-')
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
  if (cmd == "check-config") return check_config(config_path, strict);
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

  if (queue_command && !selection_args.empty()) {  // one request, selected inside courierd
    std::string why;
    auto selection = admin::parse_selection(selection_args, &why);
    if (selection && !operands.empty()) why = "a selection takes no queue ids, - or ALL besides";
    if (!selection || !operands.empty()) {
      std::fprintf(stderr, "estafette %s: %s\n", std::string(cmd).c_str(), why.c_str());
      return usage();
    }
    ipc::QueueSelectRequest request;
    request.op = cmd == "hold"      ? ipc::QueueOp::Hold
                 : cmd == "release" ? ipc::QueueOp::Release
                 : cmd == "cancel"  ? ipc::QueueOp::Cancel
                 : cmd == "delete"  ? ipc::QueueOp::Delete
                                    : ipc::QueueOp::Flush;
    request.selection = *selection;
    try {
      return admin::queue_select(config, request, stdout, stderr);
    } catch (const std::exception& e) {  // CourierdDown, a timeout: try again later
      std::fprintf(stderr, "estafette: %s\n", e.what());
      return base::kExTempFail;
    }
  }

  if (cmd == "mailq") {
    try {
      return admin::mailq(config, json, stdout);
    } catch (const admin::CourierdDown&) {  // read the queue files instead
      try {
        return admin::offline_mailq(config, json, stdout, stderr);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "estafette: mailq: %s\n", e.what());
        return base::kExTempFail;
      }
    } catch (const std::exception& e) {  // a timeout: try again later
      std::fprintf(stderr, "estafette: %s\n", e.what());
      return base::kExTempFail;
    }
  }

  if (cmd == "flush") {
    try {
      return admin::flush(config, operands.empty() ? "" : operands[0], stdout);
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

  if (cmd == "status") return status(config, pidfile);
  if (cmd == "start") return start(config_path, pidfile);
  if (cmd == "reload") return reload(config, pidfile);
  if (cmd == "newaliases") return newaliases(config, pidfile);
  if (cmd == "stop") return stop(pidfile);
  if (cmd == "restart") {
    int stopped = stop(pidfile);
    return stopped != 0 ? stopped : start(config_path, pidfile);
  }
  return usage();
}
