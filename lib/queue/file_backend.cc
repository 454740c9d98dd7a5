#include "lib/queue/file_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <system_error>
#include <thread>

#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/base/log.h"
#include "lib/queue/checksum.h"
#include "lib/queue/fs_util.h"
#include "lib/queue/queue_file.h"
#include "lib/queue/record_builder.h"

namespace estafette::queue {

namespace {

constexpr std::size_t kBufferSize = 64 * 1024;
constexpr std::string_view kDoneSuffix = ".done";
constexpr std::string_view kHeldSuffix = ".held";      // msg/<id>.held: on hold (empty marker)
constexpr std::string_view kWarnedSuffix = ".warned";  // msg/<id>.warned: delay warning sent
// msg/<id>.released: released from hold (a quarantined message is held until then).
constexpr std::string_view kReleasedSuffix = ".released";

Poco::Logger& logger() {
  return base::log("queue");
}

std::string errno_string(int err) {
  return base::errno_text(err);
}

bool is_done_name(std::string_view name) {
  return name.size() > kDoneSuffix.size() && name.ends_with(kDoneSuffix);
}

bool is_held_name(std::string_view name) {
  return name.size() > kHeldSuffix.size() && name.ends_with(kHeldSuffix);
}

bool is_warned_name(std::string_view name) {
  return name.size() > kWarnedSuffix.size() && name.ends_with(kWarnedSuffix);
}

bool is_released_name(std::string_view name) {
  return name.size() > kReleasedSuffix.size() && name.ends_with(kReleasedSuffix);
}

// A per-message state file (msg/<id>.done, .held, .warned, .released), not a message.
bool is_state_name(std::string_view name) {
  return is_done_name(name) || is_held_name(name) || is_warned_name(name) || is_released_name(name);
}

class FileBackend;

class FileMessage final : public IncomingMessage {
 public:
  FileMessage(const FileBackend& owner, int tmp_dir, Envelope envelope, base::UniqueFd fd)
      : owner_(owner),
        tmp_dir_(tmp_dir),
        envelope_(std::move(envelope)),
        fd_(std::move(fd)),
        record_(envelope_, kBufferSize, [this] { return fd_.get(); }) {}
  ~FileMessage() override {
    if (in_tmp_) ::unlinkat(tmp_dir_, envelope_.id.c_str(), 0);
  }
  FileMessage(const FileMessage&) = delete;
  FileMessage& operator=(const FileMessage&) = delete;

  const Envelope& envelope() const override { return envelope_; }
  std::uint64_t body_size() const override { return record_.body_size(); }
  bool append(std::string_view bytes) override { return record_.append(bytes); }
  int write_error() const override { return record_.error() ? record_.error() : error_; }
  void set_error(int err) {
    if (error_ == 0) error_ = err;
  }

  // Committer thread: writes the rest, the body size and the trailer, then fdatasync().
  bool finish() {
    if (!record_.finish()) return false;
    if (!record_.spilled() && !base::write_all(fd_.get(), record_.memory_record())) {
      return failed("write");
    }
    return ::fdatasync(fd_.get()) == 0 || failed("fdatasync");
  }

  const FileBackend& owner() const { return owner_; }
  void left_tmp() { in_tmp_ = false; }

 private:
  bool failed(const char* what) {
    set_error(errno);
    logger().error("queue: " + std::string(what) + " failed id=" + envelope_.id + ": " +
                   errno_string(errno));
    return false;
  }

  const FileBackend& owner_;
  int tmp_dir_;  // owned by the backend
  Envelope envelope_;
  base::UniqueFd fd_;
  RecordBuilder record_;
  int error_ = 0;       // first commit-stage errno (write_error())
  bool in_tmp_ = true;  // tmp/<id> exists and is ours
};

class FileBackend final : public Backend {
 public:
  FileBackend(const std::string& queue_dir, const FileBackendOptions& options) : options_(options) {
    base::UniqueFd root = fs::open_queue_dir(queue_dir, &dir_);
    tmp_ = fs::open_subdir(root.get(), dir_, "tmp");
    msg_ = fs::open_subdir(root.get(), dir_, "msg");
    corrupt_ = fs::open_subdir(root.get(), dir_, "corrupt");
    fs::remove_stale_locked(tmp_.get(), dir_ + "/tmp");
  }

