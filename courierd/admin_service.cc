#include "courierd/admin_service.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "courierd/log_fields.h"
#include "courierd/wall_clock.h"
#include "lib/base/log.h"

namespace estafette::courierd {

namespace {

Poco::Logger& logger() {
  return base::log("courierd");
}

ipc::RcptState to_ipc(QueuedRecipient::State state) {
  switch (state) {
    case QueuedRecipient::State::Waiting:
      return ipc::RcptState::Waiting;
    case QueuedRecipient::State::Ready:
      return ipc::RcptState::Ready;
    case QueuedRecipient::State::InFlight:
      return ipc::RcptState::InFlight;
    case QueuedRecipient::State::Held:
      return ipc::RcptState::Held;
  }
  return ipc::RcptState::Ready;
}

}  // namespace

ipc::QueuedRcpt to_ipc(const QueuedRecipient& r) {
  return ipc::QueuedRcpt{r.address,  r.destination,   to_ipc(r.state),
                         r.attempts, r.next_retry_ms, r.last_error};
}

ipc::QueueEntry to_ipc(const QueuedMessage& m) {
  ipc::QueueEntry e{m.queue_id, m.arrival, m.size, m.sender, m.held, m.quarantine, {}};
  e.recipients.reserve(m.recipients.size());
  for (const auto& r : m.recipients) e.recipients.push_back(to_ipc(r));
  return e;
}

ipc::QueueShapeReply queue_shape(const std::vector<QueuedMessage>& messages, std::size_t max_rows) {
  std::map<std::string, ipc::QueueShapeRow> by_destination;
  for (const auto& m : messages) {
    for (const auto& r : m.recipients) {
      auto& row = by_destination[r.destination];
      if (row.recipients == 0 || m.arrival < row.oldest_arrival) row.oldest_arrival = m.arrival;
      ++row.recipients;
    }
  }
  std::vector<ipc::QueueShapeRow> rows;
  rows.reserve(by_destination.size());
  for (auto& [destination, row] : by_destination) {
    row.destination = destination;
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.recipients > b.recipients; });
  ipc::QueueShapeReply reply;
  for (auto& row : rows) {
    if (reply.rows.size() < max_rows) {
      reply.rows.push_back(std::move(row));
      continue;
    }
    if (reply.other_recipients == 0 || row.oldest_arrival < reply.other_oldest)
      reply.other_oldest = row.oldest_arrival;
    reply.other_recipients += row.recipients;
  }
  return reply;
}

FlushScope from_ipc(ipc::FlushScope scope) {
  switch (scope) {
    case ipc::FlushScope::All:
      return FlushScope::All;
    case ipc::FlushScope::Message:
      return FlushScope::Message;
    case ipc::FlushScope::Domain:
      return FlushScope::Domain;
  }
  return FlushScope::All;
}

Selection from_ipc(const ipc::QueueSelection& s) {
  Selection out;
  if (s.by_sender) out.sender = s.sender;
  out.rcpt_domain = s.rcpt_domain;
  out.destination = s.destination;
  out.older_than = std::chrono::seconds(s.older_than_s);
  out.reason = s.reason;
  return out;
}

AdminService::AdminService(Scheduler& scheduler, Parking& parking, Notices& notices,
                           queue::Backend& backend, Changed on_change)
    : scheduler_(scheduler),
      parking_(parking),
      notices_(notices),
      backend_(backend),
      on_change_(std::move(on_change)) {}

bool AdminService::handle(ipc::Channel& client, const ipc::Frame& frame) {
  if (ipc::decode_queue_list_request(frame)) {
    send_queue_list(client);
    return true;
  }
  if (ipc::decode_queue_shape_request(frame)) {
    send_queue_shape(client);
    return true;
  }
  if (auto f = ipc::decode_flush_request(frame)) {
    flush(client, *f);
    return true;
  }
  if (auto op = ipc::decode_queue_op_request(frame)) {
    queue_op(client, *op);
    return true;
  }
  if (auto op = ipc::decode_queue_select_request(frame)) {
    select_op(client, *op);
    return true;
  }
  return false;
}

