#include "lib/smtp/lmtp_replies.h"

namespace estafette::smtp {

base::DeliveryStatus lmtp_status(const Reply& reply) {
  if (reply.klass() == 2) return base::DeliveryStatus::Delivered;
  if (reply.klass() == 5) return base::DeliveryStatus::PermFail;
  return base::DeliveryStatus::TempFail;
}

LmtpReplies::LmtpReplies(const std::vector<bool>& accepted)
    : status_(accepted.size()), reply_(accepted.size()) {
  for (std::size_t i = 0; i < accepted.size(); ++i)
    if (accepted[i]) waiting_.push_back(i);
}

std::optional<std::size_t> LmtpReplies::take(const Reply& reply) {
  if (complete()) return std::nullopt;
  std::size_t i = waiting_[next_++];
  status_[i] = lmtp_status(reply);
  reply_[i] = reply.to_string();
  return i;
}

void LmtpReplies::finish(const std::string& why) {
  for (; next_ < waiting_.size(); ++next_) {
    std::size_t i = waiting_[next_];
    status_[i] = base::DeliveryStatus::TempFail;
    reply_[i] = why;
  }
}

}  // namespace estafette::smtp
