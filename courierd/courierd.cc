#include "courierd/courierd.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <utility>

#include "courierd/wall_clock.h"
#include "lib/base/log.h"

namespace estafette::courierd {

namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(3);  // jobs in flight, then children
// SIGUSR2 (estafetted's reload): the jobs in flight get this long to report before the modules
// are told to go, so that a reload does not cut deliveries short (and repeat them).
constexpr auto kHandOverGrace = std::chrono::seconds(60);
// How often mail waiting behind a held destination is checked for expiry (queue_lifetime).
constexpr auto kExpiryCheck = std::chrono::seconds(60);
// Messages a rescan looks at per loop turn: each unknown one costs a load() from the queue.
constexpr std::size_t kRescanBatch = 256;

Poco::Logger& logger() {
  return base::log("courierd");
}

}  // namespace

Courierd::Courierd(event::Loop& loop, const config::Config& config, std::string config_path,
                   queue::Backend& backend, daemon::RootSpawner* spawner)
    : loop_(loop),
      config_(config),
      backend_(backend),
      random_(std::random_device{}()),
      scheduler_(config, Limits::from(config),
                 [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }),
      parking_(loop, config, scheduler_, backend, [this] { pump(); }),
      notices_(loop, config, backend, scheduler_, parking_, [this] { pump(); }),
      modules_(
          loop, config, std::move(config_path), scheduler_, notices_, [this] { settle(); },
          spawner),
      admin_(scheduler_, parking_, notices_, backend, [this] { pump(); }),
      intake_(
          loop, config, backend, parking_, admin_, [this] { pump(); }, [this] { rescan(); }) {}

Courierd::~Courierd() {
  loop_.cancel_timer(wakeup_timer_);
  loop_.cancel_timer(expiry_timer_);
  loop_.cancel_timer(grace_timer_);
}

void Courierd::start() {
  set_router(routing::Router::load(config_));  // throws config::ConfigError (file:line)
  loop_.on_signal(SIGHUP, [this] { reload(); });
  loop_.on_signal(SIGTERM, [this] { begin_shutdown(kShutdownGrace); });
  loop_.on_signal(SIGINT, [this] { begin_shutdown(kShutdownGrace); });
  loop_.on_signal(SIGUSR2, [this] { begin_shutdown(kHandOverGrace); });
  loop_.on_signal(SIGCHLD, [this] {
    modules_.reap_children();
    if (stopping_) maybe_exit();
  });

  parking_.start();
  recover();
  intake_.listen();
  modules_.start();
  schedule_expiry();
  pump();
}

void Courierd::set_router(std::shared_ptr<const routing::Router> router) {
  router_ = std::move(router);
  scheduler_.set_router(router_);
  parking_.set_router(router_);
  notices_.set_router(router_);
}

void Courierd::reload() {
  try {
    set_router(routing::Router::load(config_));
    logger().information("reloaded routing: aliases=" + std::to_string(router_->alias_count()));
  } catch (const std::exception& e) {
    logger().error(std::string("reload failed, keeping the previous maps: ") + e.what());
  }
  // The local module reads the mailbox maps too (esmtpclient has none).
  modules_.reload();
}

void Courierd::recover() {
  std::size_t found = 0;
  backend_.scan([&](queue::StoredMessage&& m) {
    ++found;
    parking_.schedule(std::move(m), true);
  });
  logger().information("recovered messages=" + std::to_string(found) +
                       " scheduled=" + std::to_string(scheduler_.message_count()));
}

void Courierd::rescan() {
  if (stopping_) return;
  if (rescanning_) {
    rescan_again_ = true;
    return;
  }
  rescanning_ = true;
  rescan_found_ = 0;
  rescan_ids_ = backend_.ids();
  loop_.post(guard_.wrap([this] { rescan_step(); }));
}

void Courierd::rescan_step() {
  if (stopping_) {
    rescanning_ = false;
    return;
  }
  for (std::size_t n = 0; n < kRescanBatch && !rescan_ids_.empty(); ++n) {
    queue::QueueId id = std::move(rescan_ids_.back());
    rescan_ids_.pop_back();
    if (parking_.known(id) || notices_.holds(id)) continue;
    auto m = backend_.load(id);
    if (!m) continue;  // finished meanwhile
    logger().information("rescan found id=" + id);
    ++rescan_found_;
    parking_.schedule(std::move(*m), false);
  }
  pump();
  if (!rescan_ids_.empty()) {
    loop_.post(guard_.wrap([this] { rescan_step(); }));
    return;
  }
  logger().information("rescan done found=" + std::to_string(rescan_found_));
  rescanning_ = false;
  if (std::exchange(rescan_again_, false)) rescan();
}

void Courierd::pump() {
  if (stopping_) return;
  Time now = wall_now();
  notices_.send_delay_warnings(now);
  while (auto job = scheduler_.next_job(now)) modules_.dispatch(*job, now);
  loop_.cancel_timer(wakeup_timer_);
  wakeup_timer_ = 0;
  if (auto at = scheduler_.next_wakeup()) {
    auto delay = std::max(Millis(0), *at - wall_now());
    wakeup_timer_ = loop_.add_timer(delay, [this] {
      wakeup_timer_ = 0;
      pump();
    });
  }
}

void Courierd::settle() {
  if (stopping_)
    maybe_exit();
  else
    pump();
}

// Every kExpiryCheck: mail waiting behind a held destination bounces once it has expired.
void Courierd::schedule_expiry() {
  expiry_timer_ = loop_.add_timer(kExpiryCheck, [this] {
    expiry_timer_ = 0;
    if (stopping_) return;
    notices_.expire_held(wall_now());
    pump();
    schedule_expiry();
  });
}

void Courierd::begin_shutdown(std::chrono::seconds grace) {
  if (stopping_) return;
  stopping_ = true;
  logger().information("stopping in_flight=" + std::to_string(modules_.in_flight()));
  loop_.cancel_timer(wakeup_timer_);
  wakeup_timer_ = 0;
  loop_.cancel_timer(expiry_timer_);
  expiry_timer_ = 0;
  intake_.stop();
  parking_.stop();
  // Jobs in flight get a grace period to report; then the modules are told to go.
  grace_timer_ = loop_.add_timer(grace, [this] {
    grace_timer_ = 0;
    if (!modules_stopped_) stop_modules();
  });
  maybe_exit();
}

void Courierd::stop_modules() {
  modules_stopped_ = true;
  loop_.cancel_timer(grace_timer_);
  // Modules exit on EOF; one that does not within the grace period is killed.
  grace_timer_ = loop_.add_timer(kShutdownGrace, [this] {
    grace_timer_ = 0;
    modules_.kill_remaining();
    stopped_ = true;
    logger().information("stopped");
    loop_.stop();
  });
  modules_.stop();
}

void Courierd::maybe_exit() {
  if (!stopping_) return;
  if (!modules_stopped_ && modules_.in_flight() == 0) stop_modules();
  if (!modules_stopped_ || modules_.any_running() || stopped_) return;
  stopped_ = true;
  logger().information("stopped");
  loop_.stop();
}

}  // namespace estafette::courierd
