// report.h: SMTP TLS reporting (RFC 8460) output: where a policy domain wants its reports (the
// `_smtp._tls.<domain>` TXT record, 3), the aggregate report of one day for one domain (4, JSON),
// its gzip file name (5.1) and the report message for a mailto: rua (5.3).
// Pure (gzip through Poco's zlib streams); any thread. The TXT parser takes untrusted DNS data and
// is bounded (kMaxRua addresses, each a valid RFC 5321 mailbox); it never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/tlsrpt/aggregate.h"

namespace estafette::tlsrpt {

inline constexpr std::size_t kMaxRua = 10;

struct RuaResult {
  bool ok = false;
  std::vector<std::string> mailto;  // mailboxes ("tlsrpt@example.net"), at most kMaxRua
  std::vector<std::string> https;   // https: URIs as given (not used for sending here)
  std::string reason;               // !ok: why the domain gets no report
};

// One TXT string (a record's character-strings concatenated): "v=TLSRPTv1" first, then
// ";"-separated fields; "rua=" a ","-separated list of mailto: and https: URIs (3). Unknown
// fields are ignored, an unknown URI scheme too; a mailto: URI's "?..." headers are dropped and
// %XX escapes decoded.
RuaResult parse_txt_record(std::string_view record);
// All TXT records of `_smtp._tls.<domain>`: those not starting with "v=TLSRPTv1" are skipped;
// none or more than one that does: no reporting (3).
RuaResult parse_txt_records(const std::vector<std::string>& records);

struct ReportInfo {
  std::string organization;    // organization-name
  std::string contact;         // contact-info: a mailbox
  std::string submitter;       // our host name (TLS-Report-Submitter, the file name)
  std::int64_t day_start = 0;  // Unix time of the report day's 00:00:00Z
};

// "<submitter>!<domain>!<start>!<end>.json.gz", end the day's last second (5.1).
std::string report_filename(const ReportInfo& info, std::string_view domain);
// The report's id: the day and domain at the submitter, the same when a day is sent again.
std::string report_id(const ReportInfo& info, std::string_view domain);
// The JSON report (4.4) of every policy of `domain` in `aggregate`.
std::string report_json(const Aggregate& aggregate, std::string_view domain,
                        const ReportInfo& info);

std::string gzip(std::string_view data);
// gunzip of at most max_size bytes of output; throws std::runtime_error when the data is not
// gzip or inflates beyond max_size.
std::string gunzip(std::string_view data, std::size_t max_size);

// The report message for one rua mailbox: RFC 5322 headers (From the contact, Subject and the
// TLS-Report-Domain/-Submitter fields of 5.3), multipart/report; report-type="tlsrpt" with a
// text part and the gzip JSON as application/tlsrpt+gzip, base64. CRLF line ends, not
// dot-stuffed. date: an RFC 5322 date-time for the Date field.
std::string report_message(const ReportInfo& info, std::string_view domain, std::string_view rua,
                           std::string_view json, std::string_view date);

}  // namespace estafette::tlsrpt
