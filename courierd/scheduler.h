// scheduler.h: courierd's scheduling core: which recipients of which queued messages are handed
// to which delivery module next, under Courier's limits (MAXDELS jobs in flight in total,
// MAXHOST per destination, MAXRCPT recipients per job), and what happens after each result
// (done, bounced, retried later with exponential backoff and jitter, host held back).
//
// Each destination has a concurrency window, as in Postfix's queue manager: it starts at
// initial_host_concurrency and grows by one per job that reached the host, up to MAXHOST, so a
// host that never answers ties up a few delivery slots, not MAXDELS of them. A destination whose
// host failed is held for host_backoff, doubling per failed retry up to retry_max. Its
// recipients wait in its ready list, with no timer of their own; when the hold ends, one job
// probes the host (window 1) and only a probe that reaches the host opens the window again.
// Jobs that were in flight when the host went down and fail during the hold do not lengthen
// it: one outage, one failure. Nor does a probe that flush() asked for: an admin who flushes a
// dead host again and again gets a probe each time, not a hold that doubles with each.
//
// A destination may have limits of its own (the destinations file, via Destination::limits):
// `concurrency` replaces MAXHOST as the window's ceiling, `max_rcpt` replaces MAXRCPT, and a
// rate spaces its job starts `interval` apart: a started job arms a timer at the next allowed
// start (which also keeps the destination's state until then), and ready mail simply waits.
// A remote domain's destination may be an MX site (mx_sites.h), shared by several domains; the
// caller resolves it and passes a RouteFn to add(). A batch of a site holds one domain only, so a
// job goes to one domain (esmtpclient looks up that domain's MX hosts for the job).
//
// Pure: no I/O, no clock, no global randomness. The caller passes `now` (wall clock, because
// queue lifetimes count from the arrival time stored in the queue) and a random source.
// Single-threaded (courierd's loop thread). The scheduler owns copies of the envelopes it
// indexes, without what delivery never needs (client_ip, helo, the done flags once read); it
// never touches the queue: the caller persists what a JobReport says.
// Cost: add() is O(recipients); next_job() and complete() are O(recipients of the job) plus
// O(log n) for the retry timer map; nothing scans the whole queue. Memory is about 600 bytes
// per queued message with one recipient (see docs/benchmarks.md, "Flat cost").
// Errors: none; unknown job or message ids are ignored (they return empty results).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/base/delivery_status.h"
#include "lib/config/config.h"
#include "lib/queue/backend.h"
#include "lib/routing/router.h"

namespace estafette::courierd {

using Millis = std::chrono::milliseconds;
using Time = std::chrono::sys_time<Millis>;
using JobId = std::uint64_t;

inline constexpr std::string_view kLocalModule = "local";
inline constexpr std::string_view kEsmtpModule = "esmtp";
// The status of recipients bounced by `estafette cancel`.
inline constexpr std::string_view kCancelledReply = "554 5.0.0 cancelled by the administrator";

// Where one recipient goes: the module that delivers it and the destination key within it.
struct Destination {
  Destination() = default;
  Destination(std::string module_name, std::string key_text, bool by_mx = false,
              config::DestinationLimits own_limits = {})
      : module(std::move(module_name)),
        key(std::move(key_text)),
        mx_lookup(by_mx),
        limits(own_limits) {}

