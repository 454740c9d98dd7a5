#include "admin/tls_report.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <exception>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "admin/user_dir.h"
#include "lib/base/dates.h"
#include "lib/base/exit_codes.h"
#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/base/log.h"
#include "lib/base/safe_dir.h"
#include "lib/config/resolver_options.h"
#include "lib/dns/resolver.h"
#include "lib/event/loop.h"
#include "lib/smtp/dotstuff.h"
#include "lib/submit/client.h"
#include "lib/submit/socket.h"
#include "lib/tlsrpt/report.h"

namespace estafette::admin {
namespace {

constexpr std::size_t kInFlight = 100;  // TXT lookups at a time
constexpr std::size_t kMaxSentFile = 16 * 1024 * 1024;

bool digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// The files of one day: esmtpclient's journals ("DAY.PID.journal") and our own list of the
// domains already sent ("DAY.sent").
struct DayFiles {
  std::vector<std::string> journals;
  bool has_sent = false;
};

std::map<std::string, DayFiles> list_days(int dir_fd) {
  std::map<std::string, DayFiles> days;
  int fd = ::dup(dir_fd);
  if (fd < 0) return days;
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    ::close(fd);
    return days;
  }
  ::rewinddir(dir);
  while (dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (name.size() < 11 || !parse_day(std::string(name.substr(0, 10))) || name[10] != '.')
      continue;
    std::string day(name.substr(0, 10));
    std::string_view rest = name.substr(11);
    if (rest == "sent") {
      days[day].has_sent = true;
    } else if (rest.ends_with(".journal") &&
               digits(rest.substr(0, rest.size() - std::string_view(".journal").size()))) {
      days[day].journals.emplace_back(name);
    }
  }
  ::closedir(dir);
  return days;
}

// Opens a regular file in dir, not through a symlink; an invalid fd and *why otherwise.
base::UniqueFd open_regular(int dir_fd, const std::string& name, std::string* why) {
  base::UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    *why = base::errno_text(errno);
    return {};
  }
  if (!S_ISREG(st.st_mode)) {
    *why = "not a regular file";
    return {};
  }
  return fd;
}

