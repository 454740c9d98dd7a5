#include "lib/queue/segment_backend.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/base/log.h"
#include "lib/queue/fs_util.h"
#include "lib/queue/queue_file.h"
#include "lib/queue/record_builder.h"

namespace estafette::queue {

namespace {

constexpr const char* kStateName = "state";
constexpr const char* kStateNewName = "state.new";

Poco::Logger& logger() {
  return base::log("queue");
}

std::string errno_string(int err) {
  return base::errno_text(err);
}

// pwritev() all of parts at offset; false with errno set.
bool pwrite_all(int fd, std::vector<std::string_view> parts, std::uint64_t offset) {
  std::size_t first = 0;
  while (first < parts.size()) {
    std::vector<iovec> iov;
    for (std::size_t i = first; i < parts.size() && iov.size() < IOV_MAX; ++i) {
      iov.push_back({const_cast<char*>(parts[i].data()), parts[i].size()});
    }
    ssize_t n = ::pwritev(fd, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    offset += static_cast<std::uint64_t>(n);
    for (auto left = static_cast<std::size_t>(n); left > 0 && first < parts.size();) {
      std::size_t take = std::min(left, parts[first].size());
      parts[first].remove_prefix(take);
      left -= take;
      if (parts[first].empty()) ++first;
    }
    while (first < parts.size() && parts[first].empty()) ++first;
  }
  return true;
}

class SegmentBackend;

class SegmentMessage final : public IncomingMessage {
 public:
  SegmentMessage(const SegmentBackend& owner, int tmp_dir, std::string tmp_path, Envelope envelope,
                 std::size_t memory_limit, std::atomic<std::int64_t>& budget_left)
      : owner_(owner),
        tmp_dir_(tmp_dir),
        tmp_path_(std::move(tmp_path)),
        envelope_(std::move(envelope)),
        budget_left_(budget_left),
        record_(envelope_, memory_limit, [this] { return open_spool(); }) {
    take_budget(record_.memory_record().size());
  }
  ~SegmentMessage() override {
    budget_left_ += charged_;
    if (spool_ && in_tmp_) ::unlinkat(tmp_dir_, envelope_.id.c_str(), 0);
  }
  SegmentMessage(const SegmentMessage&) = delete;
  SegmentMessage& operator=(const SegmentMessage&) = delete;

  const Envelope& envelope() const override { return envelope_; }
  std::uint64_t body_size() const override { return record_.body_size(); }
  int write_error() const override { return record_.error() ? record_.error() : error_; }
  void set_error(int err) {
    if (error_ == 0) error_ = err;
  }
  bool append(std::string_view bytes) override {
    if (!record_.spilled() && !take_budget(bytes.size()) && !record_.spill_now()) return false;
    bool ok = record_.append(bytes);
    if (record_.spilled()) release_budget();
    return ok;
  }

  const SegmentBackend& owner() const { return owner_; }
  RecordBuilder& record() { return record_; }
  bool spooled() const { return record_.spilled(); }
  // Committer thread, spooled messages only: the rest of the record, then fdatasync().
  bool finish_spool() {
    if (!record_.finish()) return false;
    if (::fdatasync(spool_.get()) == 0) return true;
    set_error(errno);
    logger().error("queue: fdatasync failed id=" + envelope_.id + ": " + errno_string(errno));
    return false;
  }
  void left_tmp() { in_tmp_ = false; }

 private:
  int open_spool() {
    try {
      spool_ = fs::create_locked(tmp_dir_, tmp_path_, envelope_.id, O_WRONLY);
      return spool_.get();
    } catch (const std::system_error& e) {
      errno = e.code().value();
      return -1;
    }
  }

  // Charges n more bytes of memory to the backend's budget; false (nothing charged) if it is
  // used up.
  bool take_budget(std::size_t n) {
    auto want = static_cast<std::int64_t>(n);
    if (budget_left_.fetch_sub(want) < want) {
      budget_left_ += want;
      return false;
    }
    charged_ += want;
    return true;
  }
  void release_budget() { budget_left_ += std::exchange(charged_, 0); }

  const SegmentBackend& owner_;
  int tmp_dir_;  // owned by the backend
  std::string tmp_path_;
  Envelope envelope_;
  std::atomic<std::int64_t>& budget_left_;  // the backend's
  std::int64_t charged_ = 0;                // what this message holds of it
  int error_ = 0;                           // first commit-stage errno (write_error())
  base::UniqueFd spool_;
  RecordBuilder record_;
  bool in_tmp_ = true;
};

class SegmentBackend final : public Backend {
 public:
  SegmentBackend(const std::string& queue_dir, const SegmentBackendOptions& options)
      : options_(options) {
    root_ = fs::open_queue_dir(queue_dir, &dir_);
    tmp_ = fs::open_subdir(root_.get(), dir_, "tmp");
    seg_ = fs::open_subdir(root_.get(), dir_, "seg");
    corrupt_ = fs::open_subdir(root_.get(), dir_, "corrupt");
    fs::remove_stale_locked(tmp_.get(), dir_ + "/tmp");
  }

  std::unique_ptr<IncomingMessage> create(Envelope envelope) override {
    if (envelope.id.empty()) envelope.id = make_queue_id();
    return std::make_unique<SegmentMessage>(*this, tmp_.get(), dir_ + "/tmp", std::move(envelope),
                                            options_.memory_record_limit, budget_left_);
  }

  std::vector<bool> commit(std::vector<IncomingMessage*> batch) override;

  void abort(std::unique_ptr<IncomingMessage> message) override { message.reset(); }

  void scan(const std::function<void(StoredMessage&&)>& visit) override;

  std::optional<StoredMessage> load(const QueueId& id) override {
    std::lock_guard lock(reader_mutex_);
    const Entry* entry = find(id);
    if (!entry || entry->removed) return std::nullopt;
    return read_stored(id, *entry);
  }

  bool mark_done(const QueueId& id, const std::vector<std::size_t>& recipient_indexes) override {
    std::lock_guard lock(reader_mutex_);
    Entry* entry = find(id);
    if (!entry || entry->removed) {
      logger().error("queue: mark_done for a message not in the queue id=" + id);
      return false;
    }
    std::string line = "D " + id;
    for (std::size_t i : recipient_indexes) line += " " + std::to_string(i);
    line += '\n';
    if (!append_state(line, true)) return false;
    for (std::size_t i : recipient_indexes) {
      auto index = static_cast<std::uint32_t>(i);
      if (std::find(entry->done.begin(), entry->done.end(), index) == entry->done.end()) {
        entry->done.push_back(index);
      }
    }
    return true;
  }

  bool set_held(const std::vector<QueueId>& ids, bool held) override {
    std::lock_guard lock(reader_mutex_);
    std::string lines;
    std::vector<Entry*> entries;
    for (const auto& id : ids) {
      Entry* entry = find(id);
      if (!entry || entry->removed) continue;
      lines += (held ? "H " : "R ") + id + "\n";
      entries.push_back(entry);
    }
    if (lines.empty()) return true;
    if (!append_state(lines, true)) return false;
    for (Entry* entry : entries) {
      entry->held = held;
      entry->released = !held;
    }
    return true;
  }

  bool set_warned(const std::vector<QueueId>& ids) override {
    std::lock_guard lock(reader_mutex_);
    std::string lines;
    std::vector<Entry*> entries;
    for (const auto& id : ids) {
      Entry* entry = find(id);
      if (!entry || entry->removed || entry->warned) continue;
      lines += "W " + id + "\n";
      entries.push_back(entry);
    }
    if (lines.empty()) return true;
    // No fsync: losing these lines in a crash means warning once more, never losing mail.
    if (!append_state(lines, false)) return false;
    for (Entry* entry : entries) entry->warned = true;
    return true;
  }

  bool remove(const QueueId& id) override {
    std::lock_guard lock(reader_mutex_);
    Entry* entry = find(id);
    if (!entry || entry->removed) return false;
    // No fsync: losing this line in a crash means delivering the message again, never losing it.
    if (!append_state("X " + id + "\n", false)) return false;
    entry->removed = true;
    Segment* segment = entry->segment;
    if (--segment->live == 0) delete_if_finished(*segment);  // may destroy *segment, *entry
    maybe_compact();
    return true;
  }

  std::vector<QueueId> ids() override {
    std::lock_guard lock(reader_mutex_);
    catch_up();
    std::vector<QueueId> out;
    for (const auto& [id, entry] : index_)
      if (entry.segment && !entry.removed) out.push_back(id);
    return out;
  }

  std::size_t count() override {
    std::lock_guard lock(reader_mutex_);
    catch_up();
    std::size_t n = 0;
    for (const auto& [name, segment] : segments_) n += segment.live;
    return n;
  }

 private:
  struct Segment {
    std::string name;
    base::UniqueFd fd;                // open for reading
    std::uint64_t read_to = 0;        // records before this offset are indexed
    std::size_t live = 0;             // indexed messages not removed
    bool sealed = false;              // its writer has let go (we hold its flock): no more appends
    std::vector<const QueueId*> ids;  // keys of index_
  };
  struct Entry {
    Segment* segment = nullptr;  // null: only known from the state log so far
    std::uint64_t offset = 0;    // where its record starts
    bool removed = false;
    bool held = false;                // H line (set_held) not followed by an R line
    bool released = false;            // R line not followed by an H line: a quarantine ended
    bool warned = false;              // W line (set_warned): its delay warning was sent
    std::vector<std::uint32_t> done;  // finished recipient indexes
  };

  // --- writer side (writer_mutex_) ---
  bool open_segment();
  void close_segment() {
    segment_fd_.reset();  // lets go of the flock: readers may now seal it
    segment_size_ = 0;
  }

  // --- reader side (reader_mutex_) ---
  Entry* located(const QueueId& id) {
    auto it = index_.find(id);
    return it != index_.end() && it->second.segment ? &it->second : nullptr;
  }
  Entry* find(const QueueId& id) {
    if (!valid_queue_id(id)) return nullptr;
    read_state();  // another process may have finished it
    if (Entry* entry = located(id)) return entry;
    catch_up(&id);
    return located(id);
  }
  // Indexes what was added since: state lines, records in segments still being written, new
  // segments (listing seg/ only when wanted is still not found: it may be a one-record segment
  // named after itself, or in a new segment).
  void catch_up(const QueueId* wanted = nullptr);
  void read_state();
  bool add_segment(const std::string& name);  // opens and reads it; false if it is not there
  void read_records(Segment& segment, std::vector<StoredMessage>* collect);
  bool try_seal(Segment& segment);
  std::uint64_t next_valid_record(Segment& segment, std::uint64_t size, Check check);
  bool copy_aside(Segment& segment, std::uint64_t from, std::uint64_t to, const std::string& name);
  void set_aside(Segment& segment, std::uint64_t end, bool resync, const std::string& reason);
  void delete_if_finished(Segment& segment);
  bool open_state();
  bool append_state(const std::string& line, bool sync);
  void maybe_compact();
  bool compact();
  std::optional<StoredMessage> read_stored(const QueueId& id, const Entry& entry);
  StoredMessage stored_from(QueueFileInfo&& info, const Segment& segment, const Entry& entry) {
    StoredMessage stored;
    stored.path = dir_ + "/seg/" + segment.name;
    stored.body_offset = info.body_offset;
    stored.body_size = info.body_size;
    stored.held = entry.held || (!entry.released && !info.envelope.quarantine.empty());
    stored.warned = entry.warned;
    stored.done.assign(info.envelope.recipients.size(), false);
    for (auto i : entry.done) {
      if (i < stored.done.size()) stored.done[i] = true;
    }
    stored.envelope = std::move(info.envelope);
    return stored;
  }

  SegmentBackendOptions options_;
  std::atomic<std::int64_t> budget_left_{static_cast<std::int64_t>(options_.memory_budget)};
  std::string dir_;  // absolute
  base::UniqueFd root_;
  base::UniqueFd tmp_;
  base::UniqueFd seg_;
  base::UniqueFd corrupt_;

  std::mutex writer_mutex_;
  base::UniqueFd segment_fd_;  // the segment this process appends to (flock()ed)
  std::uint64_t segment_size_ = 0;
  bool segment_entry_synced_ = false;

  std::mutex reader_mutex_;
  std::map<std::string, Segment> segments_;  // by name: oldest first
  std::set<std::string> unsealed_;           // names of segments their writer may still extend
  std::set<std::string> finished_;           // all messages finished, writer still holds it
  std::unordered_map<QueueId, Entry> index_;
  base::UniqueFd state_fd_;
  std::uint64_t state_read_to_ = 0;
  std::uint64_t state_size_ = 0;
  std::uint64_t state_compacted_size_ = 0;
};

bool SegmentBackend::open_segment() {
  try {
    segment_fd_ = fs::create_locked(seg_.get(), dir_ + "/seg", make_queue_id(), O_WRONLY);
  } catch (const std::system_error& e) {
    logger().error(std::string("queue: cannot start a segment: ") + e.what());
    errno = e.code().value();
    return false;
  }
  segment_size_ = 0;
  segment_entry_synced_ = false;
  return true;
}

std::vector<bool> SegmentBackend::commit(std::vector<IncomingMessage*> batch) {
  std::lock_guard lock(writer_mutex_);
  std::vector<SegmentMessage*> messages(batch.size(), nullptr);
  std::vector<char> ok(batch.size(), 0);  // not vector<bool>: written from several threads
  std::vector<std::size_t> in_memory, spooled;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto* m = dynamic_cast<SegmentMessage*>(batch[i]);
    if (!m || &m->owner() != this) continue;
    messages[i] = m;
    if (m->spooled()) {
      spooled.push_back(i);
    } else if (m->record().finish()) {
      in_memory.push_back(i);
    }
  }

  bool new_entry = false;
  bool segment_ok = false;
  int segment_errno = 0;  // why the segment's part of the batch failed
  std::uint64_t written = 0;
  if (!in_memory.empty() && !segment_fd_ && !open_segment()) segment_errno = errno;
  if (!in_memory.empty() && segment_fd_) {
    std::vector<std::string_view> parts;
    for (std::size_t i : in_memory) {
      parts.push_back(messages[i]->record().memory_record());
      written += parts.back().size();
    }
    segment_ok = pwrite_all(segment_fd_.get(), parts, segment_size_);
    if (!segment_ok) {
      segment_errno = errno;
      logger().error("queue: segment write failed: " + errno_string(errno));
    }
    new_entry = !segment_entry_synced_;
  }
  // Task 0: the segment's fdatasync; tasks 1..n: the spooled messages.
  fs::run_parallel(spooled.size() + 1, options_.sync_threads, [&](std::size_t task) {
    if (task > 0) {
      std::size_t i = spooled[task - 1];
      ok[i] = messages[i]->finish_spool();
    } else if (segment_ok && ::fdatasync(segment_fd_.get()) != 0) {
      segment_errno = errno;
      logger().error("queue: segment fdatasync failed: " + errno_string(errno));
      segment_ok = false;
    }
  });
  std::vector<std::size_t> renamed;
  for (std::size_t i : spooled) {
    if (!ok[i]) continue;
    const std::string& id = messages[i]->envelope().id;
    if (fs::rename_noreplace(tmp_.get(), seg_.get(), id)) {
      messages[i]->left_tmp();
      renamed.push_back(i);
      new_entry = true;
    } else {
      messages[i]->set_error(errno);
      logger().error("queue: commit rename failed id=" + id + ": " + errno_string(errno));
      ok[i] = 0;
    }
  }
  if (new_entry && ::fsync(seg_.get()) != 0) {
    // Not durable: take the files back out rather than deliver what the client will resend.
    segment_errno = errno;
    logger().error("queue: fsync " + dir_ + "/seg failed: " + errno_string(errno));
    for (std::size_t i : renamed) {
      ::unlinkat(seg_.get(), messages[i]->envelope().id.c_str(), 0);
      messages[i]->set_error(segment_errno);
      ok[i] = 0;
    }
    segment_ok = false;
  }
  if (segment_ok) {
    for (std::size_t i : in_memory) ok[i] = 1;
    segment_size_ += written;
    segment_entry_synced_ = true;
    if (segment_size_ >= options_.segment_size) close_segment();
  } else if (!in_memory.empty()) {
    for (std::size_t i : in_memory) messages[i]->set_error(segment_errno ? segment_errno : EIO);
    // The segment's tail is in doubt: never append behind it again. Readers index any complete
    // record in it; its client got a 451 and may send it again (a duplicate, never a loss).
    close_segment();
  }
  return std::vector<bool>(ok.begin(), ok.end());
}

void SegmentBackend::scan(const std::function<void(StoredMessage&&)>& visit) {
  std::vector<StoredMessage> found;
  {
    std::lock_guard lock(reader_mutex_);
    // Start from nothing: this is the start-up rebuild of the index.
    segments_.clear();
    unsealed_.clear();
    finished_.clear();
    index_.clear();
    state_fd_.reset();
    state_read_to_ = 0;
    if (open_state() && !fs::truncate_torn_line(state_fd_.get())) {
      logger().error("queue: cannot repair " + dir_ + "/state: " + errno_string(errno));
    }
    read_state();
    std::vector<std::string> names;
    if (!fs::list_dir(seg_.get(), names)) {
      logger().error("queue: cannot list " + dir_ + "/seg: " + errno_string(errno));
      return;
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      base::UniqueFd fd(::openat(seg_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (!valid_queue_id(name) || !fd) {
        logger().warning("queue: ignoring " + dir_ + "/seg/" + name);
        continue;
      }
      Segment& segment = segments_[name];
      segment.name = name;
      segment.fd = std::move(fd);
      unsealed_.insert(name);
      try_seal(segment);
      read_records(segment, &found);
    }
    for (auto it = segments_.begin(); it != segments_.end();) {
      auto next = std::next(it);
      if (it->second.live == 0) delete_if_finished(it->second);
      it = next;
    }
    std::erase_if(index_, [](const auto& item) { return !item.second.segment; });
    if (state_size_ > 0) compact();
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.envelope.id < b.envelope.id; });
  for (auto& m : found) visit(std::move(m));
}

void SegmentBackend::catch_up(const QueueId* wanted) {
  read_state();
  for (auto it = unsealed_.begin(); it != unsealed_.end();) {
    Segment& segment = segments_.at(*it++);  // read_records() may erase it from unsealed_
    read_records(segment, nullptr);
  }
  bool found = wanted && located(*wanted);
  if (wanted && !found && !segments_.contains(*wanted) && add_segment(*wanted)) {
    found = located(*wanted);
  }
  if (!found) {
    std::vector<std::string> names;
    if (!fs::list_dir(seg_.get(), names)) {
      logger().error("queue: cannot list " + dir_ + "/seg: " + errno_string(errno));
    }
    for (const auto& name : names) {
      if (!segments_.contains(name)) add_segment(name);
    }
  }
  // Segments whose messages were all finished while their writer still held them.
  for (auto it = finished_.begin(); it != finished_.end();) {
    auto segment = segments_.find(*it++);
    if (segment != segments_.end()) delete_if_finished(segment->second);
  }
}

bool SegmentBackend::add_segment(const std::string& name) {
  if (!valid_queue_id(name)) {
    logger().warning("queue: ignoring unexpected file " + dir_ + "/seg/" + name);
    return false;
  }
  base::UniqueFd fd(::openat(seg_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno != ENOENT) {
      logger().error("queue: open " + dir_ + "/seg/" + name + ": " + errno_string(errno));
    }
    return false;
  }
  auto [it, added] = segments_.try_emplace(name);
  Segment& segment = it->second;
  segment.name = name;
  segment.fd = std::move(fd);
  unsealed_.insert(name);
  read_records(segment, nullptr);
  return true;
}

bool SegmentBackend::try_seal(Segment& segment) {
  if (!segment.sealed && fs::try_lock(segment.fd.get())) {
    segment.sealed = true;
    unsealed_.erase(segment.name);
  }
  return segment.sealed;
}

void SegmentBackend::read_records(Segment& segment, std::vector<StoredMessage>* collect) {
  if (!segment.fd) return;  // sealed and read to its end
  // The size is final only once the writer has let go (sealed): a writer appends, then lets go
  // of a full segment at any moment. So whenever try_seal() succeeds here, the size is taken
  // again before a record is judged torn or the segment read to its end (taking the size from
  // before lost what was appended in between: never indexed, deleted with the segment).
  bool final_size = segment.sealed;
  std::uint64_t size = 0;
  auto take_size = [&] {
    struct stat st {};
    if (::fstat(segment.fd.get(), &st) != 0) return false;
    size = static_cast<std::uint64_t>(st.st_size);
    return true;
  };
  if (!take_size()) return;
  Check check = options_.verify_body_on_read ? Check::kBody : Check::kStructure;
  while (true) {
    if (segment.read_to >= size) {
      if (final_size) break;
      if (!try_seal(segment)) return;  // still written: the rest is read next time
      final_size = true;
      if (!take_size()) return;
      continue;
    }
    std::string error;
    auto info = read_queue_record(segment.fd.get(), segment.read_to, size, check, &error);
    if (!info) {
      if (!final_size) {
        if (try_seal(segment)) {  // its writer let go meanwhile: read it again, to its end
          final_size = true;
          if (!take_size()) return;
          continue;
        }
        // Held by its writer: a record still being written waits. One that is complete
        // (header crc and trailer match) and only fails its body crc is set aside now, or it
        // would hold up every record behind it until the writer lets go of the segment.
        std::optional<QueueFileInfo> complete;
        if (check == Check::kBody) {
          complete = read_queue_record(segment.fd.get(), segment.read_to, size, Check::kStructure,
                                       nullptr);
        }
        if (!complete) return;
        set_aside(segment, complete->record_end, true, error);
        continue;
      }
      // A corrupt record or the torn end of a dead writer's segment: set aside up to the next
      // valid record, if any, and go on from there.
      std::uint64_t next = next_valid_record(segment, size, check);
      set_aside(segment, next, next < size, error);
      if (next < size) continue;
      break;
    }
    std::uint64_t offset = segment.read_to;
    segment.read_to = info->record_end;
    auto [it, added] = index_.try_emplace(info->envelope.id);
    Entry& entry = it->second;
    if (entry.segment) {
      // Another message with the same id (ids make this all but impossible): the index and the
      // state log know one message per id, so this one cannot be delivered from here, but its
      // data is never deleted with its segment: it is copied to corrupt/ for the administrator.
      std::string name = segment.name + "." + std::to_string(offset) + ".duplicate";
      logger().error("queue: duplicate queue id " + it->first + " in " + dir_ + "/seg/" +
                     segment.name + " at offset " + std::to_string(offset) + ": copied to " + dir_ +
                     "/corrupt/" + name + ", not delivered");
      copy_aside(segment, offset, info->record_end, name);
      continue;
    }
    entry.segment = &segment;
    entry.offset = offset;
    segment.ids.push_back(&it->first);
    if (!entry.removed) {
      ++segment.live;
      if (collect) collect->push_back(stored_from(std::move(*info), segment, entry));
    }
  }
  // Sealed and all read (a spooled message's segment, a full one): it is complete; its fd is
  // closed so that a queue of big messages does not hold one fd each.
  segment.fd.reset();
}

// The offset of the first valid record after the bad one at segment.read_to (its magic line,
// then a header whose crc matches and a complete trailer), or size if there is none. A body
// cannot fake one: bodies are in wire form, where every line ends in CRLF, and a record's
// header lines end in a bare LF. Reads the rest of the segment (at most
// segment_size) once, then each candidate's header and trailer.
std::uint64_t SegmentBackend::next_valid_record(Segment& segment, std::uint64_t size, Check check) {
  std::string rest;
  std::uint64_t from = segment.read_to + 1;
  if (from >= size || !base::read_exact(segment.fd.get(), from, size - from, rest)) return size;
  for (auto at = rest.find(kMagicLine); at != std::string::npos;
       at = rest.find(kMagicLine, at + 1)) {
    std::uint64_t candidate = from + at;
    std::string error;
    if (read_queue_record(segment.fd.get(), candidate, size, check, &error)) return candidate;
  }
  return size;
}

// Copies bytes [from, to) of a segment to corrupt/<name>; false (logged) if it cannot.
bool SegmentBackend::copy_aside(Segment& segment, std::uint64_t from, std::uint64_t to,
                                const std::string& name) {
  std::string bytes;
  base::UniqueFd out(::openat(corrupt_.get(), name.c_str(),
                              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!out || !base::read_exact(segment.fd.get(), from, to - from, bytes) ||
      !base::write_all(out.get(), bytes) || ::fdatasync(out.get()) != 0) {
    logger().error("queue: cannot copy to " + dir_ + "/corrupt/" + name + ": " +
                   errno_string(errno));
    return false;
  }
  return true;
}

// Copies the bad bytes of a sealed segment, from segment.read_to to end (the next valid record
// or the end of the segment), to corrupt/ and goes on reading at end.
void SegmentBackend::set_aside(Segment& segment, std::uint64_t end, bool resync,
                               const std::string& reason) {
  std::string name = segment.name + "." + std::to_string(segment.read_to);
  std::string what = resync ? "corrupt record in segment " : "corrupt or torn end of segment ";
  std::string resumed = resync ? ", reading on at offset " + std::to_string(end) : "";
  logger().warning("queue: " + what + dir_ + "/seg/" + segment.name + " at offset " +
                   std::to_string(segment.read_to) + " (" + std::to_string(end - segment.read_to) +
                   " bytes" + resumed + ") reason=\"" + reason + "\" copied to " + dir_ +
                   "/corrupt/" + name);
  copy_aside(segment, segment.read_to, end, name);
  segment.read_to = end;
}

void SegmentBackend::delete_if_finished(Segment& segment) {
  if (segment.live > 0) {
    finished_.erase(segment.name);
    return;
  }
  if (!try_seal(segment)) {  // its writer may still append: later (catch_up)
    finished_.insert(segment.name);
    return;
  }
  read_records(segment, nullptr);  // what it appended before letting go
  if (segment.live > 0) {
    finished_.erase(segment.name);
    return;
  }
  if (::unlinkat(seg_.get(), segment.name.c_str(), 0) != 0 && errno != ENOENT) {
    logger().error("queue: cannot delete segment " + segment.name + ": " + errno_string(errno));
    return;
  }
  for (const QueueId* id : segment.ids) index_.erase(index_.find(*id));
  finished_.erase(segment.name);
  unsealed_.erase(segment.name);
  segments_.erase(segment.name);
}

bool SegmentBackend::open_state() {
  if (state_fd_) return true;
  state_fd_.reset(::openat(root_.get(), kStateName,
                           O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!state_fd_) {
    logger().error("queue: cannot open " + dir_ + "/state: " + errno_string(errno));
    return false;
  }
  struct stat st {};
  state_size_ = ::fstat(state_fd_.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  return true;
}

void SegmentBackend::read_state() {
  if (!open_state()) return;
  struct stat st {
  }, named{};
  if (::fstat(state_fd_.get(), &st) != 0) return;
  if (::fstatat(root_.get(), kStateName, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
      (named.st_ino != st.st_ino || named.st_dev != st.st_dev)) {
    // Rewritten by another process's compact(): what it kept is a subset of what we know, and
    // applying lines again changes nothing, so read the new file from its start.
    state_fd_.reset();
    state_read_to_ = 0;
    if (!open_state() || ::fstat(state_fd_.get(), &st) != 0) return;
  }
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size <= state_read_to_) return;
  std::string text;
  if (!base::read_exact(state_fd_.get(), state_read_to_, size - state_read_to_, text)) return;
  std::string_view rest = text;
  // Only complete lines count: a torn last line is read again once it is complete.
  for (auto eol = rest.find('\n'); eol != std::string_view::npos; eol = rest.find('\n')) {
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 1);
    state_read_to_ += eol + 1;
    if (line.size() < 3 || std::string_view("XDHRW").find(line[0]) == std::string_view::npos ||
        line[1] != ' ') {
      logger().warning("queue: bad line in " + dir_ + "/state ignored");
      continue;
    }
    std::string_view fields = line.substr(2);
    auto space = fields.find(' ');
    std::string id(fields.substr(0, space));
    if (!valid_queue_id(id)) continue;
    Entry& entry = index_[id];
    if (line[0] == 'X') {
      if (!entry.removed && entry.segment && --entry.segment->live == 0) {
        finished_.insert(entry.segment->name);  // deleted at the end of catch_up()
      }
      entry.removed = true;
      continue;
    }
    if (line[0] == 'H' || line[0] == 'R') {
      entry.held = line[0] == 'H';
      entry.released = line[0] == 'R';
      continue;
    }
    if (line[0] == 'W') {
      entry.warned = true;
      continue;
    }
    while (space != std::string_view::npos) {
      fields.remove_prefix(space + 1);
      space = fields.find(' ');
      std::string_view number = fields.substr(0, space);
      std::uint32_t index = 0;
      auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), index);
      if (ec == std::errc() && end == number.data() + number.size() &&
          std::find(entry.done.begin(), entry.done.end(), index) == entry.done.end()) {
        entry.done.push_back(index);
      }
    }
  }
  state_size_ = std::max(state_size_, size);
}

bool SegmentBackend::append_state(const std::string& line, bool sync) {
  if (!open_state()) return false;
  if (!base::write_all(state_fd_.get(), line) || (sync && ::fdatasync(state_fd_.get()) != 0)) {
    logger().error("queue: cannot write " + dir_ + "/state: " + errno_string(errno));
    return false;
  }
  state_size_ += line.size();
  if (state_read_to_ + line.size() == state_size_) state_read_to_ = state_size_;  // ours: known
  return true;
}

void SegmentBackend::maybe_compact() {
  if (state_size_ >= options_.state_compact_bytes && state_size_ >= 4 * state_compacted_size_) {
    compact();
  }
}

// Rewrites the state log with the lines still needed: those of messages in existing segments.
bool SegmentBackend::compact() {
  read_state();
  std::string text;
  for (const auto& [id, entry] : index_) {
    if (!entry.segment && !entry.removed && entry.done.empty() && !entry.held && !entry.released &&
        !entry.warned)
      continue;
    if (entry.removed) {
      text += "X " + id + "\n";
      continue;
    }
    if (!entry.done.empty()) {
      text += "D " + id;
      for (auto i : entry.done) text += " " + std::to_string(i);
      text += '\n';
    }
    if (entry.held) text += "H " + id + "\n";
    if (entry.released) text += "R " + id + "\n";  // else a quarantined record is held again
    if (entry.warned) text += "W " + id + "\n";
  }
  // Segment deletions first: lines dropped here must not come back with their segment.
  bool ok = ::fsync(seg_.get()) == 0;
  base::UniqueFd out;
  if (ok) {
    out.reset(::openat(root_.get(), kStateNewName,
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  }
  ok = ok && out && base::write_all(out.get(), text) && ::fdatasync(out.get()) == 0 &&
       ::renameat(root_.get(), kStateNewName, root_.get(), kStateName) == 0 &&
       ::fsync(root_.get()) == 0;
  if (!ok) {
    logger().error("queue: cannot rewrite " + dir_ + "/state: " + errno_string(errno));
    ::unlinkat(root_.get(), kStateNewName, 0);
    return false;
  }
  state_fd_.reset();
  if (!open_state()) return false;
  state_read_to_ = state_size_;
  state_compacted_size_ = state_size_;
  return true;
}

std::optional<StoredMessage> SegmentBackend::read_stored(const QueueId& id, const Entry& entry) {
  Segment& segment = *entry.segment;
  std::string error;
  base::UniqueFd opened;
  int fd = segment.fd.get();
  if (fd < 0) {
    opened.reset(::openat(seg_.get(), segment.name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!opened) {
      logger().error("queue: open " + dir_ + "/seg/" + segment.name + ": " + errno_string(errno));
      return std::nullopt;
    }
    fd = opened.get();
  }
  auto info =
      read_queue_record(fd, entry.offset, segment.read_to,
                        options_.verify_body_on_read ? Check::kBody : Check::kStructure, &error);
  if (!info || info->envelope.id != id) {
    logger().error("queue: cannot read id=" + id + " in " + dir_ + "/seg/" + segment.name + ": " +
                   (info ? "id does not match" : error));
    return std::nullopt;
  }
  return stored_from(std::move(*info), segment, entry);
}

}  // namespace

std::unique_ptr<Backend> open_segment_backend(const std::string& queue_dir,
                                              const SegmentBackendOptions& options) {
  return std::make_unique<SegmentBackend>(queue_dir, options);
}

}  // namespace estafette::queue