void AdminService::send_queue_list(ipc::Channel& client) {
  Time now = wall_now();
  auto entries = scheduler_.snapshot(now);
  // Messages waiting for their MX sites: ready, under their domain, until the answer comes.
  auto parked = parking_.snapshot();
  entries.insert(entries.end(), std::make_move_iterator(parked.begin()),
                 std::make_move_iterator(parked.end()));
  for (const auto& e : entries) client.send(ipc::encode(to_ipc(e)));
  client.send(
      ipc::encode(ipc::QueueListEnd{static_cast<std::uint32_t>(entries.size()), ms_of(now)}));
  logger().debug("mailq messages=" + std::to_string(entries.size()));
}

void AdminService::send_queue_shape(ipc::Channel& client) {
  Time now = wall_now();
  auto entries = scheduler_.snapshot(now);
  auto parked = parking_.snapshot();
  entries.insert(entries.end(), std::make_move_iterator(parked.begin()),
                 std::make_move_iterator(parked.end()));
  ipc::QueueShapeReply reply = queue_shape(entries, ipc::kMaxQueueShapeRows);
  reply.now_ms = ms_of(now);
  client.send(ipc::encode(reply));
}

void AdminService::flush(ipc::Channel& client, const ipc::FlushRequest& request) {
  std::size_t ready = scheduler_.flush(from_ipc(request.scope), request.target, wall_now());
  const char* scope = request.scope == ipc::FlushScope::All       ? "all"
                      : request.scope == ipc::FlushScope::Message ? "message"
                                                                  : "domain";
  logger().information(std::string("flush scope=") + scope +
                       (request.target.empty() ? "" : " target=" + log_quoted(request.target)) +
                       " ready=" + std::to_string(ready));
  ipc::FlushReply reply{ready};
  if (request.scope == ipc::FlushScope::Message && !scheduler_.contains(request.target)) {
    // Still waiting for its MX sites (parking) is in the queue too.
    const auto parked = parking_.snapshot();
    reply.found = std::any_of(parked.begin(), parked.end(),
                              [&](const auto& m) { return m.queue_id == request.target; });
  }
  client.send(ipc::encode(reply));
  on_change_();
}

void AdminService::queue_op(ipc::Channel& client, const ipc::QueueOpRequest& request) {
  Time now = wall_now();
  ipc::QueueOpReply reply;
  const bool by_id = !request.all;
  auto count = [&](const queue::QueueId&, std::size_t rcpts, std::size_t in_flight) {
    ++reply.messages;
    reply.recipients += rcpts;
    reply.in_flight += in_flight;
  };
  if (request.op == ipc::QueueOp::Hold || request.op == ipc::QueueOp::Release) {
    reply = set_held(request, now);
  } else if (request.op == ipc::QueueOp::Cancel || request.op == ipc::QueueOp::Delete) {
    // ALL: every message the scheduler holds, held or not, in one request (nothing can arrive
    // between two of them and be missed or taken).
    std::vector<queue::QueueId> ids;
    if (by_id) {
      ids.push_back(request.queue_id);
    } else {
      ids = scheduler_.message_ids(false);
      auto held = scheduler_.message_ids(true);
      ids.insert(ids.end(), held.begin(), held.end());
    }
    apply_removal(ids, request.op == ipc::QueueOp::Cancel, now, count);
    if (by_id && reply.messages == 0) reply.status = ipc::QueueOpStatus::NotFound;
  } else {
    reply.status = ipc::QueueOpStatus::Failed;  // flush has a request of its own
    reply.error = "not an operation on queue ids";
  }
  if (reply.status == ipc::QueueOpStatus::NotFound)
    logger().information("admin request for a message not in the queue id=" +
                         log_quoted(request.queue_id));
  client.send(ipc::encode(reply));
  on_change_();
}

ipc::QueueOpReply AdminService::set_held(const ipc::QueueOpRequest& request, Time now) {
  const bool hold = request.op == ipc::QueueOp::Hold;
  ipc::QueueOpReply reply;
  std::vector<queue::QueueId> ids;
  if (request.all) {
    ids = scheduler_.message_ids(!hold);  // hold: those not held yet; release: the held ones
  } else if (scheduler_.contains(request.queue_id)) {
    ids.push_back(request.queue_id);
  } else {
    reply.status = ipc::QueueOpStatus::NotFound;
    return reply;
  }
  bool recorded = apply_held(ids, hold, now,
                             [&](const queue::QueueId&, std::size_t rcpts, std::size_t in_flight) {
                               ++reply.messages;
                               reply.recipients += rcpts;
                               reply.in_flight += in_flight;
                             });
  if (!recorded) {
    reply.status = ipc::QueueOpStatus::Failed;
    reply.error = "the queue could not record it (see courierd's log)";
  }
  return reply;
}

