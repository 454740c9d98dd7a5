#include "lib/queue/queue_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <stdexcept>

#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/queue/fs_util.h"
#include "lib/queue/queue_file.h"

namespace estafette::queue {

namespace {

constexpr std::size_t kMaxWarnings = 100;

class Reader {
 public:
  Reader(std::string dir, const ReadOnlyOptions& options)
      : dir_(std::move(dir)), options_(options) {}

  QueueListing read(const std::string& kind) {
    dir_fd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd_) {
      if (errno != ENOENT) fs::throw_errno(errno, "cannot open " + dir_);
      return std::move(out_);  // no queue yet: empty
    }
    if (kind == "segment")
      read_segments();
    else
      read_files();
    std::sort(out_.messages.begin(), out_.messages.end(),
              [](const auto& a, const auto& b) { return a.envelope.id < b.envelope.id; });
    return std::move(out_);
  }

 private:
  void warn(std::string text) {
    if (out_.warnings.size() < kMaxWarnings)
      out_.warnings.push_back(std::move(text));
    else if (out_.warnings.size() == kMaxWarnings)
      out_.warnings.push_back("more problems not shown");
  }

  bool full() {
    if (out_.messages.size() < options_.max_messages) return false;
    if (!truncated_)
      warn("more than " + std::to_string(options_.max_messages) + " messages: the rest not listed");
    truncated_ = true;
    return true;
  }

  // A regular file below dir_fd, opened read-only, never through a symlink and never blocking
  // on a FIFO; *size its size. Invalid (errno set) otherwise.
  base::UniqueFd open_file(int dir_fd, const std::string& name, std::uint64_t* size) {
    base::UniqueFd fd(
        ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) return fd;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return base::UniqueFd();
    if (!S_ISREG(st.st_mode)) {
      errno = EINVAL;
      return base::UniqueFd();
    }
    *size = static_cast<std::uint64_t>(st.st_size);
    return fd;
  }

  // Up to `limit` bytes of a small file; "" when it is missing.
  std::string read_small(int dir_fd, const std::string& name, std::uint64_t limit,
                         const std::string& shown) {
    std::uint64_t size = 0;
    base::UniqueFd fd = open_file(dir_fd, name, &size);
    if (!fd) {
      if (errno != ENOENT) warn("cannot read " + shown + ": " + base::errno_text(errno));
      return {};
    }
    if (size > limit) {
      warn(shown + " is larger than " + std::to_string(limit) + " bytes: only its start read");
      size = limit;
    }
    std::string text;
    if (!base::read_exact(fd.get(), 0, static_cast<std::size_t>(size), text)) {
      warn("cannot read " + shown + ": " + base::errno_text(errno));
      return {};
    }
    return text;
  }

  void list(int dir_fd, const std::string& shown, std::vector<std::string>& names) {
    if (!fs::list_dir(dir_fd, names)) fs::throw_errno(errno, "cannot list " + shown);
    std::sort(names.begin(), names.end());
  }

