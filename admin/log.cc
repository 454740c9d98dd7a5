#include "admin/log.h"

#include <Poco/InflatingStream.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <istream>
#include <limits>
#include <memory>
#include <streambuf>
#include <utility>

#include "lib/base/fd.h"

namespace estafette::admin {

namespace {

constexpr std::size_t kMaxIdsPerLine = 16;
constexpr std::string_view kNotification = "notification: id=";

bool id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

// The id= token at `at` (where "id=" starts), or "" when it is part of another key.
std::string_view id_at(std::string_view line, std::size_t at) {
  if (at > 0) {
    const char before = line[at - 1];
    if (id_char(before) || before == '_' || before == '.') return {};
  }
  std::size_t start = at + 3, end = start;
  while (end < line.size() && id_char(line[end])) ++end;
  return line.substr(start, end - start);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Reads one line into `line` (without its LF), at most kMaxLogLine bytes of it; false at the end.
bool read_line(std::istream& in, std::string& line) {
  line.clear();
  char buf[4096];
  for (;;) {
    in.getline(buf, sizeof buf);
    const auto got = static_cast<std::size_t>(in.gcount());
    if (in.bad()) return !line.empty();
    if (!in.fail()) {  // up to the LF (extracted and counted), or the end after some bytes
      const std::size_t n = in.eof() ? got : got - 1;
      line.append(buf, std::min(n, kMaxLogLine - line.size()));
      return true;
    }
    if (in.eof()) return !line.empty();  // nothing more
    // The buffer filled before the LF: keep up to the bound, skip the rest.
    in.clear();
    line.append(buf, std::min(got, kMaxLogLine - line.size()));
    if (line.size() >= kMaxLogLine) {
      in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
      return true;
    }
  }
}

// An input stream buffer over a file descriptor it owns.
class FdBuf final : public std::streambuf {
 public:
  explicit FdBuf(base::UniqueFd fd) : fd_(std::move(fd)) {}

 protected:
  int_type underflow() override {
    ssize_t n;
    do {
      n = ::read(fd_.get(), buf_, sizeof buf_);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return traits_type::eof();
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(buf_[0]);
  }

 private:
  base::UniqueFd fd_;
  char buf_[64 * 1024];
};

// Opens a log file to read: a regular file only (a FIFO would hang us, a device is no log),
// and a rotated copy never through a symlink (whoever may write the log's directory could
// point one at a file only root may read). Errors: errno set, nullptr.
std::unique_ptr<FdBuf> open_log(const std::string& path, bool follow) {
  base::UniqueFd fd(
      ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW)));
  if (!fd) return nullptr;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return nullptr;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return nullptr;
  }
  // Blocking reads again (a regular file never blocks, but say what we mean).
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return std::make_unique<FdBuf>(std::move(fd));
}

bool ends_with(std::string_view s, std::string_view end) {
  return s.size() >= end.size() && s.substr(s.size() - end.size()) == end;
}

}  // namespace

std::vector<std::string_view> ids_in_line(std::string_view line) {
  std::vector<std::string_view> out;
  for (std::size_t at = line.find("id=");
       at != std::string_view::npos && out.size() < kMaxIdsPerLine; at = line.find("id=", at + 3)) {
    std::string_view id = id_at(line, at);
    if (!id.empty()) out.push_back(id);
  }
  return out;
}

std::string_view notification_id(std::string_view line) {
  std::size_t at = line.find(kNotification);
  if (at == std::string_view::npos) return {};
  return id_at(line, at + kNotification.size() - 3);
}

HistoryFilter::HistoryFilter(const std::vector<std::string>& ids)
    : given_(ids.begin(), ids.end()) {}

bool HistoryFilter::take(std::string_view line) {
  bool wanted = false, given = false;
  for (auto id : ids_in_line(line)) {
    if (given_.contains(id)) {
      wanted = given = true;
      break;
    }
    if (followed_.contains(id)) wanted = true;
  }
  // Only a given message's notice is followed, and only from its own line: a notice's
  // notice, or an id that appears elsewhere on the line, is not.
  if (given && followed_.size() < kMaxFollowed) {
    std::string_view notice = notification_id(line);
    if (!notice.empty() && !given_.contains(notice)) followed_.emplace(notice);
  }
  return wanted;
}

std::vector<std::string> rotation_order(const std::string& path,
                                        const std::vector<std::string>& directory_names) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::vector<std::pair<std::string, std::string>> dated;       // (date, name)
  std::vector<std::pair<unsigned long, std::string>> numbered;  // (N, name)
  for (const auto& name : directory_names) {
    if (name.size() <= base.size() + 1 || name.compare(0, base.size(), base) != 0) continue;
    std::string_view rest = std::string_view(name).substr(base.size());
    const char sep = rest[0];
    rest.remove_prefix(1);
    if (ends_with(rest, ".gz")) rest.remove_suffix(3);
    if (!all_digits(rest) || rest.size() > 9) continue;
    if (sep == '-' && rest.size() == 8)
      dated.emplace_back(std::string(rest), name);
    else if (sep == '.')
      numbered.emplace_back(std::stoul(std::string(rest)), name);
  }
  std::sort(dated.begin(), dated.end());
  std::sort(numbered.begin(), numbered.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (const auto& [date, name] : dated) out.push_back(dir + name);
  for (const auto& [n, name] : numbered) out.push_back(dir + name);
  out.push_back(path);
  return out;
}

int show_log(const std::vector<std::string>& ids, const std::string& log_path, std::FILE* out,
             std::FILE* err) {
  std::vector<std::string> names;
  const std::size_t slash = log_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : log_path.substr(0, slash + 1);
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
  }
  HistoryFilter filter(ids);
  bool found = false, read_any = false;
  std::string line;
  for (const auto& file : rotation_order(log_path, names)) {
    const bool rotated = file != log_path;
    auto buf = open_log(file, !rotated);
    if (!buf) {
      // A rotated copy may go away while we read; the log itself must be there.
      if (!rotated || errno != ENOENT)
        std::fprintf(err, "estafette: %s: %s\n", file.c_str(),
                     errno == EINVAL ? "not a regular file" : std::strerror(errno));
      continue;
    }
    read_any = true;
    std::istream raw(buf.get());
    std::unique_ptr<std::istream> inflated;
    if (ends_with(file, ".gz"))
      inflated =
          std::make_unique<Poco::InflatingInputStream>(raw, Poco::InflatingStreamBuf::STREAM_GZIP);
    std::istream& in = inflated ? *inflated : raw;
    try {
      while (read_line(in, line)) {
        if (!filter.take(line)) continue;
        found = true;
        // Log lines may carry what clients sent: no escape sequence reaches the terminal.
        for (char& c : line)
          if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == '\x7f') c = '?';
        std::fwrite(line.data(), 1, line.size(), out);
        std::fputc('\n', out);
      }
    } catch (const std::exception& e) {  // a corrupt .gz: what was read so far stands
      std::fprintf(err, "estafette: %s: %s\n", file.c_str(), e.what());
    }
  }
  if (!read_any) return 2;
  return found ? 0 : 1;
}

}  // namespace estafette::admin
