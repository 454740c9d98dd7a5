#include "lib/ipc/messages.h"

namespace estafette::ipc {

namespace {
std::uint8_t type_of(MessageType t) {
  return static_cast<std::uint8_t>(t);
}
}  // namespace

std::string encode(const NewMessage& m) {
  return Writer(type_of(MessageType::NewMessage)).str(m.queue_id).finish();
}

std::string encode(const Rescan& m) {
  return Writer(type_of(MessageType::Rescan)).u64(m.lost).finish();
}

std::string encode(const Deliver& m) {
  return Writer(type_of(MessageType::Deliver))
      .u64(m.job_id)
      .str(m.queue_id)
      .str(m.path)
      .u64(m.body_offset)
      .u64(m.body_size)
      .str(m.sender)
      .str(m.destination)
      .strings(m.recipients)
      .str(m.ret)
      .str(m.envid)
      .strings(m.notify)
      .strings(m.orcpt)
      .strings(m.programs)
      .u8(m.require_tls ? 1 : 0)
      .finish();
}

std::string encode(const DeliverResult& m) {
  Writer w(type_of(MessageType::DeliverResult));
  w.u64(m.job_id)
      .str(m.remote)
      .u8(m.host_failed ? 1 : 0)
      .u32(static_cast<std::uint32_t>(m.results.size()));
  for (const auto& r : m.results) w.u8(static_cast<std::uint8_t>(r.status)).str(r.reply);
  w.u8(m.next_hop_dsn ? 1 : 0).u64(m.setup_ms).u64(m.transfer_ms);
  return w.finish();
}

std::string encode(const ModuleReady& m) {
  return Writer(type_of(MessageType::ModuleReady)).str(m.name).finish();
}

std::optional<NewMessage> decode_new_message(const Frame& f) {
  if (f.type != type_of(MessageType::NewMessage)) return std::nullopt;
  Reader r(f.payload);
  NewMessage m{r.str()};
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::optional<Rescan> decode_rescan(const Frame& f) {
  if (f.type != type_of(MessageType::Rescan)) return std::nullopt;
  Reader r(f.payload);
  Rescan m{r.u64()};
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::optional<Deliver> decode_deliver(const Frame& f) {
  if (f.type != type_of(MessageType::Deliver)) return std::nullopt;
  Reader r(f.payload);
  Deliver m;
  m.job_id = r.u64();
  m.queue_id = r.str();
  m.path = r.str();
  m.body_offset = r.u64();
  m.body_size = r.u64();
  m.sender = r.str();
  m.destination = r.str();
  m.recipients = r.strings();
  m.ret = r.str();
  m.envid = r.str();
  m.notify = r.strings();
  m.orcpt = r.strings();
  if (!r.ok_and_done()) m.programs = r.strings();  // optional: older senders end before it
  if (!r.ok_and_done()) m.require_tls = r.u8() != 0;
  if (!r.ok_and_done()) return std::nullopt;
  if ((!m.notify.empty() && m.notify.size() != m.recipients.size()) ||
      (!m.orcpt.empty() && m.orcpt.size() != m.recipients.size()) ||
      (!m.programs.empty() && m.programs.size() != m.recipients.size()))
    return std::nullopt;
  return m;
}

std::optional<DeliverResult> decode_deliver_result(const Frame& f) {
  if (f.type != type_of(MessageType::DeliverResult)) return std::nullopt;
  Reader r(f.payload);
  DeliverResult m;
  m.job_id = r.u64();
  m.remote = r.str();
  m.host_failed = r.u8() != 0;
  std::uint32_t n = r.u32();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    RcptResult one;
    std::uint8_t status = r.u8();
    if (status > 2) return std::nullopt;
    one.status = static_cast<RcptStatus>(status);
    one.reply = r.str();
    m.results.push_back(std::move(one));
  }
  m.next_hop_dsn = r.u8() != 0;
  if (!r.ok_and_done()) {  // optional: older modules end before the timing
    m.setup_ms = r.u64();
    m.transfer_ms = r.u64();
  }
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::optional<ModuleReady> decode_module_ready(const Frame& f) {
  if (f.type != type_of(MessageType::ModuleReady)) return std::nullopt;
  Reader r(f.payload);
  ModuleReady m{r.str()};
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::string encode(const QueueListRequest&) {
  return Writer(type_of(MessageType::QueueListRequest)).finish();
}

std::string encode(const QueueEntry& m) {
  Writer w(type_of(MessageType::QueueEntry));
  w.str(m.queue_id)
      .u64(static_cast<std::uint64_t>(m.arrival))
      .u64(m.size)
      .str(m.sender)
      .u8(m.held ? 1 : 0)
      .str(m.quarantine)
      .u32(static_cast<std::uint32_t>(m.recipients.size()));
  for (const auto& r : m.recipients)
    w.str(r.address)
        .str(r.destination)
        .u8(static_cast<std::uint8_t>(r.state))
        .u32(r.attempts)
        .u64(static_cast<std::uint64_t>(r.next_retry_ms))
        .str(r.last_error);
  return w.finish();
}

std::string encode(const QueueListEnd& m) {
  return Writer(type_of(MessageType::QueueListEnd))
      .u32(m.messages)
      .u64(static_cast<std::uint64_t>(m.now_ms))
      .finish();
}

std::string encode(const FlushRequest& m) {
  return Writer(type_of(MessageType::FlushRequest))
      .u8(static_cast<std::uint8_t>(m.scope))
      .str(m.target)
      .finish();
}

std::string encode(const FlushReply& m) {
  return Writer(type_of(MessageType::FlushReply)).u64(m.ready).u8(m.found ? 1 : 0).finish();
}

std::optional<QueueListRequest> decode_queue_list_request(const Frame& f) {
  if (f.type != type_of(MessageType::QueueListRequest) || !f.payload.empty()) return std::nullopt;
  return QueueListRequest{};
}

std::optional<QueueEntry> decode_queue_entry(const Frame& f) {
  if (f.type != type_of(MessageType::QueueEntry)) return std::nullopt;
  Reader r(f.payload);
  QueueEntry m;
  m.queue_id = r.str();
  m.arrival = static_cast<std::int64_t>(r.u64());
  m.size = r.u64();
  m.sender = r.str();
  std::uint8_t held = r.u8();
  if (held > 1) return std::nullopt;
  m.held = held == 1;
  m.quarantine = r.str();
  std::uint32_t n = r.u32();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    QueuedRcpt one;
    one.address = r.str();
    one.destination = r.str();
    std::uint8_t state = r.u8();
    if (state > 3) return std::nullopt;
    one.state = static_cast<RcptState>(state);
    one.attempts = r.u32();
    one.next_retry_ms = static_cast<std::int64_t>(r.u64());
    one.last_error = r.str();
    m.recipients.push_back(std::move(one));
  }
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::optional<QueueListEnd> decode_queue_list_end(const Frame& f) {
  if (f.type != type_of(MessageType::QueueListEnd)) return std::nullopt;
  Reader r(f.payload);
  QueueListEnd m;
  m.messages = r.u32();
  m.now_ms = static_cast<std::int64_t>(r.u64());
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::optional<FlushRequest> decode_flush_request(const Frame& f) {
  if (f.type != type_of(MessageType::FlushRequest)) return std::nullopt;
  Reader r(f.payload);
  FlushRequest m;
  std::uint8_t scope = r.u8();
  if (scope > 2) return std::nullopt;
  m.scope = static_cast<FlushScope>(scope);
  m.target = r.str();
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::optional<FlushReply> decode_flush_reply(const Frame& f) {
  if (f.type != type_of(MessageType::FlushReply)) return std::nullopt;
  Reader r(f.payload);
  FlushReply m;
  m.ready = r.u64();
  const std::uint8_t found = r.u8();
  if (!r.ok_and_done() || found > 1) return std::nullopt;
  m.found = found == 1;
  return m;
}

std::string encode(const QueueOpRequest& m) {
  return Writer(type_of(MessageType::QueueOpRequest))
      .u8(static_cast<std::uint8_t>(m.op))
      .u8(m.all ? 1 : 0)
      .str(m.queue_id)
      .finish();
}

std::string encode(const QueueOpReply& m) {
  return Writer(type_of(MessageType::QueueOpReply))
      .u8(static_cast<std::uint8_t>(m.status))
      .u64(m.messages)
      .u64(m.recipients)
      .u64(m.in_flight)
      .str(m.error)
      .finish();
}

std::optional<QueueOpRequest> decode_queue_op_request(const Frame& f) {
  if (f.type != type_of(MessageType::QueueOpRequest)) return std::nullopt;
  Reader r(f.payload);
  QueueOpRequest m;
  std::uint8_t op = r.u8();
  std::uint8_t all = r.u8();
  if (op > 3 || all > 1) return std::nullopt;
  m.op = static_cast<QueueOp>(op);
  m.all = all == 1;
  m.queue_id = r.str();
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::optional<QueueOpReply> decode_queue_op_reply(const Frame& f) {
  if (f.type != type_of(MessageType::QueueOpReply)) return std::nullopt;
  Reader r(f.payload);
  QueueOpReply m;
  std::uint8_t status = r.u8();
  if (status > 2) return std::nullopt;
  m.status = static_cast<QueueOpStatus>(status);
  m.messages = r.u64();
  m.recipients = r.u64();
  m.in_flight = r.u64();
  m.error = r.str();
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

namespace {
// A selector's text: bounded and printable (it is logged and compared, never parsed further).
bool selector_ok(const std::string& text) {
  if (text.size() > kMaxSelectorSize) return false;
  for (unsigned char c : text)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}
}  // namespace

std::string encode(const QueueSelectRequest& m) {
  const QueueSelection& s = m.selection;
  return Writer(type_of(MessageType::QueueSelectRequest))
      .u8(static_cast<std::uint8_t>(m.op))
      .u8(s.by_sender ? 1 : 0)
      .str(s.sender)
      .str(s.rcpt_domain)
      .str(s.destination)
      .u64(s.older_than_s)
      .str(s.reason)
      .finish();
}

std::string encode(const QueueSelected& m) {
  return Writer(type_of(MessageType::QueueSelected))
      .str(m.queue_id)
      .u64(m.recipients)
      .u64(m.in_flight)
      .finish();
}

std::optional<QueueSelectRequest> decode_queue_select_request(const Frame& f) {
  if (f.type != type_of(MessageType::QueueSelectRequest)) return std::nullopt;
  Reader r(f.payload);
  QueueSelectRequest m;
  const std::uint8_t op = r.u8();
  const std::uint8_t by_sender = r.u8();
  QueueSelection& s = m.selection;
  s.sender = r.str();
  s.rcpt_domain = r.str();
  s.destination = r.str();
  s.older_than_s = r.u64();
  s.reason = r.str();
  if (!r.ok_and_done() || op > 4 || by_sender > 1) return std::nullopt;
  m.op = static_cast<QueueOp>(op);
  s.by_sender = by_sender == 1;
  if ((!s.by_sender && !s.sender.empty()) || s.older_than_s > kMaxOlderThanSeconds ||
      !selector_ok(s.sender) || !selector_ok(s.rcpt_domain) || !selector_ok(s.destination) ||
      !selector_ok(s.reason) || s.empty())
    return std::nullopt;
  return m;
}

std::optional<QueueSelected> decode_queue_selected(const Frame& f) {
  if (f.type != type_of(MessageType::QueueSelected)) return std::nullopt;
  Reader r(f.payload);
  QueueSelected m;
  m.queue_id = r.str();
  m.recipients = r.u64();
  m.in_flight = r.u64();
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

std::string encode(const QueueShapeRequest&) {
  return Writer(type_of(MessageType::QueueShapeRequest)).finish();
}

std::string encode(const QueueShapeReply& m) {
  Writer w(type_of(MessageType::QueueShapeReply));
  w.u32(static_cast<std::uint32_t>(m.rows.size()));
  for (const auto& row : m.rows)
    w.str(row.destination).u64(row.recipients).u64(static_cast<std::uint64_t>(row.oldest_arrival));
  w.u64(m.other_recipients)
      .u64(static_cast<std::uint64_t>(m.other_oldest))
      .u64(static_cast<std::uint64_t>(m.now_ms));
  return w.finish();
}

std::optional<QueueShapeRequest> decode_queue_shape_request(const Frame& f) {
  if (f.type != type_of(MessageType::QueueShapeRequest) || !f.payload.empty()) return std::nullopt;
  return QueueShapeRequest{};
}

std::optional<QueueShapeReply> decode_queue_shape_reply(const Frame& f) {
  if (f.type != type_of(MessageType::QueueShapeReply)) return std::nullopt;
  Reader r(f.payload);
  QueueShapeReply m;
  const std::uint32_t n = r.u32();
  if (n > kMaxQueueShapeRows) return std::nullopt;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    QueueShapeRow row;
    row.destination = r.str();
    row.recipients = r.u64();
    row.oldest_arrival = static_cast<std::int64_t>(r.u64());
    m.rows.push_back(std::move(row));
  }
  m.other_recipients = r.u64();
  m.other_oldest = static_cast<std::int64_t>(r.u64());
  m.now_ms = static_cast<std::int64_t>(r.u64());
  if (!r.ok_and_done()) return std::nullopt;
  return m;
}

}  // namespace estafette::ipc
