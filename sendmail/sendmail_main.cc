// estafette-sendmail: sendmail(8)-compatible mail injection. Reads a message on stdin (or, with
// -bs, speaks SMTP on stdin/stdout) and hands it to esmtpd over the local submission socket
// <state_dir>/run/submit.sock, so that every message goes through the same queue writer as mail
// from the network. Exit 0 only after esmtpd's 250 to the message (durable in the queue), or
// once the message is durably kept in <state>/maildrop/ because esmtpd did not answer (no socket,
// refused, no greeting: nothing was sent; estafette-pickup submits it later as this user,
// lib/submit/maildrop.h); on failure a message on stderr and a sysexits(3) code
// (lib/submit/client.h). Options: options.h.
// The configuration is -C FILE, else the installed estafette.conf if it exists, else the embedded
// default (as the daemons without -c).
// Installed as `mailq` or `newaliases` too (links, configure --enable-sendmail-names), it runs
// `estafette mailq` / `estafette newaliases`, as -bp / -bi do.
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "lib/admin/commands.h"
#include "lib/base/fd.h"
#include "lib/base/paths.h"
#include "lib/config/config.h"
#include "lib/submit/client.h"
#include "lib/submit/maildrop.h"
#include "lib/submit/socket.h"
#include "sendmail/message.h"
#include "sendmail/options.h"

using namespace estafette;
using namespace estafette::sendmail;
using namespace estafette::submit;

namespace {

constexpr const char* kUsage =
    "usage: estafette-sendmail [-t] [-i|-oi] [-f sender] [-F fullname] [-C config] [-bm|-bs]\n"
    "                          [--] [recipient ...]\n"
    "       estafette-sendmail -bp [-C config]              (the queue, as estafette mailq)\n"
    "       estafette-sendmail -bi [-C config]   (check aliases, reload: estafette newaliases)\n"
    "       estafette-sendmail -q[Rsite|Iid] [-C config]   (run the queue, as estafette flush)\n";

int fail(int code, const std::string& why) {
  std::fprintf(stderr, "estafette-sendmail: %s\n", why.c_str());
  return code;
}

std::string login_name() {
  uid_t uid = ::getuid();
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found) return pw.pw_name;
  return "uid" + std::to_string(uid);
}

std::string message_id(const std::string& hostname) {
  std::timespec ts{};
  std::timespec_get(&ts, TIME_UTC);
  std::random_device rd;
  char buf[96];
  std::snprintf(buf, sizeof buf, "<%lld.%09ld.%d.%08x@", static_cast<long long>(ts.tv_sec),
                static_cast<long>(ts.tv_nsec), static_cast<int>(::getpid()), rd());
  return buf + hostname + ">";
}

// How long sendmail waits for esmtpd's greeting before it keeps the message in the maildrop.
// At most kGreetingTimeout (smtpd_timeout when that is shorter).
constexpr std::chrono::seconds kGreetingTimeout{30};

// esmtpd does not answer: the message goes into the maildrop, for estafette-pickup to submit
// as this user once the MTA runs (lib/submit/maildrop.h). EX_TEMPFAIL when even that fails.
int keep(const config::Config& config, const Submission& s, const std::string& why) {
  // What estafette-pickup would refuse is refused now, while the user is there to see it.
  const auto limits = maildrop_limits(config);
  if (s.wire.size() > limits.max_wire)
    return fail(kExDataErr, "message too big (max_message_size is " +
                                std::to_string(config.max_message_size) + " bytes)");
  if (s.recipients.size() > limits.max_recipients)
    return fail(kExUsage, "more than " + std::to_string(limits.max_recipients) + " recipients");
  MaildropEntry entry{s.sender, s.recipients, s.eight_bit, std::string(s.wire)};
  std::string name;
  std::string error = write_maildrop(maildrop_dir(config), entry, &name);
  if (!error.empty())
    return fail(kExTempFail, "cannot connect to esmtpd (" + why +
                                 "; is Estafette running?) and cannot keep the message: " + error);
  std::fprintf(stderr,
               "estafette-sendmail: esmtpd is not answering (%s); the message was kept in %s/%s "
               "and will be sent when Estafette runs\n",
               why.c_str(), maildrop_dir(config).c_str(), name.c_str());
  return kExOk;
}

