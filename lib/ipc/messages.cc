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
      .finish();
}

std::string encode(const DeliverResult& m) {
  Writer w(type_of(MessageType::DeliverResult));
  w.u64(m.job_id)
      .str(m.remote)
      .u8(m.host_failed ? 1 : 0)
      .u32(static_cast<std::uint32_t>(m.results.size()));
  for (const auto& r : m.results) w.u8(static_cast<std::uint8_t>(r.status)).str(r.reply);
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
  if (!r.ok_and_done()) return std::nullopt;
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

}  // namespace estafette::ipc
