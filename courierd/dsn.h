// dsn.h: delivery status notifications (bounces) as courierd sends them: an RFC 3464
// message/delivery-status report inside an RFC 3462 multipart/report, with a human-readable
// part and the original message's headers (text/rfc822-headers).
//
// compose_dsn() and the helpers are pure (any thread); read_original_headers() reads a queue
// file (blocking, courierd's loop thread may call it: bounces are rare and the read is small).
// The caller injects the bounce with queue::write_message() using the null sender ("").
// Errors: compose never fails; read_original_headers returns "" when the file cannot be read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::courierd {

struct FailedRecipient {
  std::string recipient;
  std::string reply;       // the remote or local reply ("550 5.1.1 ... user unknown")
  std::string remote_mta;  // host name of the remote MTA, "" when unknown or local
  bool expired = false;    // a temporary failure that outlived the queue lifetime
};

struct DsnRequest {
  std::string hostname;      // this MTA: From: MAILER-DAEMON@hostname, Reporting-MTA
  std::string message_id;    // unique part of the bounce's Message-ID (its queue id)
  std::string queue_id;      // the original message's queue id
  std::string sender;        // the original sender: the bounce goes To: it
  std::int64_t arrival = 0;  // original arrival, unix seconds
  std::int64_t now = 0;      // unix seconds, for Date:
  std::vector<FailedRecipient> failed;
  std::string original_headers;  // plain form (LF or CRLF line ends), may be ""
};

// The complete bounce in SMTP wire form (CRLF, dot-stuffed, without the final ".\r\n").
std::string compose_dsn(const DsnRequest& request);

// RFC 3463 status for a failed recipient: the reply's enhanced code when it is a permanent one
// (or a temporary one for an expired recipient), else 5.0.0 (4.4.7 when expired).
std::string dsn_status(std::string_view reply, bool expired);

// "Thu, 23 Nov 2023 08:08:00 +0000" (RFC 5322 date-time, UTC).
std::string rfc5322_date(std::int64_t unix_seconds);

// The header section of a queued message in plain form with LF line ends (the wire-form body
// bytes up to the first empty line, un-dot-stuffed); at most max_bytes are read.
std::string read_original_headers(const std::string& path, std::uint64_t body_offset,
                                  std::uint64_t body_size, std::size_t max_bytes = 64 * 1024);

// "mx.example.com" from a module's remote description "mx.example.com[192.0.2.1]:25".
std::string remote_host_name(std::string_view remote);

}  // namespace estafette::courierd
