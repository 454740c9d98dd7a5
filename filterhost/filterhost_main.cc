// estafette-filterhost: runs one `module-isolated:` entry of `filters` (--entry N, 0-based in
// the list) in its own process and serves it as a milter on <run_dir>/filterhost/N.sock
// (milter_server.h), so that a module that crashes or hangs costs its own sessions only:
// esmtpd's milter client applies milter_default_action and goes on. estafetted starts one per
// such entry, as `user`, and restarts it after a crash.
// The module is loaded after privileges are dropped: none of its code runs as root. A fatal
// signal (or the loop blocked longer than milter_command_timeout + 2 s: SIGALRM from the
// watchdog) leaves a crash record (crash_record.h) that the next filterhost logs.
// The socket is made under a temporary name and renamed into place, so a reload's new
// filterhost takes over the path atomically; SIGTERM stops accepting and lets the open sessions
// end (estafetted's drain).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "filterhost/crash_record.h"
#include "filterhost/milter_server.h"
#include "filters/filter_set.h"
#include "filters/module.h"
#include "lib/base/log.h"
#include "lib/base/net.h"
#include "lib/base/paths.h"
#include "lib/daemon/daemon.h"

using namespace estafette;

namespace {

// Takes "--entry N" out of argv (the daemon skeleton knows only the shared options).
std::optional<std::size_t> take_entry(std::vector<char*>& args) {
  for (std::size_t i = 1; i + 1 < args.size(); ++i) {
    if (std::strcmp(args[i], "--entry") != 0) continue;
    char* end = nullptr;
    errno = 0;
    unsigned long n = std::strtoul(args[i + 1], &end, 10);
    if (errno != 0 || *end != '\0' || end == args[i + 1] || n > 10000) return std::nullopt;
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
               args.begin() + static_cast<std::ptrdiff_t>(i + 2));
    return static_cast<std::size_t>(n);
  }
  return std::nullopt;
}

// The socket directory: ours alone (0700), never through a symlink.
void make_private_dir(const std::string& dir) {
  if (!base::make_dirs(dir, 0700))
    throw std::runtime_error("cannot create " + dir + ": " + base::errno_text(errno));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0)
    throw std::runtime_error("cannot stat " + dir + ": " + base::errno_text(errno));
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
    throw std::runtime_error(dir + " is not a directory of uid " + std::to_string(::geteuid()));
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0)
    throw std::runtime_error("cannot chmod " + dir + ": " + base::errno_text(errno));
}

// Re-arms alarm() every second: a loop blocked for `limit` (a module callback that never
// returns) gets SIGALRM, which the crash record turns into a logged exit and a restart.
void arm_watchdog(event::Loop& loop, unsigned limit) {
  ::alarm(limit);
  loop.add_timer(std::chrono::seconds(1), [&loop, limit] { arm_watchdog(loop, limit); });
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  const std::optional<std::size_t> entry = take_entry(args);
  if (!entry) {
    std::fprintf(stderr, "usage: %s --entry N [-c CONFIG] [--ready-fd N]\n", argv[0]);
    return 2;
  }
  daemon::DaemonSpec spec{.program = "estafette-filterhost",
                          .log_name = "filterhost",
                          .usage = "--entry N [-c CONFIG]",
                          .options = {.fd = false},
                          .privileges = daemon::Privileges::Drop};
  return daemon::run(static_cast<int>(args.size()), args.data(), spec, [&](daemon::Context& ctx) {
    const config::Config& config = ctx.config;
    if (*entry >= config.filters.size() || config.filters[*entry].kind != "module-isolated")
      throw std::runtime_error("filters entry " + std::to_string(*entry) +
                               " is not a module-isolated: entry");
    const config::FilterSpec& filter = config.filters[*entry];
    const std::string dir = filters::isolated_socket_dir(config);
    make_private_dir(dir);
    const std::string socket = filters::isolated_socket_path(config, *entry);
    const std::string crash = dir + "/" + std::to_string(*entry) + ".crash";
    auto& log = base::log("filterhost");
    if (auto previous = filterhost::take_previous(crash); !previous.empty())
      log.warning("the previous filterhost of " + filter.target + " died: " + previous);
    filterhost::install_crash_record(crash);
    // Tried in a child first, as esmtpd does for module: entries: a module whose init exits or
    // crashes is reported to estafetted with its reason, not as a bare exit status.
    if (auto error =
            filters::Module::load_in_child(filter.target, filter.args, filters::kModuleLoadTimeout);
        !error.empty())
      throw std::runtime_error(error);
    filterhost::set_context("module " + filter.target + ", phase load");
    auto module = filters::Module::load(filter.target, filter.args);
    filterhost::clear_context();
    // Bound under a temporary name, then renamed: the path is never missing.
    const std::string temporary = socket + ".new-" + std::to_string(::getpid());
    base::UniqueFd listener = base::listen_unix(temporary, 1024, 0600);
    if (::rename(temporary.c_str(), socket.c_str()) != 0)
      throw std::runtime_error("cannot rename " + temporary + " to " + socket + ": " +
                               base::errno_text(errno));
    filters::ModuleTimeouts timeouts{config.milter_command_timeout, config.milter_content_timeout};
    filterhost::Server server(ctx.loop, std::move(listener), module, timeouts);
    const auto limit =
        std::chrono::ceil<std::chrono::seconds>(config.milter_command_timeout).count() + 2;
    arm_watchdog(ctx.loop, static_cast<unsigned>(limit));
    log.information("serving module " + module->name() + " (" + filter.target + ") on " + socket);
    ctx.on_stop([&] {
      log.information("stopping: " + std::to_string(server.sessions()) + " session(s) to finish");
      server.drain([&] { ctx.loop.stop(); });
    });
    int status = ctx.run();
    ::alarm(0);  // the module is unloaded after this: no watchdog then
    return status;
  });
}
