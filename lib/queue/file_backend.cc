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
#include "lib/base/log.h"
#include "lib/queue/checksum.h"
#include "lib/queue/queue_file.h"

namespace estafette::queue {

namespace {

constexpr std::size_t kBufferSize = 64 * 1024;
constexpr std::string_view kDoneSuffix = ".done";

Poco::Logger& logger() {
  return base::log("queue");
}

std::string errno_string(int err) {
  return base::errno_text(err);
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

bool write_all(int fd, std::string_view bytes, int& error) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Opens (creating if needed) a directory below dir_fd.
base::UniqueFd open_subdir(int dir_fd, const std::string& path, const char* name) {
  if (::mkdirat(dir_fd, name, 0700) == 0) {
    ::fsync(dir_fd);  // make the new directory entry durable
  } else if (errno != EEXIST) {
    throw_errno(errno, "mkdir " + path + "/" + name);
  }
  base::UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno(errno, "open " + path + "/" + name);
  return fd;
}

// Names in a directory (without . and ..); false (errno set) if it cannot be read.
bool list_dir(int dir_fd, std::vector<std::string>& names) {
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    int err = errno;
    ::close(fd);
    errno = err;
    return false;
  }
  errno = 0;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(dir);
  errno = err;
  return err == 0;
}

// Calls fn(i) for i in [0, n) on up to threads threads (the calling one included).
template <typename Fn>
void run_parallel(std::size_t n, unsigned threads, Fn fn) {
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::jthread> helpers;
  std::size_t extra = std::min<std::size_t>(threads > 0 ? threads - 1 : 0, n > 0 ? n - 1 : 0);
  for (std::size_t k = 0; k < extra; ++k) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // out of threads: the calling thread does the rest
    }
  }
  work();
}  // helpers join here

bool is_done_name(std::string_view name) {
  return name.size() > kDoneSuffix.size() && name.ends_with(kDoneSuffix);
}

class FileBackend;

class FileMessage final : public IncomingMessage {
 public:
  FileMessage(const FileBackend& owner, int tmp_dir, Envelope envelope, base::UniqueFd fd,
              EncodedHeader header)
      : owner_(owner),
        tmp_dir_(tmp_dir),
        envelope_(std::move(envelope)),
        fd_(std::move(fd)),
        header_(std::move(header)),
        buffer_(header_.text) {}
  ~FileMessage() override {
    if (in_tmp_) ::unlinkat(tmp_dir_, envelope_.id.c_str(), 0);
  }
  FileMessage(const FileMessage&) = delete;
  FileMessage& operator=(const FileMessage&) = delete;

  const Envelope& envelope() const override { return envelope_; }
  std::uint64_t body_size() const override { return body_size_; }

  bool append(std::string_view bytes) override {
    if (error_ != 0) return false;
    body_crc_ = crc32c_update(body_crc_, bytes);
    body_size_ += bytes.size();
    if (buffer_.size() + bytes.size() <= kBufferSize) {
      buffer_.append(bytes);
      return true;
    }
    if (!flush()) return false;
    if (bytes.size() >= kBufferSize) return write_out(bytes);
    buffer_.append(bytes);
    return true;
  }

  // Committer thread: writes the rest, the body size and the trailer, then fdatasync().
  bool finish() {
    if (error_ != 0) return false;
    std::string size_field = format_size_field(body_size_);
    header_.text.replace(header_.size_field_offset, kSizeDigits, size_field);
    if (header_in_buffer_) {
      buffer_.replace(header_.size_field_offset, kSizeDigits, size_field);
    } else if (::pwrite(fd_.get(), size_field.data(), size_field.size(),
                        static_cast<off_t>(header_.size_field_offset)) !=
               static_cast<ssize_t>(size_field.size())) {
      return failed(errno != 0 ? errno : EIO, "pwrite");
    }
    buffer_ += encode_trailer(body_size_, crc32c(header_.text), body_crc_);
    if (!flush()) return false;
    if (::fdatasync(fd_.get()) != 0) return failed(errno, "fdatasync");
    return true;
  }

  const FileBackend& owner() const { return owner_; }
  void left_tmp() { in_tmp_ = false; }
  int error() const { return error_; }

