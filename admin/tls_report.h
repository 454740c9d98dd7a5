// tls_report.h: `estafette tls-report [--date YYYY-MM-DD] [--print]`: sends the SMTP TLS reports
// (RFC 8460) of the counts esmtpclient journalled in <state_dir>/tlsrpt (tls_reporting = yes).
// Per day and recipient domain: the `_smtp._tls.<domain>` TXT record through dns_servers; for
// each of its mailto: rua addresses a report message (lib/tlsrpt/report.h) submitted on the local
// submission socket, so it goes through esmtpd (filters and milters, e.g. DKIM signing) into the
// queue like any local mail, From tls_report_contact. Domains already sent are listed in
// <day>.sent, so a day interrupted half way is finished without sending anything twice; a day
// whose every domain is done (sent, no record, no mailto:) has its files removed. A DNS failure
// keeps the day for the next run, for at most kKeepDays days.
// Without --date: every day before today (UTC) that has journals; estafetted runs it daily.
// --date: that day only, today included (its journals are kept: esmtpclient still adds to them).
// --print: the JSON reports on standard output; nothing is looked up, sent or removed.
// Run as root with `user` set, it drops to the user first, as esmtpclient runs. Journal lines are
// untrusted (another process wrote them): lib/tlsrpt refuses malformed ones, counted in a
// warning; files are read a block at a time (any size, memory bounded by the aggregate's limits);
// what is not a regular file is skipped. Each outcome also goes to the log (log_file, syslog).
// Exit: 0 done; 75 something is kept for a later run (DNS, esmtpd not answering); 2 usage or
// set-up error.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "lib/config/config.h"

namespace estafette::admin {

inline constexpr int kKeepDays = 3;

struct TlsReportOptions {
  std::optional<std::string> date;  // YYYY-MM-DD
  bool print = false;
};

int tls_report(const config::Config& config, const TlsReportOptions& options, std::FILE* out,
               std::FILE* err);

// Unix time of YYYY-MM-DD 00:00:00Z, or nullopt when it is not such a date.
std::optional<std::int64_t> parse_day(const std::string& text);

}  // namespace estafette::admin