  std::string module;  // "local" or "esmtp"
  // "local", "host:port" from a static route or the smarthost, the domain (MX lookup), or the
  // domain's MX site "mx:host,host..." (set by courierd, see mx_sites.h)
  std::string key;
  bool mx_lookup = false;            // key is the domain: its MX site may replace it
  config::DestinationLimits limits;  // from the destinations file; zero: the global limits
  bool operator==(const Destination&) const = default;
};

// The one place that maps a recipient to its destination: program targets, and local and hosted
// domains under the maildir transport -> "local"; those under an LMTP transport -> the esmtp
// module with the transport's text as key ("lmtp:unix:/path", "lmtp:inet:host:port"); a static
// route or the smarthost -> "[host]:port" with the destinations file's limits for it; else the
// domain (MX lookup; courierd may replace it by its MX site) with the limits for the domain.
Destination destination_for(const config::Config& config, const routing::Router& router,
                            const std::string& recipient, bool program = false);

struct Limits {
  std::size_t max_deliveries = 100;  // MAXDELS
  std::size_t max_per_host = 10;     // MAXHOST
  std::size_t initial_per_host = 5;  // a destination's first window; grows to max_per_host
  std::size_t max_rcpt = 100;        // MAXRCPT
  Millis retry_base{std::chrono::minutes(5)};
  Millis retry_max{std::chrono::hours(4)};
  Millis host_backoff{std::chrono::minutes(1)};
  Millis queue_lifetime{std::chrono::hours(24 * 5)};
  Millis warn_time{std::chrono::hours(4)};        // delay warning after this long queued; 0 = never
  Millis requeue_delay{std::chrono::seconds(1)};  // after a module crash

  static Limits from(const config::Config& config);
};

// One delivery attempt: one message, up to MAXRCPT recipients with the same destination.
struct Job {
  JobId id = 0;
  queue::QueueId queue_id;
  std::string module;
  std::string destination;
  std::vector<std::size_t> rcpt_indexes;  // into the envelope's recipients
  std::vector<std::string> recipients;    // the addresses, same order
};

using Outcome = base::DeliveryStatus;  // Delivered, TempFail, PermFail

struct RcptOutcome {
  Outcome outcome = Outcome::TempFail;
  std::string reply;
};

struct Bounce {
  std::size_t rcpt_index = 0;
  std::string recipient;
  std::string reply;
  bool expired = false;  // a temporary failure past queue_lifetime
};

struct Deferral {
  std::size_t rcpt_index = 0;
  std::string recipient;
  std::string reply;
  Time retry_at;
  bool held = false;  // its message is on hold: no retry until released (retry_at unused)
};

// What the caller must do after a job's results.
struct JobReport {
  queue::QueueId queue_id;
  std::vector<std::size_t> delivered;  // indexes: mark done
  std::vector<Bounce> bounced;         // mark done and report in a DSN
  std::vector<Deferral> deferred;      // stays queued
  bool message_finished = false;       // no recipient left: remove the queue file
  std::vector<std::size_t> dropped;    // deleted by the admin: mark done, no DSN
};

// A message still queued warntime after its arrival: the delay warning (RFC 3461 NOTIFY=DELAY,
// or no NOTIFY) for its pending recipients that want one.
struct DelayWarning {
  queue::StoredMessage message;
  struct Rcpt {
    std::size_t rcpt_index = 0;
    std::string recipient;
    std::string last_error;  // the last temporary failure, "" = not tried yet
  };
  std::vector<Rcpt> recipients;
  Time expires;  // when it bounces (arrival + queue_lifetime): Will-Retry-Until
};

// Recipients bounced by expire_held(): the message as queued (the scheduler may have forgotten it
// by then) and what to do, as after a job.
struct ExpiredReport {
  queue::StoredMessage message;
  JobReport report;
};

// What hold() and release() did to one message.
struct HoldResult {
  bool found = false;          // the message is queued
  std::size_t recipients = 0;  // recipients held / made ready now
  std::size_t in_flight = 0;   // in an attempt now: hold applies when it ends
};

// What cancel() (and requeue() of a message being cancelled or deleted) finished: the message
// as queued (the scheduler may have forgotten it) and what to persist, as after a job.
struct RemovalReport {
  bool found = false;
  queue::StoredMessage message;
  JobReport report;
  std::size_t in_flight = 0;  // recipients in an attempt: they finish when it ends
};

// What mailq shows of one pending recipient (Scheduler::snapshot). The IPC layer
// (admin_service.h) converts it to the wire's ipc::QueuedRcpt.
struct QueuedRecipient {
  enum class State : std::uint8_t { Waiting, Ready, InFlight, Held };
  std::string address;
  std::string destination;  // "local", "host:port" (a route), the domain or "mx:HOST,..." (site)
  State state = State::Ready;
  std::uint32_t attempts = 0;
  std::int64_t next_retry_ms = 0;  // unix ms of the next try; 0 = ready now or in flight
  std::string last_error;          // the last temporary failure's reply, "" = none yet
  bool operator==(const QueuedRecipient&) const = default;
};

// What mailq shows of one queued message: its pending recipients only.
struct QueuedMessage {
  queue::QueueId queue_id;
  std::int64_t arrival = 0;  // unix seconds
  std::uint64_t size = 0;    // body bytes
  std::string sender;        // "" = null sender
  bool held = false;         // on hold (by the administrator, or quarantined)
  std::string quarantine;    // a filter's quarantine reason, "" = none
  std::vector<QueuedRecipient> recipients;
  bool operator==(const QueuedMessage&) const = default;
};

// Which messages an admin selection picks (estafette hold --sender ..., the wire's
// ipc::QueueSelection): every criterion given must hold. A selection picks whole messages.
struct Selection {
  std::optional<std::string> sender;  // exact address, domain case-insensitive; "" = null sender
  std::string rcpt_domain;            // a pending recipient's domain (case-insensitive)
  std::string destination;            // a pending recipient's destination key, as mailq shows it
  Millis older_than{0};               // arrived at least this long before now; 0 = any
  std::string reason;  // case-insensitive substring of a pending recipient's last temporary error
};

// Whether `selection` picks `message` (as snapshot() shows it) at `now`. Pure.
bool selected(const Selection& selection, const QueuedMessage& message, Time now);

// What Scheduler::flush makes ready: everything, one message (target: its queue id), or one
// domain or destination (target: the domain, or a destination key such as "host:port").
enum class FlushScope : std::uint8_t { All, Message, Domain };

class Scheduler final {
 public:
  using Random = std::function<double()>;  // uniform in [0, 1)
  // The destination of each recipient (courierd: with its MX site); empty: destination_for().
  using RouteFn = std::function<Destination(const std::string& recipient, bool program)>;

