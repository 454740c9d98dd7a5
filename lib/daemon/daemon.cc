#include "lib/daemon/daemon.h"

#include <signal.h>

#include <cstdio>
#include <exception>
#include <utility>

#include "lib/base/exit_codes.h"
#include "lib/base/fd.h"
#include "lib/base/log.h"
#include "lib/base/paths.h"
#include "lib/base/privileges.h"

namespace estafette::daemon {

Context::Context(const Startup& startup, event::Loop& loop)
    : args(startup.args),
      config(startup.config),
      config_path(startup.config_path),
      loop(loop),
      ready_(startup.ready) {}

void Context::on_stop(std::function<void()> fn) {
  stop_ = std::move(fn);
}

void Context::on_reload(std::function<void()> fn) {
  reload_ = std::move(fn);
}

int Context::run() {
  if (!hold_ready_) ready_.ready();
  loop.run();
  return base::kExitStopped;
}

// The steps of run() that need the Context's hooks.
class Skeleton final {
 public:
  static void take_signals(Context& ctx, bool reload) {
    auto stop = [&ctx] {
      if (ctx.stop_)
        ctx.stop_();
      else
        ctx.loop.stop();
    };
    ctx.loop.on_signal(SIGTERM, stop);
    ctx.loop.on_signal(SIGINT, stop);
    if (reload)
      ctx.loop.on_signal(SIGHUP, [&ctx] {
        if (ctx.reload_) ctx.reload_();
      });
  }
};

namespace {

// On stderr, and to the starter when one waits (--ready-fd).
void print_error(const DaemonSpec& spec, const char* what, ReadyReporter* ready = nullptr) {
  std::fprintf(stderr, "%s: %s\n", spec.program.c_str(), what);
  if (ready) ready->failed(what);
}

void apply_privileges(const DaemonSpec& spec, const config::Config& config) {
  if (config.user.empty() || spec.privileges == Privileges::Keep) return;
  base::Account account = base::require_account(config.user, config.source);
  if (spec.privileges == Privileges::Drop)
    base::drop_privileges(account);
  else
    base::become_effective(account);
}

}  // namespace

int run(int argc, char** argv, const DaemonSpec& spec, const Body& body) {
  auto args = parse_daemon_args(argc, argv, spec.usage.c_str(), spec.options);
  if (!args) return base::kExitBadStart;
  // A starter that went away while we report must not kill us with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  ReadyReporter ready(args->ready_fd);
  if (args->ready_fd >= 0) base::set_cloexec(args->ready_fd);  // not for what we run
  if (spec.needs_fd && args->fd < 0) {
    print_error(spec, "--fd is required (courierd starts this program)", &ready);
    return base::kExitBadStart;
  }
  // courierd clears FD_CLOEXEC on the channel it passes: set it again, so that nothing this
  // program runs (estafette-local's delivery programs) inherits the link to courierd.
  if (args->fd >= 0) base::set_cloexec(args->fd);
  std::string config_path = args->config_path;
  if (config_path.empty() && spec.default_config) config_path = config::default_config_path();
  config::Config config;
  try {
    config = config::load_config(config_path);
  } catch (const std::exception& e) {
    print_error(spec, e.what(), &ready);
    return base::kExitBadStart;
  }
  if (!config_path.empty()) config_path = base::absolute_path(config_path);
  Startup startup{*args, config, config_path, ready};
  try {
    if (spec.prepare) {
      if (auto status = spec.prepare(startup)) return *status;
    }
    base::setup_logging({spec.log_name, config.log_file, config.syslog, config.log_level});
    // What the config accepted but not as written (a setting given twice), as Postfix logs
    // "overriding earlier entry" in every daemon that reads main.cf.
    for (const auto& w : config.warnings) base::log(spec.log_name).warning("config: " + w);
  } catch (const std::exception& e) {
    print_error(spec, e.what(), &ready);
    return base::kExitBadStart;
  }
  try {
    if (spec.as_root) spec.as_root(startup);
    apply_privileges(spec, config);
    event::Loop loop;
    Context ctx(startup, loop);
    Skeleton::take_signals(ctx, spec.reload);
    return body(ctx);
  } catch (const std::exception& e) {
    base::log(spec.log_name).critical(std::string("fatal: ") + e.what());
    print_error(spec, e.what(), &ready);
    return base::kExitFatal;
  }
}

}  // namespace estafette::daemon