  base::UniqueFd open_subdir(const char* name) {
    base::UniqueFd fd(
        ::openat(dir_fd_.get(), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd && errno != ENOENT) fs::throw_errno(errno, "cannot open " + dir_ + "/" + name);
    return fd;
  }

  // A pending message: some recipient not done.
  void add(StoredMessage m) {
    if (std::find(m.done.begin(), m.done.end(), false) == m.done.end()) return;
    out_.messages.push_back(std::move(m));
  }

  void read_segments() {
    std::size_t bad_lines = 0;
    auto state = parse_state_log(
        read_small(dir_fd_.get(), "state", options_.max_state_bytes, dir_ + "/state"), &bad_lines);
    if (bad_lines > 0)
      warn(std::to_string(bad_lines) + " bad line(s) in " + dir_ + "/state skipped");
    base::UniqueFd seg = open_subdir("seg");
    std::vector<std::string> names;
    if (!seg) return;
    list(seg.get(), dir_ + "/seg", names);
    std::set<QueueId> seen;
    for (const auto& name : names) {
      const std::string shown = dir_ + "/seg/" + name;
      if (!valid_queue_id(name)) {
        warn("unexpected file " + shown + " skipped");
        continue;
      }
      std::uint64_t size = 0;
      base::UniqueFd fd = open_file(seg.get(), name, &size);
      if (!fd) {
        if (errno != ENOENT) warn("cannot read " + shown + ": " + base::errno_text(errno));
        continue;  // ENOENT: finished and deleted since the listing
      }
      for (std::uint64_t offset = 0; offset < size;) {
        if (full()) return;
        std::string error;
        auto info = read_queue_record(fd.get(), offset, size, Check::kStructure, &error);
        if (!info) {
          // A record being written, or a corrupt one: the rest of this segment is not trusted.
          warn("record at offset " + std::to_string(offset) + " of " + shown + " skipped (" +
               error + "), and the rest of that segment");
          break;
        }
        offset = info->record_end;
        const QueueId id = info->envelope.id;
        if (!seen.insert(id).second) {
          warn("second record with queue id " + id + " in " + shown + " skipped");
          continue;
        }
        StoredMessage m;
        m.path = shown;
        m.body_offset = info->body_offset;
        m.body_size = info->body_size;
        m.done.assign(info->envelope.recipients.size(), false);
        m.envelope = std::move(info->envelope);
        m.held = !m.envelope.quarantine.empty();  // a quarantined record starts on hold
        if (auto it = state.find(id); it != state.end()) {
          if (it->second.removed) continue;
          m.held = it->second.held || (m.held && !it->second.released);
          for (auto i : it->second.done)
            if (i < m.done.size()) m.done[i] = true;
        }
        add(std::move(m));
      }
    }
  }

  void read_files() {
    base::UniqueFd msg = open_subdir("msg");
    std::vector<std::string> names;
    if (!msg) return;
    list(msg.get(), dir_ + "/msg", names);
    for (const auto& name : names) {
      const std::string shown = dir_ + "/msg/" + name;
      if (!valid_queue_id(name)) {  // its .done, .held and .warned files, read with it
        if (!name.ends_with(".done") && !name.ends_with(".held") && !name.ends_with(".warned") &&
            !name.ends_with(".released"))
          warn("unexpected file " + shown + " skipped");
        continue;
      }
      if (full()) return;
      std::uint64_t size = 0;
      base::UniqueFd fd = open_file(msg.get(), name, &size);
      if (!fd) {
        if (errno != ENOENT) warn("cannot read " + shown + ": " + base::errno_text(errno));
        continue;
      }
      std::string error;
      auto info = read_queue_file(fd.get(), Check::kStructure, &error);
      if (info && info->envelope.id != name) {
        info.reset();
        error = "its queue id is not its name";
      }
      if (!info) {
        warn(shown + " skipped (" + error + ")");
        continue;
      }
      StoredMessage m;
      m.path = shown;
      m.body_offset = info->body_offset;
      m.body_size = info->body_size;
      const std::size_t rcpts = info->envelope.recipients.size();
      // One line per recipient at most, each at most 20 digits and a newline (plus repeats).
      std::size_t bad_lines = 0;
      m.done = parse_done_file(
          read_small(msg.get(), name + ".done", 2 * 21 * static_cast<std::uint64_t>(rcpts) + 4096,
                     shown + ".done"),
          rcpts, &bad_lines);
      if (bad_lines > 0)
        warn(std::to_string(bad_lines) + " bad line(s) in " + shown + ".done skipped");
      auto marker = [&](const char* suffix) {
        return ::faccessat(msg.get(), (name + suffix).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
      };
      m.held = marker(".held") || (!info->envelope.quarantine.empty() && !marker(".released"));
      m.envelope = std::move(info->envelope);
      add(std::move(m));
    }
  }

  std::string dir_;
  ReadOnlyOptions options_;
  base::UniqueFd dir_fd_;
  QueueListing out_;
  bool truncated_ = false;
};

// Complete lines of text, each passed to fn; a torn last line (no newline) is not.
template <typename Fn>
void each_line(std::string_view text, Fn fn) {
  for (auto eol = text.find('\n'); eol != std::string_view::npos; eol = text.find('\n')) {
    fn(text.substr(0, eol));
    text.remove_prefix(eol + 1);
  }
}

template <typename T>
bool parse_number(std::string_view text, T& value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::map<QueueId, LoggedState> parse_state_log(std::string_view text, std::size_t* bad_lines) {
  std::map<QueueId, LoggedState> out;
  each_line(text, [&](std::string_view line) {
    if (line.size() < 3 || std::string_view("XDHRW").find(line[0]) == std::string_view::npos ||
        line[1] != ' ') {
      ++*bad_lines;
      return;
    }
    std::string_view fields = line.substr(2);
    const auto space = fields.find(' ');
    const std::string_view id = fields.substr(0, space);
    if (!valid_queue_id(id) || (line[0] != 'D' && space != std::string_view::npos)) {
      ++*bad_lines;
      return;
    }
    std::vector<std::uint32_t> indexes;
    if (line[0] == 'D') {
      std::string_view rest =
          space == std::string_view::npos ? std::string_view() : fields.substr(space + 1);
      bool ok = true;  // "D id" alone: nothing finished
      while (ok && !rest.empty()) {
        const auto next = rest.find(' ');
        std::uint32_t index = 0;
        ok = parse_number(rest.substr(0, next), index);
        indexes.push_back(index);
        rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
      }
      if (!ok) {
        ++*bad_lines;
        return;
      }
    }
    LoggedState& state = out[QueueId(id)];
    switch (line[0]) {
      case 'X':
        state.removed = true;
        break;
      case 'H':
      case 'R':
        state.held = line[0] == 'H';
        state.released = line[0] == 'R';
        break;
      case 'D':
        state.done.insert(indexes.begin(), indexes.end());
        break;
      default:  // W: the delay warning was sent; nothing mailq shows
        break;
    }
  });
  return out;
}

std::vector<bool> parse_done_file(std::string_view text, std::size_t recipients,
                                  std::size_t* bad_lines) {
  std::vector<bool> done(recipients, false);
  each_line(text, [&](std::string_view line) {
    std::size_t index = 0;
    if (!parse_number(line, index) || index >= recipients) {
      ++*bad_lines;
      return;
    }
    done[index] = true;
  });
  return done;
}

QueueListing read_queue_readonly(const std::string& kind, const std::string& queue_dir,
                                 const ReadOnlyOptions& options) {
  if (kind != "segment" && kind != "file")
    throw std::invalid_argument("unknown queue backend: " + kind);
  return Reader(queue_dir, options).read(kind);
}

}  // namespace estafette::queue
