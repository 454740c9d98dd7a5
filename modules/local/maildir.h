// maildir.h: estafette-local's delivery: into the Maildir the router names for each recipient
// (lib/routing Router::mailbox: <maildir_root>/<user>/ for local domains per local_mailboxes,
// hosted_mailboxes for hosted domains, ~user/Maildir written as that user for system users) as
// tmp/<unique>, fsync, rename to new/<unique>, fsync of new/; or to a program (program.h) for
// a recipient the queue record marks so; or, for a system user with a ~/.forward, where it
// says (forward.h: the Maildir, programs run as the user, re-injection). The file gets Return-Path:
// and Delivered-To: on top and the body in plain form with LF line ends (converted from the queue's
// wire form).
//
// Blocking file I/O on the caller's thread (the module process has nothing else to serve).
// Errors become per-recipient results: TempFail for I/O errors (452 4.3.1 when the disk or
// quota is full, 451 4.3.0 otherwise), PermFail 550 5.1.1 for a missing mailbox (never created
// unless the router says so) or a local part that cannot name one, 552 5.2.3 for a message over
// max_mailbox_message_size, 554 5.4.6 "mail loop" for every recipient of a message with more
// Received: header fields than max_hops. Nothing throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <memory>

#include "lib/ipc/messages.h"
#include "lib/routing/router.h"

namespace estafette::local {

class MaildirDelivery final {
 public:
  // `router` is the caller's holder: a reload that swaps it is seen by the next delivery.
  MaildirDelivery(const std::shared_ptr<const routing::Router>& router, std::string hostname);
  MaildirDelivery(const MaildirDelivery&) = delete;
  MaildirDelivery& operator=(const MaildirDelivery&) = delete;

  // Delivers one message to all its recipients; one result per recipient, in order.
  ipc::DeliverResult deliver(const ipc::Deliver& deliver);

 private:
  ipc::RcptResult deliver_one(const std::string& recipient, const std::string& program,
                              const std::string& sender, std::string_view plain,
                              std::string_view wire);
  // A system user's ~/.forward (forward.h): nullopt when there is none to follow (absent,
  // ignored as unsafe, or empty), else the recipient's result.
  std::optional<ipc::RcptResult> deliver_forward(const routing::Mailbox& box,
                                                 const std::string& recipient,
                                                 const std::string& sender, std::string_view plain,
                                                 std::string_view wire);
  ipc::RcptResult run_as(uid_t uid, const std::string& command, const std::string& recipient,
                         const std::string& sender, std::string_view plain);
  // The mailbox size limit, then write_maildir as the mailbox's user if it has one.
  ipc::RcptResult deliver_maildir(const routing::Mailbox& box, const std::string& recipient,
                                  const std::string& sender, std::string_view plain);
  ipc::RcptResult write_maildir(const routing::Mailbox& box, const std::string& recipient,
                                const std::string& sender, std::string_view plain);
  std::string unique_name();

  const std::shared_ptr<const routing::Router>& router_;
  std::string hostname_;  // with '/' and ':' escaped as Maildir asks
  std::uint64_t counter_ = 0;
};

using routing::mailbox_name;

// Wire form (CRLF, dot-stuffed) to plain form with LF line ends.
std::string wire_to_plain(std::string_view wire);

}  // namespace estafette::local