// mailq and newaliases are the admin tool's (`estafette mailq` reads the queue files when
// courierd does not run; `estafette newaliases` reloads the daemons), as Postfix's sendmail
// runs postqueue: this process becomes `estafette COMMAND [-c CONFIG]`.
int run_admin_tool(const char* command, const std::string& config_path) {
  const std::string tool = base::sbin_program_path("estafette");
  std::vector<const char*> argv = {tool.c_str(), command};
  if (!config_path.empty()) {
    argv.push_back("-c");
    argv.push_back(config_path.c_str());
  }
  argv.push_back(nullptr);
  ::execv(tool.c_str(), const_cast<char* const*>(argv.data()));
  return fail(kExUnavailable, "cannot run " + tool + ": " + std::strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--help") {
    std::fputs(kUsage, stdout);
    return kExOk;
  }
  auto parsed = parse_options(args, argv[0]);
  if (!parsed.options) {
    std::fprintf(stderr, "estafette-sendmail: %s\n%s", parsed.error.c_str(), kUsage);
    return kExUsage;
  }
  const Options& opt = *parsed.options;
  if (opt.mode == Mode::ListQueue) return run_admin_tool("mailq", opt.config_path);
  if (opt.mode == Mode::NewAliases) return run_admin_tool("newaliases", opt.config_path);
  config::Config config;
  try {
    config = config::load_config(opt.config_path.empty() ? config::default_config_path()
                                                         : opt.config_path);
  } catch (const std::exception& e) {
    return fail(kExConfig, e.what());
  }
  if (opt.mode == Mode::Flush) {
    try {
      return admin::flush(config, opt.flush_target, stdout);
    } catch (const std::exception& e) {  // courierd not running, a timeout
      return fail(kExTempFail, e.what());
    }
  }
  const std::string socket_path = submit::submit_socket_path(config);
  const auto timeout = config.smtpd_timeout;
  auto connect = [&]() -> base::UniqueFd {
    auto fd = connect_submit(socket_path, timeout);
    if (!fd)
      std::fprintf(stderr,
                   "estafette-sendmail: cannot connect to esmtpd at %s: %s (is Estafette "
                   "running?)\n",
                   socket_path.c_str(), std::strerror(errno));
    return fd;
  };

  if (opt.mode == Mode::Smtp) {
    auto fd = connect();
    if (!fd) {
      std::printf("421 4.3.0 %s Local mail system unavailable, try again later\r\n",
                  config.hostname.c_str());
      return kExTempFail;
    }
    return proxy(STDIN_FILENO, STDOUT_FILENO, fd.get());
  }

  MessageInput input(opt.ignore_dots);
  char buf[65536];
  // Read no more than the server would take, plus room for the header lines we add.
  const std::size_t limit = config.max_message_size + 64 * 1024;
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(kExIoErr, std::string("reading the message: ") + std::strerror(errno));
    if (n == 0) {
      input.finish();
      break;
    }
    if (input.feed(std::string_view(buf, static_cast<std::size_t>(n)))) break;
    if (input.text().size() > limit)
      return fail(kExDataErr, "message too big (max_message_size is " +
                                  std::to_string(config.max_message_size) + " bytes)");
  }

  const std::string login = login_name();
  std::string sender = opt.sender ? *opt.sender : login;
  if (!sender.empty() && sender.find('@') == std::string::npos) sender += "@" + config.hostname;
  ComposeInput in;
  in.text = input.text();
  in.extract_recipients = opt.extract_recipients;
  in.recipients = opt.recipients;
  in.from_address = sender.empty() ? login + "@" + config.hostname : sender;
  in.full_name = opt.full_name;
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  in.date = format_date(now, local.tm_gmtoff);
  in.message_id = message_id(config.hostname);
  in.qualify_domain = config.hostname;
  auto composed = compose(in);
  if (!composed.error.empty()) return fail(kExUsage, composed.error);

  Submission submission{config.hostname,     sender,
                        composed.recipients, composed.wire,
                        composed.eight_bit,  std::min(kGreetingTimeout, timeout)};
  auto fd = connect_submit(socket_path, timeout);
  if (!fd) return keep(config, submission, socket_path + ": " + std::strerror(errno));
  auto result = submit::submit(fd.get(), submission, timeout);
  // No greeting (esmtpd not accepting, or 421): nothing was sent, so the maildrop may take it.
  if (result.exit_code == kExTempFail && result.stage == Stage::Greeting)
    return keep(config, submission, result.error);
  if (result.exit_code != kExOk) return fail(result.exit_code, result.error);
  return kExOk;
}
