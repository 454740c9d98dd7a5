// maildir.h: estafette-local's delivery into Maildirs: mail for user@<local domain> goes to
// <maildir_root>/<user>/ (lower-cased; created on first delivery) as tmp/<unique>, fsync,
// rename to new/<unique>, fsync of new/. The file gets Return-Path: and Delivered-To: on top and
// the body in plain form with LF line ends (converted from the queue's wire form).
//
// Blocking file I/O on the caller's thread (the module process has nothing else to serve).
// Errors become per-recipient results: TempFail for I/O errors (452 4.3.1 when the disk or
// quota is full, 451 4.3.0 otherwise), PermFail (550 5.1.1) for a local part that cannot name
// a mailbox. Nothing throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/ipc/messages.h"

namespace estafette::local {

class MaildirDelivery final {
 public:
  MaildirDelivery(std::string root, std::string hostname);
  MaildirDelivery(const MaildirDelivery&) = delete;
  MaildirDelivery& operator=(const MaildirDelivery&) = delete;

  // Delivers one message to all its recipients; one result per recipient, in order.
  ipc::DeliverResult deliver(const ipc::Deliver& deliver);

 private:
  ipc::RcptResult deliver_one(const std::string& recipient, const std::string& sender,
                              std::string_view plain);
  std::string unique_name();

  std::string root_;
  std::string hostname_;  // with '/' and ':' escaped as Maildir asks
  std::uint64_t counter_ = 0;
};

// The mailbox directory name for a recipient: its local part, unquoted and lower-cased, or
// nullopt when it is empty, starts with '.', or holds '/' or control characters.
std::optional<std::string> mailbox_name(std::string_view recipient);

// Wire form (CRLF, dot-stuffed) to plain form with LF line ends.
std::string wire_to_plain(std::string_view wire);

}  // namespace estafette::local
