// messages.h: the typed messages between Estafette's processes and their encoding.
//   esmtpd   -> courierd  NewMessage     (a message was committed to the queue)
//   esmtpd   -> courierd  Rescan         (NewMessages were lost: look for them in the queue)
//   courierd -> module    Deliver        (deliver one message to some of its recipients)
//   module   -> courierd  DeliverResult  (per-recipient outcome of a Deliver)
//   module   -> courierd  ModuleReady    (a module announces its name and limits on start)
//   estafette -> courierd QueueListRequest (mailq); courierd answers with one QueueEntry per
//                          queued message, then QueueListEnd (one frame per message keeps every
//                          frame far below kMaxFrame however long the queue is)
//   estafette -> courierd FlushRequest   (retry now); courierd answers FlushReply
//   estafette -> courierd QueueOpRequest (hold, release, cancel, delete); courierd answers
//                          QueueOpReply
//   estafette -> courierd QueueSelectRequest (hold/release/cancel/delete/flush of the messages a
//                          QueueSelection picks); courierd answers one QueueSelected per message,
//                          then a QueueOpReply (NotFound: nothing matched)
//   estafette-metrics -> courierd QueueShapeRequest; courierd answers QueueShapeReply (pending
//                          recipients and the oldest arrival per destination, bounded)
// decode_* return nullopt for a frame of another type or a malformed payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/delivery_status.h"
#include "lib/ipc/frame.h"