 private:
  bool flush() {
    bool ok = write_out(buffer_);
    buffer_.clear();
    header_in_buffer_ = false;
    return ok;
  }
  bool write_out(std::string_view bytes) {
    int err = 0;
    return write_all(fd_.get(), bytes, err) || failed(err, "write");
  }
  bool failed(int err, const char* what) {
    error_ = err;
    logger().error("queue: " + std::string(what) + " failed id=" + envelope_.id + ": " +
                   errno_string(err));
    return false;
  }

  const FileBackend& owner_;
  int tmp_dir_;  // owned by the backend
  Envelope envelope_;
  base::UniqueFd fd_;
  EncodedHeader header_;
  std::string buffer_;  // starts with the header; at most kBufferSize bytes
  bool header_in_buffer_ = true;
  bool in_tmp_ = true;  // tmp/<id> exists and is ours
  std::uint64_t body_size_ = 0;
  std::uint32_t body_crc_ = 0;
  int error_ = 0;
};

class FileBackend final : public Backend {
 public:
  FileBackend(const std::string& queue_dir, const FileBackendOptions& options) : options_(options) {
    if (::mkdir(queue_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      throw_errno(errno, "mkdir " + queue_dir);
    }
    char resolved[PATH_MAX];
    if (!::realpath(queue_dir.c_str(), resolved)) throw_errno(errno, "realpath " + queue_dir);
    dir_ = resolved;
    base::UniqueFd root(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno(errno, "open " + dir_);
    tmp_ = open_subdir(root.get(), dir_, "tmp");
    msg_ = open_subdir(root.get(), dir_, "msg");
    corrupt_ = open_subdir(root.get(), dir_, "corrupt");
    clean_tmp();
  }

  std::unique_ptr<IncomingMessage> create(Envelope envelope) override {
    if (envelope.id.empty()) envelope.id = make_queue_id();
    EncodedHeader header = encode_header(envelope);  // validates
    base::UniqueFd fd = create_tmp(envelope.id);
    return std::make_unique<FileMessage>(*this, tmp_.get(), std::move(envelope), std::move(fd),
                                         std::move(header));
  }

  std::vector<bool> commit(std::vector<IncomingMessage*> batch) override {
    std::vector<FileMessage*> messages(batch.size(), nullptr);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto* m = dynamic_cast<FileMessage*>(batch[i]);
      if (m && &m->owner() == this) messages[i] = m;
    }
    std::vector<char> ok(batch.size(), 0);  // not vector<bool>: written from several threads
    run_parallel(batch.size(), options_.sync_threads,
                 [&](std::size_t i) { ok[i] = messages[i] && messages[i]->finish(); });
    std::vector<std::size_t> renamed;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!ok[i]) continue;
      const std::string& id = messages[i]->envelope().id;
      if (rename_noreplace(id)) {
        messages[i]->left_tmp();
        renamed.push_back(i);
      } else {
        logger().error("queue: commit rename failed id=" + id + ": " + errno_string(errno));
        ok[i] = 0;
      }
    }
    if (!renamed.empty() && ::fsync(msg_.get()) != 0) {
      // Not durable: take the files back out rather than deliver what the client will resend.
      logger().error("queue: fsync " + dir_ + "/msg failed: " + errno_string(errno));
      for (std::size_t i : renamed) {
        ::unlinkat(msg_.get(), messages[i]->envelope().id.c_str(), 0);
        ok[i] = 0;
      }
    }
    return std::vector<bool>(ok.begin(), ok.end());
  }

  void abort(std::unique_ptr<IncomingMessage> message) override { message.reset(); }

  void scan(const std::function<void(StoredMessage&&)>& visit) override {
    std::vector<std::string> names;
    if (!list_dir(msg_.get(), names)) {
      logger().error("queue: cannot list " + dir_ + "/msg: " + errno_string(errno));
      return;
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (is_done_name(name)) {
        remove_orphan_done(name);
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
    if (!created && !repair_done_log(fd.get())) return done_failed(id, "repair");
    std::string lines;
    for (std::size_t index : recipient_indexes) lines += std::to_string(index) + "\n";
    int err = 0;
    if (!write_all(fd.get(), lines, err)) {
      errno = err;
      return done_failed(id, "write");
    }
    if (::fdatasync(fd.get()) != 0) return done_failed(id, "fdatasync");
    if (created && ::fsync(msg_.get()) != 0) return done_failed(id, "fsync dir");
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
    std::string done = id + std::string(kDoneSuffix);
    if (::unlinkat(msg_.get(), done.c_str(), 0) != 0 && errno != ENOENT) {
      logger().warning("queue: remove " + done + ": " + errno_string(errno));
    }
    return true;
  }

  std::size_t count() override {
    std::vector<std::string> names;
    if (!list_dir(msg_.get(), names)) return 0;
    return static_cast<std::size_t>(std::count_if(names.begin(), names.end(), [](const auto& n) {
      return !is_done_name(n) && valid_queue_id(n);
    }));
  }

 private:
  // Creates tmp/<id> and holds its flock, which marks it live for clean_tmp() (of any process
  // sharing this dir). A cleaner that locked the new file first has unlinked it by the time our
  // (blocking, brief) flock returns: then we start again.
  base::UniqueFd create_tmp(const std::string& id) {
    std::string path = dir_ + "/tmp/" + id;
    for (int attempt = 0;; ++attempt) {
      base::UniqueFd fd(::openat(tmp_.get(), id.c_str(),
                                 O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (!fd) throw_errno(errno, "create " + path);
      int rc;
      while ((rc = ::flock(fd.get(), LOCK_EX)) != 0 && errno == EINTR) {
      }
      struct stat st {};
      if (rc != 0 || ::fstat(fd.get(), &st) != 0) {
        int err = errno;
        ::unlinkat(tmp_.get(), id.c_str(), 0);
        throw_errno(err, "lock " + path);
      }
      if (st.st_nlink > 0) return fd;
      if (attempt == 3) throw_errno(EAGAIN, "create " + path + " (removed by a cleaner)");
    }
  }

  bool rename_noreplace(const std::string& id) {
    if (::renameat2(tmp_.get(), id.c_str(), msg_.get(), id.c_str(), RENAME_NOREPLACE) == 0) {
      return true;
    }
    if (errno != EINVAL && errno != ENOSYS) return false;
    // A filesystem without RENAME_NOREPLACE: link() never replaces either.
    if (::linkat(tmp_.get(), id.c_str(), msg_.get(), id.c_str(), 0) != 0) return false;
    ::unlinkat(tmp_.get(), id.c_str(), 0);
    return true;
  }

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

  // Drops a torn last line (left by a crash during an append) so new lines start cleanly.
  bool repair_done_log(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return false;
    if (st.st_size == 0) return true;
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    if (::pread(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      if (errno == 0) errno = EIO;
      return false;
    }
    if (text.back() == '\n') return true;
    auto eol = text.rfind('\n');
    off_t keep = eol == std::string::npos ? 0 : static_cast<off_t>(eol + 1);
    return ::ftruncate(fd, keep) == 0;
  }

  bool done_failed(const std::string& id, const char* what) {
    logger().error("queue: mark_done " + std::string(what) + " failed id=" + id + ": " +
                   errno_string(errno));
    return false;
  }

  void remove_orphan_done(const std::string& name) {
    std::string id = name.substr(0, name.size() - kDoneSuffix.size());
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

  // Deletes tmp files whose writer is gone: nobody holds their flock.
  void clean_tmp() {
    std::vector<std::string> names;
    if (!list_dir(tmp_.get(), names)) {
      logger().error("queue: cannot list " + dir_ + "/tmp: " + errno_string(errno));
      return;
    }
    for (const auto& name : names) {
      base::UniqueFd fd(
          ::openat(tmp_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
      if (!fd) continue;
      struct stat locked {};
      if (::fstat(fd.get(), &locked) != 0 || !S_ISREG(locked.st_mode)) continue;
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // a live writer
      // Still the file under that name (another cleaner may have removed it and a writer created
      // a new one since)? We hold its lock now, so nobody else removes it.
      struct stat named {};
      if (::fstat(fd.get(), &locked) != 0 || locked.st_nlink == 0) continue;
      if (::fstatat(tmp_.get(), name.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (named.st_ino != locked.st_ino || named.st_dev != locked.st_dev) continue;
      logger().information("queue: removing stale " + dir_ + "/tmp/" + name);
      ::unlinkat(tmp_.get(), name.c_str(), 0);
    }
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
