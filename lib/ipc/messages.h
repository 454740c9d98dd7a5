// messages.h: the typed messages between Estafette's processes and their encoding.
//   esmtpd   -> courierd  NewMessage     (a message was committed to the queue)
//   courierd -> module    Deliver        (deliver one message to some of its recipients)
//   module   -> courierd  DeliverResult  (per-recipient outcome of a Deliver)
//   module   -> courierd  ModuleReady    (a module announces its name and limits on start)
// decode_* return nullopt for a frame of another type or a malformed payload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/ipc/frame.h"

namespace estafette::ipc {

enum class MessageType : std::uint8_t {
  NewMessage = 1,
  Deliver = 2,
  DeliverResult = 3,
  ModuleReady = 4,
};

struct NewMessage {
  std::string queue_id;
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
};

enum class RcptStatus : std::uint8_t { Delivered = 0, TempFail = 1, PermFail = 2 };

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
};

struct ModuleReady {
  std::string name;
};

std::string encode(const NewMessage& m);
std::string encode(const Deliver& m);
std::string encode(const DeliverResult& m);
std::string encode(const ModuleReady& m);

std::optional<NewMessage> decode_new_message(const Frame& f);
std::optional<Deliver> decode_deliver(const Frame& f);
std::optional<DeliverResult> decode_deliver_result(const Frame& f);
std::optional<ModuleReady> decode_module_ready(const Frame& f);

}  // namespace estafette::ipc
