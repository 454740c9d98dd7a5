#include "esmtpclient/tls_reports.h"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>

#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/base/log.h"

namespace estafette::esmtpclient {

TlsReports::TlsReports(event::Loop& loop, std::string dir, std::chrono::seconds flush_every,
                       std::function<std::int64_t()> now)
    : loop_(loop), dir_(std::move(dir)), flush_every_(flush_every), now_(std::move(now)) {
  if (!now_) now_ = [] { return static_cast<std::int64_t>(::time(nullptr)); };
  arm();
}

TlsReports::~TlsReports() {
  loop_.cancel_timer(timer_);
  flush();
}

void TlsReports::arm() {
  timer_ = loop_.add_timer(flush_every_, [this] {
    flush();
    arm();
  });
}

tlsrpt::Aggregate& TlsReports::today() {
  std::string day = tlsrpt::utc_day(now_());
  auto it = days_.find(day);
  if (it != days_.end()) return it->second;
  while (days_.size() >= kMaxDays) days_.erase(days_.begin());  // the oldest, never written
  return days_[day];
}

void TlsReports::success(const tlsrpt::Policy& policy) {
  today().add_success(policy);
}

void TlsReports::failure(const tlsrpt::Policy& policy, const tlsrpt::Failure& failure) {
  today().add_failure(policy, failure);
}

bool TlsReports::flush() {
  bool all = true;
  for (auto it = days_.begin(); it != days_.end();) {
    if (it->second.empty()) {
      it = days_.erase(it);
      continue;
    }
    const std::string path = dir_ + "/" + it->first + "." + std::to_string(::getpid()) + ".journal";
    base::UniqueFd fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd || !base::write_all(fd.get(), it->second.journal())) {
      base::log("esmtpclient")
          .warning("TLS report journal " + path + ": " + base::errno_text(errno) +
                   " (kept for the next try)");
      all = false;
      ++it;
      continue;
    }
    it = days_.erase(it);
  }
  return all;
}

}  // namespace estafette::esmtpclient
