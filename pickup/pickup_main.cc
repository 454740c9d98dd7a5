// estafette-pickup: submits the messages estafette-sendmail kept in <state>/maildrop/ while
// esmtpd was not answering, each as the user who owns its file (pickup/pickup.h). estafetted
// starts it with the other daemons and restarts it; it runs as root (it becomes each owner in a
// child). A pass at start, one shortly after a file is renamed into the directory (inotify), one
// every kRescan for what a temporary failure left, on SIGHUP, and at once
// again while a pass had to leave files for lack of room.
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "lib/base/fd.h"
#include "lib/base/log.h"
#include "lib/daemon/daemon.h"
#include "pickup/pickup.h"

using namespace estafette;

namespace {

constexpr std::chrono::seconds kRescan{60};
constexpr std::chrono::milliseconds kSettle{200};  // gathers a burst of new files into one pass
constexpr std::chrono::seconds kMore{1};

}  // namespace

int main(int argc, char** argv) {
  daemon::DaemonSpec spec{.program = "estafette-pickup",
                          .log_name = "pickup",
                          .usage = "[-c CONFIG]",
                          .options = {.fd = false},
                          .reload = true};
  return daemon::run(argc, argv, spec, [](daemon::Context& ctx) {
    pickup::Pickup pickup(ctx.config);
    event::Loop& loop = ctx.loop;
    event::TimerId timer = 0;
    event::Clock::time_point due{};
    std::function<void(event::Clock::duration)> schedule;
    auto run_pass = [&] {
      timer = 0;
      auto r = pickup.pass();
      if (r.submitted || r.returned || r.kept || r.removed)
        base::log("pickup").information(
            "pass: " + std::to_string(r.submitted) + " submitted, " + std::to_string(r.returned) +
            " returned, " + std::to_string(r.kept) + " kept, " + std::to_string(r.removed) +
            " removed" + (r.more ? ", more to do" : ""));
      schedule(r.more ? event::Clock::duration(kMore) : event::Clock::duration(kRescan));
    };
    schedule = [&](event::Clock::duration delay) {
      auto when = loop.now() + delay;
      if (timer != 0 && due <= when) return;
      loop.cancel_timer(timer);
      due = when;
      timer = loop.add_timer(delay, run_pass);
    };
    base::UniqueFd notify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!notify || ::inotify_add_watch(notify.get(), pickup.dir().c_str(),
                                       IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0)
      base::log("pickup").warning("inotify on " + pickup.dir() + ": " + std::strerror(errno) +
                                  "; looking every " + std::to_string(kRescan.count()) + " s");
    else
      loop.add_fd(notify.get(), EPOLLIN, [&](std::uint32_t) {
        char buf[4096];
        while (::read(notify.get(), buf, sizeof buf) > 0) {
        }
        schedule(kSettle);
      });
    // SIGHUP (sent to the pickup itself): look at the maildrop now.
    ctx.on_reload([&] { schedule(event::Clock::duration::zero()); });
    schedule(event::Clock::duration::zero());
    return ctx.run();
  });
}