bool AdminService::apply_held(const std::vector<queue::QueueId>& ids, bool hold, Time now,
                              const PerMessage& each) {
  // Durable first (one fsync for all): a hold must survive a restart.
  if (!ids.empty() && !backend_.set_held(ids, hold)) return false;
  for (const auto& id : ids) {
    HoldResult r = hold
                       ? scheduler_.hold(id)
                       : scheduler_.release(id, now, [this](const std::string& rcpt, bool program) {
                           return parking_.route_known(rcpt, program);
                         });
    if (!r.found) continue;
    each(id, r.recipients, r.in_flight);
    logger().information(std::string(hold ? "hold" : "release") + " id=" + id +
                         " nrcpt=" + std::to_string(r.recipients) +
                         " in_flight=" + std::to_string(r.in_flight));
  }
  return true;
}

void AdminService::apply_removal(const std::vector<queue::QueueId>& ids, bool cancel, Time now,
                                 const PerMessage& each) {
  for (const auto& id : ids) {
    RemovalReport removal = scheduler_.cancel(id, cancel);
    if (!removal.found) continue;
    const std::size_t rcpts = removal.report.bounced.size() + removal.report.dropped.size();
    each(id, rcpts, removal.in_flight);
    logger().information(std::string(cancel ? "cancel" : "delete") + " id=" + id + " nrcpt=" +
                         std::to_string(rcpts) + " in_flight=" + std::to_string(removal.in_flight));
    notices_.finish_removal(removal, now);
  }
}

void AdminService::select_op(ipc::Channel& client, const ipc::QueueSelectRequest& request) {
  static constexpr const char* kNames[] = {"hold", "release", "cancel", "delete", "flush"};
  const Time now = wall_now();
  const ipc::QueueOp op = request.op;
  // Selection and operation in this one call on the loop: nothing changes in between.
  std::vector<queue::QueueId> ids;
  for (const auto& m : scheduler_.select(from_ipc(request.selection), now)) {
    const bool wanted = op == ipc::QueueOp::Release
                            ? m.held
                            : (op == ipc::QueueOp::Cancel || op == ipc::QueueOp::Delete || !m.held);
    if (wanted) ids.push_back(m.queue_id);
  }
  ipc::QueueOpReply reply;
  auto each = [&](const queue::QueueId& id, std::size_t rcpts, std::size_t in_flight) {
    ++reply.messages;
    reply.recipients += rcpts;
    reply.in_flight += in_flight;
    client.send(ipc::encode(ipc::QueueSelected{id, rcpts, in_flight}));
  };
  switch (op) {
    case ipc::QueueOp::Hold:
    case ipc::QueueOp::Release:
      if (!apply_held(ids, op == ipc::QueueOp::Hold, now, each)) {
        reply.status = ipc::QueueOpStatus::Failed;
        reply.error = "the queue could not record it (see courierd's log)";
      }
      break;
    case ipc::QueueOp::Cancel:
    case ipc::QueueOp::Delete:
      apply_removal(ids, op == ipc::QueueOp::Cancel, now, each);
      break;
    case ipc::QueueOp::Flush:
      for (const auto& [id, ready] :
           scheduler_.flush(std::set<queue::QueueId>(ids.begin(), ids.end()), now))
        each(id, ready, 0);
      break;
  }
  if (reply.status == ipc::QueueOpStatus::Ok && reply.messages == 0)
    reply.status = ipc::QueueOpStatus::NotFound;
  logger().information(std::string("select op=") + kNames[static_cast<int>(op)] +
                       " messages=" + std::to_string(reply.messages) +
                       " nrcpt=" + std::to_string(reply.recipients));
  client.send(ipc::encode(reply));
  on_change_();
}

}  // namespace estafette::courierd
