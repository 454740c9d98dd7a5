// log.h: `estafette log QUEUE-ID... [--file PATH]`: every log line of those messages, in the
// order they were written: esmtpd's "accepted id=", courierd's "queued id=", each delivery
// attempt ("id=ID to=<...> ... status=..."), the modules' lines, "id=ID removed", and the lines
// of the notices (bounces, DSNs) a message produced: a line "id=ID sender ... notification:
// id=NEW" of a wanted message makes NEW wanted too (one level: a notice's own notices are not
// followed). The log is the --file, else `log_file`, else /var/log/mail.log (where syslog's mail
// facility usually goes); its rotated copies come first, oldest first: PATH-YYYYMMDD[.gz] (by
// date), then PATH.N[.gz] (highest N first), then PATH itself; ".gz" ones are read through
// POCO's gzip stream.
// Control characters of a line (but tab) are printed as '?'. Only regular files are read, and a
// rotated copy never through a symlink (an error on stderr, then the next file).
// Streams: one line at a time (a line is cut at kMaxLogLine bytes), whatever the size of the
// files; at most kMaxFollowed notice ids are added. Main thread of the tool; blocking reads.
// Returns the exit code: 0 lines were found, 1 none, 2 usage or no log file could be read.
#pragma once

#include <cstddef>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::admin {

inline constexpr std::size_t kMaxLogLine = 64 * 1024;
inline constexpr std::size_t kMaxFollowed = 1000;

// The queue ids a line names as "id=ID" tokens (not "job_id=", "envid=", ...; ids are
// [A-Za-z0-9-]), in order; at most 16.
std::vector<std::string_view> ids_in_line(std::string_view line);
// The id after "notification: id=" (courierd's line for a notice it queued), or "".
std::string_view notification_id(std::string_view line);

// Which lines belong to the wanted messages; follows their notices' ids (see above).
class HistoryFilter final {
 public:
  explicit HistoryFilter(const std::vector<std::string>& ids);
  // True when the line names a wanted id (and, for a notification line of an id given at
  // first, wants the notice's id from then on).
  bool take(std::string_view line);

 private:
  std::set<std::string, std::less<>> given_;
  std::set<std::string, std::less<>> followed_;
};

// The files to read for a log at `path`, oldest first, given the names in its directory.
std::vector<std::string> rotation_order(const std::string& path,
                                        const std::vector<std::string>& directory_names);

// The command: reads the files (log_path's rotation) and writes the matching lines to out;
// errors (a file that cannot be read) to err.
int show_log(const std::vector<std::string>& ids, const std::string& log_path, std::FILE* out,
             std::FILE* err);

}  // namespace estafette::admin