  struct Message {
    queue::StoredMessage stored;
    struct Rcpt {  // 8 bytes: one per recipient of every queued message
      // Held: its message is on hold (stored.held); it waits in no list and no timer.
      enum class State : std::uint8_t {
        Waiting,
        Ready,
        InFlight,
        Done,
        Held
      } state = State::Waiting;
      unsigned attempts = 0;
    };
    std::vector<Rcpt> rcpts;
    // The last temporary failure per recipient, for mailq; empty until the first one, so a
    // message that never failed costs no more than before.
    std::vector<std::string> last_errors;
    std::size_t pending = 0;  // recipients not Done
    // Set by cancel(): recipients in flight when it came finish as it says when they return.
    enum class Removal : std::uint8_t { None, Cancel, Delete } removal = Removal::None;
  };

  enum class AddResult { Added, Duplicate, NothingPending };

  Scheduler(const config::Config& config, Limits limits, Random random);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Indexes a message; every recipient not marked done becomes ready for delivery now, in the
  // destination `route` gives it.
  AddResult add(queue::StoredMessage message, Time now, const RouteFn& route = {});

  // The next job to start, or nullopt when the limits or an empty ready set forbid one.
  // Releases due retries and host holds first.
  std::optional<Job> next_job(Time now);

  // Applies a job's per-recipient results (one per recipient of the job, in order; missing
  // ones count as temporary failures). host_failed holds the destination back.
  JobReport complete(JobId job, const std::vector<RcptOutcome>& results, bool host_failed,
                     Time now);