  std::unique_ptr<IncomingMessage> create(Envelope envelope) override {
    if (envelope.id.empty()) envelope.id = make_queue_id();
    if (auto problem = envelope_problem(envelope); !problem.empty()) {
      fs::throw_errno(EINVAL, "queue envelope: " + problem);
    }
    base::UniqueFd fd = fs::create_locked(tmp_.get(), dir_ + "/tmp", envelope.id, O_WRONLY);
    return std::make_unique<FileMessage>(*this, tmp_.get(), std::move(envelope), std::move(fd));
  }

  std::vector<bool> commit(std::vector<IncomingMessage*> batch) override {
    std::vector<FileMessage*> messages(batch.size(), nullptr);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto* m = dynamic_cast<FileMessage*>(batch[i]);
      if (m && &m->owner() == this) messages[i] = m;
    }
    std::vector<char> ok(batch.size(), 0);  // not vector<bool>: written from several threads
    fs::run_parallel(batch.size(), options_.sync_threads,
                     [&](std::size_t i) { ok[i] = messages[i] && messages[i]->finish(); });
    std::vector<std::size_t> renamed;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!ok[i]) continue;
      const std::string& id = messages[i]->envelope().id;
      if (fs::rename_noreplace(tmp_.get(), msg_.get(), id)) {
        messages[i]->left_tmp();
        renamed.push_back(i);
      } else {
        messages[i]->set_error(errno);
        logger().error("queue: commit rename failed id=" + id + ": " + errno_string(errno));
        ok[i] = 0;
      }
    }
    if (!renamed.empty() && ::fsync(msg_.get()) != 0) {
      // Not durable: take the files back out rather than deliver what the client will resend.
      int err = errno;
      logger().error("queue: fsync " + dir_ + "/msg failed: " + errno_string(err));
      for (std::size_t i : renamed) {
        ::unlinkat(msg_.get(), messages[i]->envelope().id.c_str(), 0);
        messages[i]->set_error(err);
        ok[i] = 0;
      }
    }
    return std::vector<bool>(ok.begin(), ok.end());
  }

  void abort(std::unique_ptr<IncomingMessage> message) override { message.reset(); }

  void scan(const std::function<void(StoredMessage&&)>& visit) override {
    std::vector<std::string> names;
    if (!fs::list_dir(msg_.get(), names)) {
      logger().error("queue: cannot list " + dir_ + "/msg: " + errno_string(errno));
      return;
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (is_state_name(name)) {
        remove_orphan_state(name);
        continue;
      }
      if (!valid_queue_id(name)) {
        logger().warning("queue: ignoring unexpected file " + dir_ + "/msg/" + name);
        continue;
      }
      if (auto stored = read_stored(name)) visit(std::move(*stored));
    }
  }

  std::optional<StoredMessage> load(const QueueId& id) override {
    if (!valid_queue_id(id)) return std::nullopt;
    return read_stored(id);
  }

  bool mark_done(const QueueId& id, const std::vector<std::size_t>& recipient_indexes) override {
    if (!valid_queue_id(id)) return false;
    if (::faccessat(msg_.get(), id.c_str(), F_OK, 0) != 0) {
      logger().error("queue: mark_done for a message not in the queue id=" + id);
      return false;
    }
    std::string name = id + std::string(kDoneSuffix);
    bool created = true;
    base::UniqueFd fd(::openat(msg_.get(), name.c_str(),
                               O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                               0600));
    if (!fd && errno == EEXIST) {
      created = false;
      fd.reset(::openat(msg_.get(), name.c_str(), O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
    }
    if (!fd) return done_failed(id, "open");
    if (!created && !fs::truncate_torn_line(fd.get())) return done_failed(id, "repair");
    std::string lines;
    for (std::size_t index : recipient_indexes) lines += std::to_string(index) + "\n";
    if (!base::write_all(fd.get(), lines)) return done_failed(id, "write");
    if (::fdatasync(fd.get()) != 0) return done_failed(id, "fdatasync");
    if (created && ::fsync(msg_.get()) != 0) return done_failed(id, "fsync dir");
    return true;
  }

  bool set_held(const std::vector<QueueId>& ids, bool held) override {
    bool changed = false;
    for (const auto& id : ids) {
      if (!valid_queue_id(id) || ::faccessat(msg_.get(), id.c_str(), F_OK, 0) != 0) continue;
      // Held: a .held marker; released: a .released one (a quarantined record stays held
      // without it). One of the two at a time.
      std::string make = id + std::string(held ? kHeldSuffix : kReleasedSuffix);
      std::string drop = id + std::string(held ? kReleasedSuffix : kHeldSuffix);
      base::UniqueFd fd(
          ::openat(msg_.get(), make.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (!fd) return held_failed(make, "create");
      if (::unlinkat(msg_.get(), drop.c_str(), 0) != 0 && errno != ENOENT)
        return held_failed(drop, "unlink");
      changed = true;
    }
    // One directory fsync makes every new or removed marker durable.
    if (changed && ::fsync(msg_.get()) != 0) return held_failed(dir_ + "/msg", "fsync");
    return true;
  }

  bool set_warned(const std::vector<QueueId>& ids) override {
    for (const auto& id : ids) {
      if (!valid_queue_id(id) || ::faccessat(msg_.get(), id.c_str(), F_OK, 0) != 0) continue;
      std::string name = id + std::string(kWarnedSuffix);
      // No fsync: a marker lost in a crash means warning once more, never losing mail.
      base::UniqueFd fd(
          ::openat(msg_.get(), name.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (!fd) {
        logger().error("queue: set_warned create " + name + " failed: " + errno_string(errno));
        return false;
      }
    }
    return true;
  }

  bool remove(const QueueId& id) override {
    if (!valid_queue_id(id)) return false;
    // The message first: a leftover .done without its message is removed by scan(); the other
    // way round, a crash could resurrect delivered recipients.
    if (::unlinkat(msg_.get(), id.c_str(), 0) != 0) {
      if (errno != ENOENT) {
        logger().error("queue: remove failed id=" + id + ": " + errno_string(errno));
      }
      return false;
    }
    for (auto suffix : {kDoneSuffix, kHeldSuffix, kWarnedSuffix, kReleasedSuffix}) {
      std::string state = id + std::string(suffix);
      if (::unlinkat(msg_.get(), state.c_str(), 0) != 0 && errno != ENOENT) {
        logger().warning("queue: remove " + state + ": " + errno_string(errno));
      }
    }
    return true;
  }

  std::vector<QueueId> ids() override {
    std::vector<std::string> names;
    std::vector<QueueId> out;
    if (!fs::list_dir(msg_.get(), names)) return out;
    for (auto& n : names)
      if (!is_state_name(n) && valid_queue_id(n)) out.push_back(std::move(n));
    return out;
  }

  std::size_t count() override {
    std::vector<std::string> names;
    if (!fs::list_dir(msg_.get(), names)) return 0;
    return static_cast<std::size_t>(std::count_if(names.begin(), names.end(), [](const auto& n) {
      return !is_state_name(n) && valid_queue_id(n);
    }));
  }

 private:
  // Reads msg/<id> and its state log; moves a corrupt file aside.
  std::optional<StoredMessage> read_stored(const std::string& id) {
    base::UniqueFd fd(::openat(msg_.get(), id.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
      if (errno != ENOENT) {
        logger().error("queue: open " + dir_ + "/msg/" + id + ": " + errno_string(errno));
      }
      return std::nullopt;
    }
    std::string error;
    auto info = read_queue_file(
        fd.get(), options_.verify_body_on_read ? Check::kBody : Check::kStructure, &error);
    if (info && info->envelope.id != id) {
      info.reset();
      error = "queue id in the file does not match its name";
    }
    if (!info) {
      move_corrupt(id, error);
      return std::nullopt;
    }
    StoredMessage stored;
    stored.path = dir_ + "/msg/" + id;
    stored.body_offset = info->body_offset;
    stored.body_size = info->body_size;
    stored.done = read_done(id, info->envelope.recipients.size());
    auto marker = [&](std::string_view suffix) {
      return ::faccessat(msg_.get(), (id + std::string(suffix)).c_str(), F_OK,
                         AT_SYMLINK_NOFOLLOW) == 0;
    };
    stored.held =
        marker(kHeldSuffix) || (!info->envelope.quarantine.empty() && !marker(kReleasedSuffix));
    stored.warned = ::faccessat(msg_.get(), (id + std::string(kWarnedSuffix)).c_str(), F_OK,
                                AT_SYMLINK_NOFOLLOW) == 0;
    stored.envelope = std::move(info->envelope);
    return stored;
  }

  std::vector<bool> read_done(const std::string& id, std::size_t recipients) {
    std::vector<bool> done(recipients, false);
    std::string name = id + std::string(kDoneSuffix);
    base::UniqueFd fd(::openat(msg_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
      if (errno != ENOENT) {
        // Unreadable state: delivering again (duplicates) is the safe side.
        logger().error("queue: open " + name + ": " + errno_string(errno));
      }
      return done;
    }
    std::string text;
    char chunk[4096];
    for (;;) {
      ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(chunk, static_cast<std::size_t>(n));
    }
    // Only complete lines count: a torn last line is ignored.
    std::string_view rest = text;
    for (auto eol = rest.find('\n'); eol != std::string_view::npos; eol = rest.find('\n')) {
      std::string_view line = rest.substr(0, eol);
      rest.remove_prefix(eol + 1);
      std::size_t index = 0;
      auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), index);
      if (line.empty() || ec != std::errc() || end != line.data() + line.size() ||
          index >= recipients) {
        logger().warning("queue: bad line in " + name + " ignored");
        continue;
      }
      done[index] = true;
    }
    return done;
  }

  bool done_failed(const std::string& id, const char* what) {
    logger().error("queue: mark_done " + std::string(what) + " failed id=" + id + ": " +
                   errno_string(errno));
    return false;
  }

  bool held_failed(const std::string& name, const char* what) {
    logger().error("queue: set_held " + std::string(what) + " " + name +
                   " failed: " + errno_string(errno));
    return false;
  }

  // A .done, .held or .warned file whose message is gone (a crash between the unlinks of remove()).
  void remove_orphan_state(const std::string& name) {
    std::string id = name.substr(0, name.rfind('.'));
    if (::faccessat(msg_.get(), id.c_str(), F_OK, 0) == 0) return;
    if (errno != ENOENT) return;
    logger().information("queue: removing state log without message " + name);
    ::unlinkat(msg_.get(), name.c_str(), 0);
  }

  void move_corrupt(const std::string& id, const std::string& reason) {
    logger().warning("queue: corrupt queue file id=" + id + " reason=\"" + reason + "\" moved to " +
                     dir_ + "/corrupt");
    if (::renameat(msg_.get(), id.c_str(), corrupt_.get(), id.c_str()) != 0) {
      logger().error("queue: cannot move " + id + " to corrupt/: " + errno_string(errno));
      return;
    }
    std::string done = id + std::string(kDoneSuffix);
    // No fsync: if the move is lost in a crash, the next scan moves the file again.
    ::renameat(msg_.get(), done.c_str(), corrupt_.get(), done.c_str());
  }

  FileBackendOptions options_;
  std::string dir_;  // absolute
  base::UniqueFd tmp_;
  base::UniqueFd msg_;
  base::UniqueFd corrupt_;
};

}  // namespace

std::unique_ptr<Backend> open_file_backend(const std::string& queue_dir) {
  return open_file_backend(queue_dir, FileBackendOptions{});
}

std::unique_ptr<Backend> open_file_backend(const std::string& queue_dir,
                                           const FileBackendOptions& options) {
  return std::make_unique<FileBackend>(queue_dir, options);
}

}  // namespace estafette::queue
