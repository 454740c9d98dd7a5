// daemon.h: the common main() of every daemon, as Postfix's single_server/multi_server
// skeletons: options, config, logging, signals, privileges and error exits are done here, once
// and in one order; a daemon's main() says what it is (DaemonSpec) and hands over what is its
// own (the body):
//
//   int main(int argc, char** argv) {
//     daemon::DaemonSpec spec{.program = "estafette-x", .log_name = "x", .usage = "[-c CONFIG]"};
//     return daemon::run(argc, argv, spec, [](daemon::Context& ctx) {
//       x::Server server(ctx.loop, ctx.config);
//       ctx.on_stop([&] { server.shutdown(); ctx.loop.stop(); });
//       return ctx.run();
//     });
//   }
//
// run() goes through these steps; a failure ends it with the exit status named
// (lib/base/exit_codes.h):
//   1. options (options.h) as spec.options allows; a bad one prints the usage: 2. With
//      spec.needs_fd, no --fd: "PROGRAM: --fd is required (courierd starts this program)": 2.
//   2. config::load_config() of -c's file (none: the embedded default; with
//      spec.default_config, config::default_config_path()). An error prints
//      "PROGRAM: file:line: reason": 2.
//   3. spec.prepare (estafetted: its start-up checks, directories, detaching), before logging;
//      an exception prints "PROGRAM: what": 2. It may end run() here with a status of its own.
//   4. base::setup_logging() with spec.log_name and the config's log settings: 2 on an error.
//      Then each of the config's warnings (config::Config::warnings) is logged ("config: ...").
//   5. (SIGPIPE has been ignored since step 1: a write to a reset peer, or to a starter that
//      went away, returns EPIPE instead of killing the process.)
//   From here an exception logs "fatal: what" (critical) and prints "PROGRAM: what": 1.
//   6. spec.as_root: what must happen before privileges go (esmtpd adopts or binds its
//      addresses, reads its TLS keys).
//   7. spec.privileges, when the config sets `user` (base/privileges.h).
//   8. The loop: SIGTERM and SIGINT call the stop hook (by default it stops the loop); with
//      spec.reload SIGHUP calls the reload hook. They are taken on the loop's signalfd before the
//      body starts any thread, so every thread inherits them blocked.
//   9. The body: builds the daemon on ctx.loop, then ctx.run(); what it returns is the status.
// With --ready-fd (readiness.h) the starter hears "ready" when ctx.run() starts the loop (or
// when the body calls ctx.ready() after ctx.hold_ready()), and "error REASON" with the same
// text as stderr from every failure above.
//
// Main thread, once per process. run() never exits the process itself: main() returns its
// status. Nothing here is global: the hooks live in the Context of one run().
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "lib/config/config.h"
#include "lib/daemon/options.h"
#include "lib/daemon/readiness.h"
#include "lib/event/loop.h"

namespace estafette::daemon {

// What becomes of the process's ids when the config sets `user` (docs/architecture.md,
// "Privileges").
enum class Privileges {
  Keep,       // stays as started (estafetted, estafette-local: root)
  Drop,       // becomes the user for good (esmtpd after binding, esmtpclient)
  Effective,  // the user as effective ids, root kept as real and saved uid (unused since
              // courierd drops for good: lib/daemon/root_spawner.h)
};

// The daemon's config, read before the loop exists (spec.prepare, spec.as_root).
struct Startup {
  const DaemonArgs& args;
  config::Config& config;
  const std::string& config_path;  // absolute; empty for the embedded default
  // Whom to tell "ready" or why not: --ready-fd; spec.prepare may replace it (estafetted's
  // detached child tells its waiting parent).
  ReadyReporter& ready;
};

// What a daemon's body gets: the start-up state, its loop, and the signal hooks.
class Context final {
 public:
  Context(const Startup& startup, event::Loop& loop);
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // SIGTERM and SIGINT call fn instead of stopping the loop; fn stops it when it is done.
  void on_stop(std::function<void()> fn);
  // SIGHUP calls fn (only for a spec with reload; without a hook it is ignored).
  void on_reload(std::function<void()> fn);
  // Runs the loop until it is stopped; returns base::kExitStopped. Says "ready" first unless
  // hold_ready() was called.
  int run();
  // The daemon says when it is ready itself (estafetted: once its children are).
  void hold_ready() { hold_ready_ = true; }
  void ready() { ready_.ready(); }
  void failed(std::string_view why) { ready_.failed(why); }

  const DaemonArgs& args;
  config::Config& config;
  const std::string& config_path;
  event::Loop& loop;

 private:
  friend class Skeleton;
  std::function<void()> stop_;
  std::function<void()> reload_;
  ReadyReporter& ready_;
  bool hold_ready_ = false;
};

struct DaemonSpec {
  std::string program;   // "estafette-esmtpd": the prefix of every message on stderr
  std::string log_name;  // "esmtpd": the logger, syslog ident and log line prefix
  std::string usage;     // the options part of the usage line
  OptionSet options = {};
  bool needs_fd = false;        // a module: --fd is required
  bool default_config = false;  // without -c: config::default_config_path() (estafetted)
  Privileges privileges = Privileges::Keep;
  bool reload = false;  // SIGHUP is taken on the loop and calls the reload hook
  // Step 3: before logging is set up. A returned status ends run() with it.
  std::function<std::optional<int>(Startup&)> prepare = {};
  // Step 6: before privileges are dropped.
  std::function<void(Startup&)> as_root = {};
};

using Body = std::function<int(Context&)>;

// The daemon's main(): returns its exit status.
int run(int argc, char** argv, const DaemonSpec& spec, const Body& body);

}  // namespace estafette::daemon
