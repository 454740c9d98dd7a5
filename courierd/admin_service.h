// admin_service.h: courierd's answers to the admin requests of `estafette mailq`, `flush`,
// `hold`, `release`, `cancel` and `delete` (QueueListRequest, FlushRequest, QueueOpRequest on
// courierd's socket, passed on by Intake) and their selections (QueueSelectRequest: the messages
// are selected and the operation applied in one step on the loop, so none changes in between),
// answered at once from the scheduler's in-memory index and the parked messages, never from the
// queue files. hold/release are recorded in the queue first (Backend::set_held, one fsync);
// cancel/delete are finished by Notices. This is the IPC layer of the scheduler: it converts the
// scheduler's own types (QueuedMessage, FlushScope) to and from the wire's (to_ipc, from_ipc).
//
// Loop thread only. AdminService borrows the scheduler, Parking, Notices and the queue backend
// (all outlive it) and owns nothing; replies go to the channel the request came on.
// Errors: nothing throws; a request the queue cannot record is answered QueueOpStatus::Failed,
// one for a message not queued NotFound (logged, logger "courierd").
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "courierd/notices.h"
#include "courierd/parking.h"
#include "courierd/scheduler.h"
#include "lib/ipc/channel.h"
#include "lib/ipc/messages.h"
#include "lib/queue/backend.h"

namespace estafette::courierd {

// The wire form of a snapshot entry, and the scheduler's scope of a FlushRequest. Pure.
ipc::QueueEntry to_ipc(const QueuedMessage& message);
ipc::QueuedRcpt to_ipc(const QueuedRecipient& recipient);
FlushScope from_ipc(ipc::FlushScope scope);
Selection from_ipc(const ipc::QueueSelection& selection);
// estafette-metrics' queue shape of a snapshot: pending recipients and the oldest arrival per
// destination, the max_rows destinations with the most recipients first (ties by name), the
// rest summed as "other". now_ms is left 0. Pure.
ipc::QueueShapeReply queue_shape(const std::vector<QueuedMessage>& messages, std::size_t max_rows);

class AdminService final {
 public:
  // After a flush or a queue operation: the scheduler may have work.
  using Changed = std::function<void()>;

  AdminService(Scheduler& scheduler, Parking& parking, Notices& notices, queue::Backend& backend,
               Changed on_change);
  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;

  // Answers the frame on `client` when it is an admin request (true); false for any other.
  bool handle(ipc::Channel& client, const ipc::Frame& frame);

 private:
  // mailq: one QueueEntry frame per queued (or parked) message, then QueueListEnd.
  void send_queue_list(ipc::Channel& client);
  // estafette-metrics: one QueueShapeReply (bounded, whatever the queue's length).
  void send_queue_shape(ipc::Channel& client);
  // flush: the scope becomes ready now; replies with how many recipients did.
  void flush(ipc::Channel& client, const ipc::FlushRequest& request);
  // hold/release/cancel/delete: applies it, replies with QueueOpReply.
  void queue_op(ipc::Channel& client, const ipc::QueueOpRequest& request);
  ipc::QueueOpReply set_held(const ipc::QueueOpRequest& request, Time now);
  // hold/release/cancel/delete/flush of the messages a selection picks: hold takes those not
  // held, release the held ones, flush those not held, cancel/delete all. One QueueSelected per
  // message, then a QueueOpReply (NotFound: none picked).
  void select_op(ipc::Channel& client, const ipc::QueueSelectRequest& request);
  // Per message it applied to: (id, recipients, in flight).
  using PerMessage = std::function<void(const queue::QueueId&, std::size_t, std::size_t)>;
  // hold/release of ids, recorded in the queue first; false: the queue could not record it.
  bool apply_held(const std::vector<queue::QueueId>& ids, bool hold, Time now,
                  const PerMessage& each);
  void apply_removal(const std::vector<queue::QueueId>& ids, bool cancel, Time now,
                     const PerMessage& each);

  Scheduler& scheduler_;
  Parking& parking_;
  Notices& notices_;
  queue::Backend& backend_;
  Changed on_change_;
};

}  // namespace estafette::courierd
