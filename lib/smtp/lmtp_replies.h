// lmtp_replies.h: the replies after an LMTP end of data (RFC 2033 4.2): one per recipient
// whose RCPT was accepted, in RCPT order. Pure (no I/O, no clock); one per transaction, owned by
// the client session on its connection's loop. Each reply becomes that recipient's result: 2xx
// delivered, 4xx (and anything that is neither 2xx nor 5xx) deferred, 5xx bounced, with the
// server's text. A recipient never counts as delivered without its own 2xx: when the
// connection ends early (fewer replies than recipients), finish() defers the ones left.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/delivery_status.h"
#include "lib/smtp/reply_parser.h"

namespace estafette::smtp {

class LmtpReplies final {
 public:
  // accepted[i]: recipient i's RCPT got a 2xx, so it gets a reply after the end of data.
  explicit LmtpReplies(const std::vector<bool>& accepted);

  // Takes the next reply: the index of the recipient it answers, or nullopt when every
  // accepted recipient has had its reply already (the server is out of step).
  std::optional<std::size_t> take(const Reply& reply);
  bool complete() const { return next_ == waiting_.size(); }
  std::size_t expected() const { return waiting_.size(); }
  std::size_t received() const { return next_; }
  // The result of recipient i: its reply's, nullopt when it has none (not accepted, or still
  // waiting).
  const std::optional<base::DeliveryStatus>& status(std::size_t i) const { return status_[i]; }
  const std::string& reply(std::size_t i) const { return reply_[i]; }
  // Every accepted recipient without a reply gets TempFail and `why` (the connection died).
  void finish(const std::string& why);

 private:
  std::vector<std::size_t> waiting_;  // indexes of the accepted recipients, in RCPT order
  std::size_t next_ = 0;              // into waiting_
  std::vector<std::optional<base::DeliveryStatus>> status_;
  std::vector<std::string> reply_;
};

// 2xx delivered, 5xx bounced, anything else deferred (a 3xx is no final answer).
base::DeliveryStatus lmtp_status(const Reply& reply);

}  // namespace estafette::smtp