// Merges a journal file into `aggregate` a block at a time (memory: one block and one line);
// a line longer than tlsrpt::kMaxJournalLine is skipped and counted as refused. Returns the
// refused lines, or nullopt with *why when the file cannot be read.
std::optional<std::size_t> merge_file(int dir_fd, const std::string& name,
                                      tlsrpt::Aggregate& aggregate, std::string* why) {
  base::UniqueFd fd = open_regular(dir_fd, name, why);
  if (!fd) return std::nullopt;
  std::size_t refused = 0;
  std::string pending;
  bool skipping = false;  // inside a line that is too long
  std::vector<char> block(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = base::errno_text(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    std::string_view data(block.data(), static_cast<std::size_t>(n));
    while (!data.empty()) {
      std::size_t nl = data.find('\n');
      std::string_view piece = data.substr(0, nl);
      if (!skipping) pending.append(piece);
      if (pending.size() > tlsrpt::kMaxJournalLine) {
        pending.clear();
        if (!skipping) ++refused;
        skipping = true;
      }
      if (nl == std::string_view::npos) break;
      data.remove_prefix(nl + 1);
      if (!skipping) refused += aggregate.merge_journal(pending);
      pending.clear();
      skipping = false;
    }
  }
  if (!skipping && !pending.empty()) refused += aggregate.merge_journal(pending);
  return refused;
}

// A small file (our own DAY.sent), whole.
std::optional<std::string> read_small(int dir_fd, const std::string& name, std::size_t max,
                                      std::string* why) {
  base::UniqueFd fd = open_regular(dir_fd, name, why);
  if (!fd) return std::nullopt;
  struct stat st {};
  ::fstat(fd.get(), &st);
  if (static_cast<std::uint64_t>(st.st_size) > max) {
    *why = "larger than " + std::to_string(max) + " bytes";
    return std::nullopt;
  }
  std::string text;
  if (!base::read_exact(fd.get(), 0, static_cast<std::size_t>(st.st_size), text)) {
    *why = base::errno_text(errno);
    return std::nullopt;
  }
  return text;
}

// The rua of every domain, looked up at once on one loop.
std::map<std::string, std::pair<dns::Status, tlsrpt::RuaResult>> lookup_rua(
    const config::Config& config, const std::vector<std::string>& domains) {
  std::map<std::string, std::pair<dns::Status, tlsrpt::RuaResult>> out;
  event::Loop loop;
  dns::Resolver resolver(loop, config::resolver_options(config));
  std::vector<dns::Request> requests(domains.size());
  std::size_t next = 0, done = 0;
  // At most kInFlight queries at a time, so a long day does not flood the resolver.
  std::function<void()> start_next = [&] {
    const std::size_t i = next++;
    const std::string domain = domains[i];
    requests[i] = resolver.lookup_txt(
        "_smtp._tls." + domain, [&, domain](dns::Status s, std::vector<std::string> records) {
          tlsrpt::RuaResult r;
          if (s == dns::Status::Ok)
            r = tlsrpt::parse_txt_records(records);
          else
            r.reason = std::string("no _smtp._tls TXT record (") + dns::to_string(s) + ")";
          out[domain] = {s, std::move(r)};
          if (++done == domains.size()) loop.stop();
          if (next < domains.size()) start_next();
        });
  };
  while (next < domains.size() && next < kInFlight) start_next();
  if (done < domains.size()) loop.run();
  return out;
}

class Run {
 public:
  Run(const config::Config& config, int dir_fd, std::FILE* out, std::FILE* err)
      : config_(config), dir_fd_(dir_fd), out_(out), err_(err) {
    const std::string host = config.hostname.empty() ? "localhost" : config.hostname;
    info_.submitter = host;
    info_.contact =
        config.tls_report_contact.empty() ? "postmaster@" + host : config.tls_report_contact;
    info_.organization =
        config.tls_report_organization.empty() ? host : config.tls_report_organization;
    if (logging_)
      base::setup_logging({"tls-report", config.log_file, config.syslog, config.log_level});
  }

  // Returns false when something is kept for a later run.
  bool day(const std::string& day, const DayFiles& files, bool print, bool keep_files) {
    info_.day_start = *parse_day(day);
    tlsrpt::Aggregate aggregate;
    std::size_t refused = 0;
    for (const auto& name : files.journals) {
      std::string why;
      auto bad = merge_file(dir_fd_, name, aggregate, &why);
      if (!bad) {
        warn("skipping " + config_.tlsrpt_dir() + "/" + name + ": " + why);
        continue;
      }
      refused += *bad;
    }
    if (refused) warn(day + ": " + std::to_string(refused) + " malformed journal lines ignored");
    if (aggregate.dropped())
      warn(day + ": " + std::to_string(aggregate.dropped()) + " sessions beyond the limits");
    const std::vector<std::string> domains = aggregate.domains();
    if (print) {
      for (const auto& domain : domains)
        std::fprintf(out_, "%s\n", tlsrpt::report_json(aggregate, domain, info_).c_str());
      return true;
    }
    std::set<std::string> sent;
    if (files.has_sent) {
      std::string why;
      if (auto text = read_small(dir_fd_, day + ".sent", kMaxSentFile, &why)) {
        for (std::size_t start = 0, end; start < text->size(); start = end + 1) {
          end = text->find('\n', start);
          if (end == std::string::npos) end = text->size();
          sent.insert(text->substr(start, end - start));
        }
      }
    }
    std::vector<std::string> todo;
    for (const auto& d : domains)
      if (!sent.contains(d)) todo.push_back(d);
    bool complete = true;
    auto rua = lookup_rua(config_, todo);
    for (const auto& domain : todo) {
      const auto& [status, result] = rua[domain];
      if (status == dns::Status::TempFail) {
        say(day + " " + domain + ": DNS lookup failed, kept for the next run");
        complete = false;
        continue;
      }
      if (!result.ok || result.mailto.empty()) {
        say(day + " " + domain + ": no report: " + (result.ok ? "no mailto: rua" : result.reason));
        continue;
      }
      const std::string json = tlsrpt::report_json(aggregate, domain, info_);
      bool all = true;
      for (const auto& to : result.mailto) {
        std::string error;
        if (!submit(domain, to, json, &error)) {
          say(day + " " + domain + ": to " + to + ": " + error + ", kept for the next run");
          all = false;
        } else {
          say(day + " " + domain + ": report sent to " + to);
        }
      }
      if (!all) {
        complete = false;
        continue;
      }
      mark_sent(day, domain);
    }
    if (keep_files) return complete;
    const bool expired =
        info_.day_start + (kKeepDays + 1) * 86400 < static_cast<std::int64_t>(std::time(nullptr));
    if (!complete && !expired) return false;
    if (!complete) warn(day + ": giving up after " + std::to_string(kKeepDays) + " days");
    for (const auto& name : files.journals) ::unlinkat(dir_fd_, name.c_str(), 0);
    ::unlinkat(dir_fd_, (day + ".sent").c_str(), 0);
    return complete;
  }

 private:
  bool submit(const std::string& domain, const std::string& to, const std::string& json,
              std::string* error) {
    const std::string message = tlsrpt::report_message(
        info_, domain, to, json, base::rfc5322_date(static_cast<std::int64_t>(std::time(nullptr))));
    const std::string wire = smtp::stuff(message);
    base::UniqueFd fd =
        submit::connect_submit(submit::submit_socket_path(config_), std::chrono::seconds(30));
    if (!fd) {
      *error = "cannot connect to " + submit::submit_socket_path(config_) + ": " +
               base::errno_text(errno);
      return false;
    }
    submit::Submission s;
    s.helo = info_.submitter;
    s.sender = info_.contact;
    s.recipients = {to};
    s.wire = wire;
    submit::SubmitResult r = submit::submit(fd.get(), s, std::chrono::seconds(120));
    if (r.exit_code != submit::kExOk) {
      *error = r.error;
      return false;
    }
    return true;
  }

  void mark_sent(const std::string& day, const std::string& domain) {
    base::UniqueFd fd(::openat(dir_fd_, (day + ".sent").c_str(),
                               O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd || !base::write_all(fd.get(), domain + "\n"))
      warn("cannot record " + domain + " as sent: " + base::errno_text(errno));
  }

  // Each outcome to standard output, and to the log when there is one (estafetted's daily run
  // has no terminal).
  void say(const std::string& line) {
    std::fprintf(out_, "%s\n", line.c_str());
    if (logging_) base::log("tls-report").information(line);
  }
  void warn(const std::string& line) {
    std::fprintf(err_, "estafette tls-report: %s\n", line.c_str());
    if (logging_) base::log("tls-report").warning(line);
  }

  const config::Config& config_;
  int dir_fd_;
  std::FILE* out_;
  std::FILE* err_;
  tlsrpt::ReportInfo info_;
  bool logging_ = !config_.log_file.empty() || config_.syslog;
};

}  // namespace

std::optional<std::int64_t> parse_day(const std::string& text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  if (!digits(text.substr(0, 4)) || !digits(text.substr(5, 2)) || !digits(text.substr(8, 2)))
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = std::stoi(text.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(text.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(text.substr(8, 2));
  if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31)
    return std::nullopt;
  std::int64_t t = ::timegm(&tm);
  std::tm back{};
  std::time_t tt = static_cast<std::time_t>(t);
  ::gmtime_r(&tt, &back);
  if (back.tm_mday != std::stoi(text.substr(8, 2))) return std::nullopt;  // 2026-02-30
  return t;
}

int tls_report(const config::Config& config, const TlsReportOptions& options, std::FILE* out,
               std::FILE* err) {
  if (options.date && !parse_day(*options.date)) {
    std::fprintf(err, "estafette tls-report: not a date (YYYY-MM-DD): %s\n", options.date->c_str());
    return 2;
  }
  try {
    if (auto problem = enter_user_dir(config, "tlsrpt")) {
      std::fprintf(err, "estafette tls-report: %s\n", problem->c_str());
      return 2;
    }
    std::string why;
    base::UniqueFd dir = base::open_dir(config.tlsrpt_dir(), {.trusted = false}, &why);
    if (!dir) {
      std::fprintf(err, "estafette tls-report: cannot open %s: %s\n", config.tlsrpt_dir().c_str(),
                   why.c_str());
      return 2;
    }
    const std::string today = tlsrpt::utc_day(static_cast<std::int64_t>(std::time(nullptr)));
    Run run(config, dir.get(), out, err);
    bool all = true;
    for (const auto& [day, files] : list_days(dir.get())) {
      if (options.date ? day != *options.date : day >= today) continue;
      if (files.journals.empty()) {
        ::unlinkat(dir.get(), (day + ".sent").c_str(), 0);
        continue;
      }
      all = run.day(day, files, options.print, day >= today) && all;
    }
    return all ? 0 : base::kExTempFail;
  } catch (const std::exception& e) {
    std::fprintf(err, "estafette tls-report: %s\n", e.what());
    return 2;
  }
}

}  // namespace estafette::admin