  // Bounces, without an attempt, the ready recipients of held destinations (their host failed
  // and only a probe is tried) whose message has outlived queue_lifetime: otherwise
  // mail behind a dead host expires only when it is the probe. One report per message. Walks
  // each held destination's ready list from its front (oldest first, as queued) and stops at
  // the first message that has not expired: O(held destinations + expired recipients).
  std::vector<ExpiredReport> expire_held(Time now);

  // Delay warnings due by now, at most one per message (and none for the null sender, after the
  // message has expired, when no pending recipient wants one, or when stored.warned said at
  // add() that one was sent before a restart). The caller records each it sends in the queue
  // (Backend::set_warned). O(due warnings + their
  // recipients). The warning times of all messages are kept in a timer map (next_wakeup).
  std::vector<DelayWarning> take_delay_warnings(Time now);
  // A warning taken above that could not be queued (a full or failing disk): due again at
  // `at`, unless the message has finished or expired by then.
  void retry_delay_warning(const queue::QueueId& id, Time at);

  // The module running the job went away: its recipients are retried after requeue_delay,
  // without counting an attempt or a host failure (held again if their message is on hold).
  // For a message being cancelled or deleted they finish instead: the report says how (found).
  RemovalReport requeue(JobId job, Time now);

  // The admin's operations (estafette hold/release/cancel/delete), O(recipients of the
  // message). The caller records hold/release in the queue first (Backend::set_held), and
  // persists what a RemovalReport says.
  // hold: the message's waiting and ready recipients are held: no attempt, no expiry, until
  // release(); one in flight finishes its attempt, and is held if it has to be retried.
  HoldResult hold(const queue::QueueId& id);
  // release: held recipients become ready now (their destination's host hold still applies);
  // queue_lifetime counts from the arrival again, so long-held mail may bounce at the next
  // temporary failure. `route` as for add().
  HoldResult release(const queue::QueueId& id, Time now, const RouteFn& route = {});
  // cancel (bounce = true) / delete: every pending recipient not in flight is finished now,
  // bounced with kCancelledReply or dropped without a DSN; one in flight finishes its attempt
  // (delivered stays delivered) and is then bounced or dropped the same way, unless it failed
  // permanently (bounced with its own reply). A message already being removed: found, nothing.
  RemovalReport cancel(const queue::QueueId& id, bool bounce);
  // Queued messages (not being removed) that are on hold (held) or not, for hold/release --all.
  std::vector<queue::QueueId> message_ids(bool held) const;

  // A paused module gets no jobs (it is not running); resuming makes its work ready again.
  void set_module_paused(const std::string& module, bool paused, Time now);

  // mailq: every queued message with its pending recipients, their destination, attempts,
  // next try and last error, in no particular order. O(queued recipients + timers); for the
  // admin, not for the delivery path.
  std::vector<QueuedMessage> snapshot(Time now) const;

  // flush: the waiting recipients in scope (every one, one message's, or those whose domain or
  // destination is `target`) become ready now, and the host holds of their destinations (and,
  // for a domain, of the destination named so) end: the next job probes the host. Returns how
  // many recipients became ready, counting the ready ones a hold released.
  std::size_t flush(FlushScope scope, const std::string& target, Time now);
  // flush of these messages only (estafette flush --sender ...): as above, per message how
  // many recipients became ready.
  std::map<queue::QueueId, std::size_t> flush(const std::set<queue::QueueId>& ids, Time now);

  // The queued messages (not being removed) that `selection` picks, as snapshot() shows them,
  // by id. O(queued recipients + timers), like snapshot(): one pass, for the admin.
  std::vector<QueuedMessage> select(const Selection& selection, Time now) const;

  // The routing used for messages added from now on (courierd's, reloaded on SIGHUP); until
  // called, one built from the config alone (its local_domains).
  void set_router(std::shared_ptr<const routing::Router> router) { router_ = std::move(router); }

  // When next_job() may have something new because a retry or hold falls due.
  std::optional<Time> next_wakeup() const;

