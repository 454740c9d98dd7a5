// delivery_status.h: the outcome of one delivery attempt for one recipient, the one type that
// the SMTP client (smtp::DeliveryStatus), the delivery modules' IPC (ipc::RcptStatus, whose
// wire values these are) and courierd's scheduler (courierd::Outcome) all name.
// A value type; no state, any thread.
#pragma once

#include <cstdint>

namespace estafette::base {

enum class DeliveryStatus : std::uint8_t {
  Delivered = 0,  // accepted by the next hop or written to the mailbox
  TempFail = 1,   // try again later
  PermFail = 2,   // bounce
};

}  // namespace estafette::base
