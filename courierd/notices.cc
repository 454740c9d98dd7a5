#include "courierd/notices.h"

#include <algorithm>

#include "courierd/log_fields.h"
#include "courierd/wall_clock.h"
#include "lib/base/log.h"
#include "lib/queue/queue_id.h"
#include "lib/smtp/esmtp_params.h"

namespace estafette::courierd {

namespace {

Poco::Logger& logger() {
  return base::log("courierd");
}

// Bounced recipients the failure notice does not carry (their NOTIFY does not ask for one) are
// done at once; the others only once their notice is queued.
void add_bounced_without_notice(const std::vector<Bounce>& bounced,
                                const std::vector<std::size_t>& in_notice,
                                std::vector<std::size_t>& done) {
  for (const auto& b : bounced)
    if (std::find(in_notice.begin(), in_notice.end(), b.rcpt_index) == in_notice.end())
      done.push_back(b.rcpt_index);
}

// A recipient finished without a delivery attempt (expired on hold, cancelled, deleted): the
// attempt line with relay=none and all of the delay in the queue.
void log_unattempted(const queue::Envelope& env, std::size_t i, const std::string& reply,
                     std::string_view status, Time now) {
  const std::string& rcpt = env.recipients[i];
  logger().information(attempt_line(
      {env.id, rcpt, orig_to_of(rcpt, env.dsn_of(i).orcpt), "none", queue_delays(env.arrival, now),
       dsn_code(reply, status == "expired" ? base::DeliveryStatus::TempFail
                                           : base::DeliveryStatus::PermFail),
       status, "", reply}));
}

}  // namespace

Notices::Notices(event::Loop& loop, const config::Config& config, queue::Backend& backend,
                 Scheduler& scheduler, Parking& parking, Retried on_retried)
    : loop_(loop),
      config_(config),
      backend_(backend),
      scheduler_(scheduler),
      parking_(parking),
      on_retried_(std::move(on_retried)) {}

Notices::~Notices() {
  loop_.cancel_timer(retry_timer_);
}

void Notices::expire_held(Time now) {
  for (auto& expired : scheduler_.expire_held(now)) {
    const auto& env = expired.message.envelope;
    for (const auto& b : expired.report.bounced)
      log_unattempted(env, b.rcpt_index, b.reply, "expired", now);
    apply(expired.message, expired.report, "", now, std::nullopt, {});
  }
}

void Notices::apply(const queue::StoredMessage& original, const JobReport& report,
                    const std::string& remote_mta, Time now, std::optional<DsnAction> on_delivery,
                    const std::vector<std::string>& replies) {
  const auto& env = original.envelope;
  // One notice per action: the bounced recipients that want failure notices, and the delivered
  // ones that asked for success notices. The others are done at once.
  Notice failed = bounce_notice(env, report.bounced, remote_mta);
  Notice succeeded;
  std::vector<std::size_t> done = report.dropped;
  for (auto i : report.delivered) {
    const auto& dsn = env.dsn_of(i);
    if (!on_delivery || !(smtp::notify_flags(dsn.notify) & smtp::kNotifySuccess)) {
      done.push_back(i);
      continue;
    }
    succeeded.recipients.push_back({env.recipients[i], i < replies.size() ? replies[i] : "",
                                    remote_mta, false, *on_delivery, dsn.orcpt});
    succeeded.indexes.push_back(i);
  }
  add_bounced_without_notice(report.bounced, failed.indexes, done);
  std::vector<Notice> notices;
  notices.push_back(std::move(failed));
  notices.push_back(std::move(succeeded));
  // A finished message is simply removed: recording its last recipients first would cost an
  // fdatasync per message for nothing (a crash before the unlink only risks a duplicate).
  settle(original, std::move(notices), std::move(done), report.message_finished, false, now);
}

void Notices::finish_removal(const RemovalReport& removal, Time now) {
  const auto& env = removal.message.envelope;
  const auto& report = removal.report;
  for (const auto& b : report.bounced)
    log_unattempted(env, b.rcpt_index, b.reply, b.expired ? "expired" : "bounced", now);
  for (auto i : report.dropped)
    log_unattempted(env, i, "deleted by the administrator", "deleted", now);
  Notice failed = bounce_notice(env, report.bounced, "");
  std::vector<std::size_t> done = report.dropped;
  add_bounced_without_notice(report.bounced, failed.indexes, done);
  std::vector<Notice> notices;
  notices.push_back(std::move(failed));
  // Durable even when the message goes next (unlike after deliveries): a crash must not bring
  // back mail the administrator removed.
  settle(removal.message, std::move(notices), std::move(done), report.message_finished, true, now);
}

void Notices::settle(const queue::StoredMessage& original, std::vector<Notice> notices,
                     std::vector<std::size_t> done, bool finished, bool durable, Time now) {
  const queue::QueueId& id = original.envelope.id;
  std::vector<Notice> waiting;
  for (auto& n : notices) {
    if (n.recipients.empty()) continue;
    if (send_notice(original, n.recipients, now, n.retry_until))
      done.insert(done.end(), n.indexes.begin(), n.indexes.end());
    else
      waiting.push_back(std::move(n));
  }
  auto it = held_.find(id);
  if (!waiting.empty() && it == held_.end()) it = held_.emplace(id, Held{original, {}}).first;
  if (it != held_.end()) {
    Held& h = it->second;
    for (auto& n : waiting) h.notices.push_back(std::move(n));
    h.finished = h.finished || finished;
    h.durable = h.durable || durable;
    finished = h.finished;
    durable = h.durable;
  }
  const bool keep = it != held_.end() && !it->second.notices.empty();
  if (!waiting.empty())
    logger().warning("kept id=" + id + " in the queue until its notice can be queued (" +
                     std::to_string(it->second.notices.size()) + " waiting); retrying");
  const bool remove = finished && !keep;
  if (!done.empty() && (!remove || durable) && !backend_.mark_done(id, done))
    logger().error("mark_done failed id=" + id + " (recipients may be delivered twice)");
  if (remove) {
    if (backend_.remove(id))
      logger().information("id=" + id + " removed");
    else
      logger().error("remove failed id=" + id);
  }
  if (keep)
    arm_retry();
  else if (it != held_.end())
    held_.erase(it);
}

void Notices::arm_retry() {
  if (retry_timer_) return;
  const Millis ceiling = std::max(Millis(1), config_.retry_base);
  retry_delay_ = std::min(ceiling, retry_delay_.count() == 0 ? Millis(1000) : 2 * retry_delay_);
  retry_timer_ = loop_.add_timer(retry_delay_, [this] {
    retry_timer_ = 0;
    retry();
  });
}

void Notices::retry() {
  auto held = std::move(held_);
  held_.clear();
  Time now = wall_now();
  for (auto& [id, h] : held)
    settle(h.original, std::move(h.notices), {}, h.finished, h.durable, now);
  if (held_.empty()) retry_delay_ = Millis(0);
  if (on_retried_) on_retried_();
}

Notices::Notice Notices::bounce_notice(const queue::Envelope& env,
                                       const std::vector<Bounce>& bounced,
                                       const std::string& remote_mta) {
  Notice failed;
  for (const auto& b : bounced) {
    const auto& dsn = env.dsn_of(b.rcpt_index);
    if (smtp::notify_flags(dsn.notify) & smtp::kNotifyFailure) {
      failed.recipients.push_back(
          {b.recipient, b.reply, remote_mta, b.expired, DsnAction::Failed, dsn.orcpt});
      failed.indexes.push_back(b.rcpt_index);
    } else {
      logger().information("no bounce id=" + env.id + " to=<" + b.recipient +
                           "> (NOTIFY=" + dsn.notify + ")");
    }
  }
  return failed;
}

void Notices::send_delay_warnings(Time now) {
  std::vector<queue::QueueId> warned;
  for (auto& w : scheduler_.take_delay_warnings(now)) {
    std::vector<DsnRecipient> delayed;
    for (const auto& r : w.recipients)
      delayed.push_back({r.recipient, r.last_error, "", false, DsnAction::Delayed,
                         w.message.envelope.dsn_of(r.rcpt_index).orcpt});
    if (send_notice(w.message, delayed, now, ms_of(w.expires) / 1000)) {
      warned.push_back(w.message.envelope.id);
    } else {
      // Not lost: due again after retry_base, as a failed delivery would be.
      scheduler_.retry_delay_warning(w.message.envelope.id,
                                     now + std::max(Millis(1000), config_.retry_base));
    }
  }
  // So that a restarted courierd does not warn again. Not fsynced: a crash before the state
  // reaches the disk repeats one warning per message at worst.
  if (!warned.empty() && !backend_.set_warned(warned))
    logger().error("cannot record the delay warnings sent for " + std::to_string(warned.size()) +
                   " message(s): a restart may send them again");
}

bool Notices::send_notice(const queue::StoredMessage& original,
                          const std::vector<DsnRecipient>& recipients, Time now,
                          std::int64_t retry_until) {
  const auto& env = original.envelope;
  const DsnAction action = recipients.front().action;
  const std::string kind(action_text(action));
  if (env.sender.empty()) {
    // Notices go to the sender; one with the null sender gets none (it is a notice itself).
    if (action == DsnAction::Failed)
      logger().warning("double-bounce id=" + env.id +
                       " nrcpt=" + std::to_string(recipients.size()) + " dropped (null sender)");
    return true;
  }
  DsnRequest req;
  req.hostname = config_.hostname;
  req.message_id = queue::make_queue_id();
  req.queue_id = env.id;
  req.sender = env.sender;
  req.arrival = env.arrival;
  req.now = ms_of(now) / 1000;
  req.envid = env.envid;
  req.retry_until = retry_until;
  req.recipients = recipients;
  // RET=HDRS, or any notice but a bounce: the headers; a bounce otherwise: the whole message,
  // unless it is larger than what we accept (then the headers, as for RET=HDRS).
  if (action == DsnAction::Failed && smtp::parse_ret_text(env.ret) != smtp::DsnRet::Hdrs)
    req.original_message = read_original_message(original.path, original.body_offset,
                                                 original.body_size, config_.max_message_size);
  if (req.original_message.empty())
    req.original_headers =
        read_original_headers(original.path, original.body_offset, original.body_size);

  queue::Envelope dsn_env;
  dsn_env.id = req.message_id;
  dsn_env.arrival = req.now;
  dsn_env.sender = "";
  // A bounce to a local sender goes where its aliases lead (as mail to it would).
  auto expanded = routing::expand_recipients(*router_, {env.sender});
  // The sender's address as ORCPT where an alias replaced it, as esmtpd does for mail: the
  // log's orig_to (and a next hop's DSN) name the address the notice was for.
  for (const auto& r : expanded.recipients) {
    if (r == env.sender) continue;
    dsn_env.dsn.assign(expanded.recipients.size(), {});
    for (std::size_t k = 0; k < expanded.recipients.size(); ++k)
      if (expanded.recipients[k] != env.sender)
        dsn_env.dsn[k].orcpt = "rfc822;" + smtp::xtext_encode(env.sender);
    break;
  }
  dsn_env.recipients = std::move(expanded.recipients);
  dsn_env.programs = std::move(expanded.programs);
  queue::QueueId dsn_id;
  bool written = false;
  try {
    written = queue::write_message(backend_, dsn_env, compose_dsn(req), &dsn_id);
  } catch (const std::exception& e) {
    logger().error("notice (" + kind + "): " + e.what());
  }
  if (!written) {
    logger().error("cannot queue the " + kind + " notice for id=" + env.id + " to=<" + env.sender +
                   ">");
    return false;
  }
  // As Postfix, the notice's own id follows "notification: id=" (`estafette log` follows it).
  logger().information("id=" + env.id + " sender " +
                       (action == DsnAction::Failed ? std::string("non-delivery")
                                                    : "delivery status (" + kind + ")") +
                       " notification: id=" + dsn_id + " to=<" + log_text(env.sender) +
                       "> nrcpt=" + std::to_string(recipients.size()));
  if (auto m = backend_.load(dsn_id)) parking_.schedule(std::move(*m), false);
  return true;
}

}  // namespace estafette::courierd