  const Message* message(const queue::QueueId& id) const;
  bool contains(const queue::QueueId& id) const { return messages_.count(id) > 0; }
  std::size_t message_count() const { return messages_.size(); }
  std::size_t in_flight() const { return in_flight_; }
  std::size_t destination_count() const { return dests_.size(); }  // with any state
  std::size_t in_flight(const std::string& module, const std::string& key) const;
  bool held(const std::string& module, const std::string& key, Time now) const;
  // Retry delay before jitter for a recipient that has failed `attempts` times (>= 1).
  Millis retry_delay(unsigned attempts) const;

 private:
  struct Batch {
    queue::QueueId queue_id;
    std::vector<std::size_t> rcpts;
  };
  struct Dest {
    std::string module;
    std::string key;
    std::deque<Batch> ready;
    std::size_t in_flight = 0;
    Time held_until{};
    unsigned host_failures = 0;  // consecutive failed rounds; > 0: probe with one job
    bool flushed = false;        // flush() ended its hold: a failed probe does not lengthen it
    std::size_t window = 1;      // jobs it may have in flight (<= max_window()), concurrency()
    config::DestinationLimits limits;  // its own limits; zero: the global ones
    Time next_start{};                 // with a rate: no job starts before this
    bool in_rotation = false;
    std::size_t timers = 0;  // entries in timers_ naming this dest
  };
  struct Timer {
    std::string dest;  // internal dest id
    Batch batch;       // empty rcpts: a host hold expiring
  };
  struct Running {
    Job job;
    std::string dest;
  };

  static std::string dest_id(const std::string& module, const std::string& key);
  // Jobs the dest may have in flight: its window, or 1 while its host is failing (a probe).
  static std::size_t concurrency(const Dest& d) { return d.host_failures > 0 ? 1 : d.window; }
  Dest& dest(const Destination& where);
  // The window's ceiling: the destination's concurrency, else MAXHOST.
  std::size_t max_window(const Dest& d) const {
    return d.limits.concurrency ? d.limits.concurrency : limits_.max_per_host;
  }
  std::size_t max_rcpt(const Dest& d) const {
    return d.limits.max_rcpt ? d.limits.max_rcpt : limits_.max_rcpt;
  }
  void make_ready(const std::string& dest, Batch batch, bool front);
  void consider(const std::string& id, Dest& d, Time now);
  void release_due(Time now);
  void add_timer(Time at, const std::string& did, Batch batch);
  // The message of the dest's first ready batch, after dropping batches whose message is gone;
  // nullptr when nothing is ready.
  Message* front_message(Dest& d);
  Time expires_at(const Message& m) const {
    return Time(std::chrono::seconds(m.stored.envelope.arrival)) + limits_.queue_lifetime;
  }
  bool in_scope(FlushScope scope, const std::string& target, const Message& m, std::size_t rcpt,
                const Dest& d) const;
  // flush()'s work for the recipients `in` takes, ending the holds of `release` too; counts per
  // message into *per_message when given.
  using RcptFilter = std::function<bool(const Message&, std::size_t rcpt, const Dest&)>;
  std::size_t flush_where(const RcptFilter& in, std::set<std::string> release, Time now,
                          std::map<queue::QueueId, std::size_t>* per_message);
  // Drops the state of a dest with nothing ready, running or waiting (bounded memory).
  void forget_if_idle(const std::string& did);

  const config::Config& config_;
  std::shared_ptr<const routing::Router> router_;
  Limits limits_;
  Random random_;
  std::unordered_map<queue::QueueId, Message> messages_;
  std::unordered_map<std::string, Dest> dests_;
  std::deque<std::string> rotation_;  // dests with ready work, not held, under MAXHOST
  std::multimap<Time, Timer> timers_;
  std::multimap<Time, queue::QueueId> warn_timers_;  // delay warnings (warn_time after arrival)
  std::unordered_map<JobId, Running> running_;
  std::set<std::string> paused_;
  std::size_t in_flight_ = 0;
  JobId next_job_id_ = 1;
};

}  // namespace estafette::courierd