namespace estafette::ipc {

enum class MessageType : std::uint8_t {
  NewMessage = 1,
  Deliver = 2,
  DeliverResult = 3,
  ModuleReady = 4,
  QueueListRequest = 5,
  QueueEntry = 6,
  QueueListEnd = 7,
  FlushRequest = 8,
  FlushReply = 9,
  QueueOpRequest = 10,
  QueueOpReply = 11,
  Rescan = 12,
  // Admin selections; numbered apart so that other new types can take 13 on.
  QueueSelectRequest = 40,
  QueueSelected = 41,
  QueueShapeRequest = 13,
  QueueShapeReply = 14,
};

struct NewMessage {
  std::string queue_id;
};

// Sent after NewMessages were lost (too many waiting while courierd was away, or unsent on a
// link that closed): courierd rescans the queue for messages it does not know.
struct Rescan {
  std::uint64_t lost = 0;  // notices lost, as far as the sender knows (for the log)
};

struct Deliver {
  std::uint64_t job_id = 0;
  std::string queue_id;
  std::string path;               // file holding the body
  std::uint64_t body_offset = 0;  // wire-form body: [body_offset, body_offset + body_size)
  std::uint64_t body_size = 0;
  std::string sender;       // "" = null sender
  std::string destination;  // esmtp: "host:port" from a route, or a domain for MX lookup
  std::vector<std::string> recipients;
  // DSN (RFC 3461) to pass on to a next hop that supports it: RET ("FULL"/"HDRS"/""), ENVID
  // (xtext), and per recipient NOTIFY and ORCPT ("" = not given); notify and orcpt are either
  // empty or parallel to recipients.
  std::string ret;
  std::string envid;
  std::vector<std::string> notify;
  std::vector<std::string> orcpt;
  // local: per recipient, "" or the command of a program delivery, from the queue record's P
  // records (a claim that the recipient's alias names it: estafette-local checks it against
  // its own read of the aliases); empty when no recipient has one. Optional on the wire (a
  // frame that ends after the recipients has none).
  std::vector<std::string> programs;
  // REQUIRETLS (RFC 8689): verified TLS to a next hop that supports it, or 5.7.10. Optional on
  // the wire, after programs.
  bool require_tls = false;
};

// The wire values are base::DeliveryStatus's (0 delivered, 1 temporary, 2 permanent).
using RcptStatus = base::DeliveryStatus;

struct RcptResult {
  RcptStatus status = RcptStatus::TempFail;
  std::string reply;  // the remote reply or a local explanation, for logs and DSNs
};

struct DeliverResult {
  std::uint64_t job_id = 0;
  std::string remote;               // "mx.example[1.2.3.4]:25" or "maildir", for logs
  std::vector<RcptResult> results;  // one per recipient of the Deliver, in order
  // True when the destination host itself failed (connect error, greeting 4xx): the scheduler
  // backs off the whole host, not just this message.
  bool host_failed = false;
  // The next hop advertised DSN and got the DSN parameters: it sends any success notice
  // itself; otherwise courierd sends "relayed" for NOTIFY=SUCCESS.
  bool next_hop_dsn = false;
  // The module's timing of this job, for the delays= of courierd's log (c and d; courierd takes
  // a and b from its own clock): setup_ms from the first connection attempt until the
  // transaction started (greeting, EHLO, STARTTLS, AUTH; 0 on a reused connection or for
  // estafette-local), transfer_ms from then until the last reply (MAIL to the end of data;
  // estafette-local: the delivery). A claim: courierd bounds them by its own clock. Optional
  // on the wire, after next_hop_dsn.
  std::uint64_t setup_ms = 0;
  std::uint64_t transfer_ms = 0;
};

struct ModuleReady {
  std::string name;
};

struct QueueListRequest {
  bool operator==(const QueueListRequest&) const = default;
};

enum class RcptState : std::uint8_t { Waiting = 0, Ready = 1, InFlight = 2, Held = 3 };

// One pending recipient of a queued message, as courierd's scheduler sees it.
struct QueuedRcpt {
  std::string address;
  std::string destination;  // "local", "host:port" (a route), the domain or "mx:HOST,..." (site)
  RcptState state = RcptState::Ready;
  std::uint32_t attempts = 0;
  std::int64_t next_retry_ms = 0;  // unix ms of the next try; 0 = ready now or in flight
  std::string last_error;          // the last temporary failure's reply, "" = none yet
  bool operator==(const QueuedRcpt&) const = default;
};

struct QueueEntry {
  std::string queue_id;
  std::int64_t arrival = 0;  // unix seconds
  std::uint64_t size = 0;    // body bytes
  std::string sender;        // "" = null sender
  bool held = false;         // on hold (by the administrator, or quarantined)
  std::string quarantine;    // a filter's quarantine reason, "" = none
  std::vector<QueuedRcpt> recipients;
  bool operator==(const QueueEntry&) const = default;
};

struct QueueListEnd {
  std::uint32_t messages = 0;  // QueueEntry frames sent before it
  std::int64_t now_ms = 0;     // courierd's clock when it answered
  bool operator==(const QueueListEnd&) const = default;
};

enum class FlushScope : std::uint8_t { All = 0, Message = 1, Domain = 2 };

struct FlushRequest {
  FlushScope scope = FlushScope::All;
  std::string target;  // the queue id or the domain; "" for All
  bool operator==(const FlushRequest&) const = default;
};

struct FlushReply {
  std::uint64_t ready = 0;  // recipients that became ready for delivery
  bool found = true;        // FlushScope::Message: the message is in the queue
  bool operator==(const FlushReply&) const = default;
};

// The admin's operations on queued messages (estafette hold|release|cancel|delete|flush).
// Flush only in a QueueSelectRequest (FlushRequest is the flush of an id, a domain or all).
enum class QueueOp : std::uint8_t { Hold = 0, Release = 1, Cancel = 2, Delete = 3, Flush = 4 };

struct QueueOpRequest {
  QueueOp op = QueueOp::Hold;
  bool all = false;      // hold/release only: every queued message (queue_id is "")
  std::string queue_id;  // the message, when not all
  bool operator==(const QueueOpRequest&) const = default;
};

enum class QueueOpStatus : std::uint8_t { Ok = 0, NotFound = 1, Failed = 2 };

struct QueueOpReply {
  QueueOpStatus status = QueueOpStatus::Ok;
  std::uint64_t messages = 0;    // messages it applied to
  std::uint64_t recipients = 0;  // recipients held, released, bounced or dropped now
  std::uint64_t in_flight = 0;   // recipients in a delivery attempt: it applies when that ends
  std::string error;             // Failed: why (the queue could not record it)
  bool operator==(const QueueOpReply&) const = default;
};

// Which messages an operation applies to: every criterion given must hold (AND); at least one
// is given. Each text is at most kMaxSelectorSize printable bytes (the decoder checks).
inline constexpr std::size_t kMaxSelectorSize = 1024;
inline constexpr std::uint64_t kMaxOlderThanSeconds = 100ull * 366 * 86400;
struct QueueSelection {
  bool by_sender = false;
  std::string sender;              // by_sender: the envelope sender, "" = the null sender
  std::string rcpt_domain;         // a pending recipient in this domain; "" = any
  std::string destination;         // a pending recipient with this destination key; "" = any
  std::uint64_t older_than_s = 0;  // queued for at least this long; 0 = any age
  std::string reason;              // in a pending recipient's last temporary error; "" = any
  bool empty() const {
    return !by_sender && rcpt_domain.empty() && destination.empty() && older_than_s == 0 &&
           reason.empty();
  }
  bool operator==(const QueueSelection&) const = default;
};

struct QueueSelectRequest {
  QueueOp op = QueueOp::Hold;
  QueueSelection selection;
  bool operator==(const QueueSelectRequest&) const = default;
};

// One message a QueueSelectRequest applied to (one frame each: any number of messages).
struct QueueSelected {
  std::string queue_id;
  std::uint64_t recipients = 0;  // held, released, bounced, dropped or made ready now
  std::uint64_t in_flight = 0;   // in a delivery attempt: it applies when that ends
  bool operator==(const QueueSelected&) const = default;
};

struct QueueShapeRequest {
  bool operator==(const QueueShapeRequest&) const = default;
};

// At most kMaxQueueShapeRows rows (the destinations with the most pending recipients); the rest
// are summed into other_recipients and other_oldest.
inline constexpr std::size_t kMaxQueueShapeRows = 200;

struct QueueShapeRow {
  std::string destination;  // as QueuedRcpt::destination
  std::uint64_t recipients = 0;
  std::int64_t oldest_arrival = 0;  // unix seconds, of its oldest message
  bool operator==(const QueueShapeRow&) const = default;
};

struct QueueShapeReply {
  std::vector<QueueShapeRow> rows;
  std::uint64_t other_recipients = 0;
  std::int64_t other_oldest = 0;  // 0: none
  std::int64_t now_ms = 0;        // courierd's clock when it answered
  bool operator==(const QueueShapeReply&) const = default;
};

std::string encode(const NewMessage& m);
std::string encode(const Rescan& m);
std::string encode(const Deliver& m);
std::string encode(const DeliverResult& m);
std::string encode(const ModuleReady& m);
std::string encode(const QueueListRequest& m);
std::string encode(const QueueEntry& m);
std::string encode(const QueueListEnd& m);
std::string encode(const FlushRequest& m);
std::string encode(const FlushReply& m);
std::string encode(const QueueOpRequest& m);
std::string encode(const QueueOpReply& m);
std::string encode(const QueueSelectRequest& m);
std::string encode(const QueueSelected& m);
std::string encode(const QueueShapeRequest& m);
std::string encode(const QueueShapeReply& m);

std::optional<NewMessage> decode_new_message(const Frame& f);
std::optional<Rescan> decode_rescan(const Frame& f);
std::optional<Deliver> decode_deliver(const Frame& f);
std::optional<DeliverResult> decode_deliver_result(const Frame& f);
std::optional<ModuleReady> decode_module_ready(const Frame& f);
std::optional<QueueListRequest> decode_queue_list_request(const Frame& f);
std::optional<QueueEntry> decode_queue_entry(const Frame& f);
std::optional<QueueListEnd> decode_queue_list_end(const Frame& f);
std::optional<FlushRequest> decode_flush_request(const Frame& f);
std::optional<FlushReply> decode_flush_reply(const Frame& f);
std::optional<QueueOpRequest> decode_queue_op_request(const Frame& f);
std::optional<QueueOpReply> decode_queue_op_reply(const Frame& f);
std::optional<QueueSelectRequest> decode_queue_select_request(const Frame& f);
std::optional<QueueSelected> decode_queue_selected(const Frame& f);
std::optional<QueueShapeRequest> decode_queue_shape_request(const Frame& f);
std::optional<QueueShapeReply> decode_queue_shape_reply(const Frame& f);

}  // namespace estafette::ipc
