// dsn.h: delivery status notifications as courierd sends them: bounces (Action: failed), delay
// warnings (delayed) and success notices (delivered, relayed), each an RFC 3464
// message/delivery-status report inside an RFC 3462 multipart/report, with a human-readable
// part and the original message: whole (message/rfc822: a bounce without RET=HDRS) or its
// headers (text/rfc822-headers: RET=HDRS, and every other notice). One notice reports the
// recipients of one message that share an action.
//
// compose_dsn() and the helpers are pure (any thread); read_original_headers() and
// read_original_message() read a queue file (blocking; courierd's loop thread calls them:
// notices are rare). The caller injects the notice with queue::write_message() using the null
// sender (""), so a notice never bounces.
// Errors: compose never fails; the readers return "" when the file cannot be read.
#pragma once

#include "lib/base/dates.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::courierd {

// RFC 3464 2.3.3 actions.
enum class DsnAction { Failed, Delayed, Delivered, Relayed };
std::string_view action_text(DsnAction action);  // "failed", "delayed", ...

struct DsnRecipient {
  std::string recipient;
  std::string reply;       // the remote or local reply ("550 5.1.1 ... user unknown"); "" = none
  std::string remote_mta;  // host name of the remote MTA, "" when unknown or local
  bool expired = false;    // a temporary failure that outlived the queue lifetime
  DsnAction action = DsnAction::Failed;
  std::string orcpt = {};  // ORCPT as received ("rfc822;xtext"), "" = none: the recipient
};

struct DsnRequest {
  std::string hostname;          // this MTA: From: MAILER-DAEMON@hostname, Reporting-MTA
  std::string message_id;        // unique part of the notice's Message-ID (its queue id)
  std::string queue_id;          // the original message's queue id
  std::string sender;            // the original sender: the notice goes To: it
  std::int64_t arrival = 0;      // original arrival, unix seconds
  std::int64_t now = 0;          // unix seconds, for Date:
  std::string envid;             // ENVID as received (xtext), "" = none
  std::int64_t retry_until = 0;  // delayed: Will-Retry-Until (unix seconds), 0 = not given
  // All of one action (the first one's decides the subject and the text).
  std::vector<DsnRecipient> recipients;
  std::string original_headers;  // plain form (LF or CRLF line ends), may be ""
  // Non-empty: the whole original message in plain form, attached as message/rfc822 instead of
  // original_headers.
  std::string original_message;
};

// The complete notice in SMTP wire form (CRLF, dot-stuffed, without the final ".\r\n").
std::string compose_dsn(const DsnRequest& request);

// RFC 3463 status of a delivered or relayed recipient: the reply's 2.x.x code, else 2.0.0; of a
// delayed one: its 4.x.x code, else 4.0.0.
std::string success_status(std::string_view reply);
std::string delay_status(std::string_view reply);

// "rfc822; joe@example.com" for Original-Recipient: the decoded ORCPT, or the recipient when
// there is none (or it cannot be decoded).
std::string original_recipient(std::string_view orcpt, std::string_view recipient);

// RFC 3463 status for a failed recipient: the reply's enhanced code when it is a permanent one
// (or a temporary one for an expired recipient), else 5.0.0 (4.4.7 when expired).
std::string dsn_status(std::string_view reply, bool expired);

// "Thu, 23 Nov 2023 08:08:00 +0000" (RFC 5322 date-time, UTC).
using base::rfc5322_date;

// The header section of a queued message in plain form with LF line ends (the wire-form body
// bytes up to the first empty line, un-dot-stuffed); at most max_bytes are read.
std::string read_original_headers(const std::string& path, std::uint64_t body_offset,
                                  std::uint64_t body_size, std::size_t max_bytes = 64 * 1024);

// The whole queued message in plain form with LF line ends (un-dot-stuffed); "" on a read
// error or when it is larger than max_bytes (the caller attaches the headers instead).
std::string read_original_message(const std::string& path, std::uint64_t body_offset,
                                  std::uint64_t body_size, std::size_t max_bytes);

// "mx.example.com" from a module's remote description "mx.example.com[192.0.2.1]:25"; the
// address when there is no name ("[192.0.2.1]:25").
std::string remote_host_name(std::string_view remote);

}  // namespace estafette::courierd
