// tls_reports.h: esmtpclient's side of SMTP TLS reporting (RFC 8460, tls_reporting = yes): the
// outcome of each new connection's TLS under its recipient domain's policy (DANE's TLSA records,
// an MTA-STS policy, or none) is counted per UTC day in a tlsrpt::Aggregate, and appended to
// <state_dir>/tlsrpt/<YYYY-MM-DD>.<pid>.journal every flush_every (5 minutes: a line per policy
// touched since the last flush), on flush() (SIGHUP) and when the process ends;
// `estafette tls-report` reads those files. One file per process and day, so processes never
// interleave their lines; a file that cannot be written keeps the counts for the next flush (at
// most kMaxDays days of them). Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "lib/event/loop.h"
#include "lib/tlsrpt/aggregate.h"

namespace estafette::esmtpclient {

class TlsReports final {
 public:
  static constexpr std::size_t kMaxDays = 3;
  // now: Unix seconds (tests pass their own clock).
  TlsReports(event::Loop& loop, std::string dir,
             std::chrono::seconds flush_every = std::chrono::seconds(300),
             std::function<std::int64_t()> now = {});
  ~TlsReports();  // flushes
  TlsReports(const TlsReports&) = delete;
  TlsReports& operator=(const TlsReports&) = delete;

  void success(const tlsrpt::Policy& policy);
  void failure(const tlsrpt::Policy& policy, const tlsrpt::Failure& failure);
  // Appends every day's counts to its journal file; false when one could not be written.
  bool flush();

 private:
  tlsrpt::Aggregate& today();
  void arm();

  event::Loop& loop_;
  std::string dir_;
  std::chrono::seconds flush_every_;
  std::function<std::int64_t()> now_;
  std::map<std::string, tlsrpt::Aggregate> days_;  // by "YYYY-MM-DD"
  event::TimerId timer_ = 0;
};

}  // namespace estafette::esmtpclient
