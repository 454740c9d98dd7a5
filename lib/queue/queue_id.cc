#include "lib/queue/queue_id.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <limits>
#include <mutex>
#include <system_error>

#include "lib/base/fd.h"

namespace estafette::queue {

namespace {

constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

// Appends value in base 36, zero-padded to at least width digits.
void append_base36(std::string& out, std::uint64_t value, std::size_t width) {
  char digits[16];
  std::size_t n = 0;
  do {
    digits[n++] = kDigits[value % 36];
    value /= 36;
  } while (value != 0);
  for (; n < width; --width) out.push_back('0');
  while (n > 0) out.push_back(digits[--n]);
}

// 64 random bits; without entropy yet (early boot), the clocks and the pid, which with the
// id's own time, pid and counter still keep it unique within this boot.
std::uint64_t random_key() {
  std::uint64_t value = 0;
  if (::getrandom(&value, sizeof value, GRND_NONBLOCK) == sizeof value) return value;
  timespec mono{}, real{};
  ::clock_gettime(CLOCK_MONOTONIC, &mono);
  ::clock_gettime(CLOCK_REALTIME, &real);
  return static_cast<std::uint64_t>(mono.tv_nsec) << 32 ^
         static_cast<std::uint64_t>(mono.tv_sec) * 1000003u ^
         static_cast<std::uint64_t>(real.tv_nsec) ^ static_cast<std::uint64_t>(::getpid()) << 40;
}

std::uint64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// The last instance number the file records: 0 for an empty (new) file; the current time in ms
// for content that is not a number, so that the claims that follow stay above every number the
// file may have handed out before it was damaged.
std::uint64_t parse_instance(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.empty()) return 0;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return now_ms();
  return value;
}

std::uint64_t claim_instance(const std::string& queue_dir) {
  constexpr const char* kName = "instance";
  const std::string path = queue_dir + "/" + kName;
  base::UniqueFd dir(::open(queue_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) fail("cannot open " + queue_dir);
  bool created = false;
  base::UniqueFd fd(::openat(dir.get(), kName, O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (!fd && errno == ENOENT) {
    fd.reset(::openat(dir.get(), kName, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    created = static_cast<bool>(fd);
    if (!fd && errno == EEXIST)  // another process created it first
      fd.reset(::openat(dir.get(), kName, O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  }
  if (!fd) fail("cannot open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail("cannot stat " + path);
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    fail(path + " is not a regular file");
  }
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) fail("cannot lock " + path);
  char buf[32];
  ssize_t n = ::pread(fd.get(), buf, sizeof buf, 0);
  if (n < 0) fail("cannot read " + path);
  std::uint64_t last =
      n == sizeof buf ? now_ms() : parse_instance({buf, static_cast<std::size_t>(n)});
  if (last == std::numeric_limits<std::uint64_t>::max()) {
    errno = EOVERFLOW;
    fail(path + " has no instance number left");
  }
  const std::uint64_t next = last + 1;
  std::string text = std::to_string(next) + "\n";
  if (::pwrite(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
      ::ftruncate(fd.get(), static_cast<off_t>(text.size())) != 0 || ::fdatasync(fd.get()) != 0)
    fail("cannot write " + path);
  // A new file (made here, or by a process that died before it wrote) must survive a crash
  // with its name, or the numbers would start again from 1.
  if ((created || n == 0) && ::fsync(dir.get()) != 0) fail("cannot sync " + queue_dir);
  return next;  // the lock goes with the fd
}

// What this process's ids are made of. A fork()ed child (another pid) claims again, or, with no
// queue claimed, draws a key of its own (its pid may be one an earlier process with the same
// key used).
class IdSource final {
 public:
  struct Parts {
    std::uint64_t instance;  // 0: none, use pid and key
    std::uint64_t key;
  };

  Parts parts(pid_t pid) {
    std::lock_guard lock(mutex_);
    if (pid_ != pid) {
      pid_ = pid;
      key_ = random_key();
      instance_ = 0;
      if (!queue_dir_.empty()) {
        try {
          instance_ = claim_instance(queue_dir_);
        } catch (const std::system_error&) {
          // Falls back to the pid and key; the parent logged how its claim went.
        }
      }
    }
    return {instance_, key_};
  }

  void claim(const std::string& queue_dir) {
    std::uint64_t instance = claim_instance(queue_dir);
    std::lock_guard lock(mutex_);
    queue_dir_ = queue_dir;
    pid_ = ::getpid();
    key_ = random_key();
    instance_ = instance;
  }

  std::uint64_t instance() {
    std::lock_guard lock(mutex_);
    return pid_ == ::getpid() ? instance_ : 0;
  }

 private:
  std::mutex mutex_;
  std::string queue_dir_;
  pid_t pid_ = 0;
  std::uint64_t key_ = 0;
  std::uint64_t instance_ = 0;
};

IdSource& id_source() {
  static IdSource source;
  return source;
}

}  // namespace

QueueId make_queue_id() {
  static std::atomic<std::uint64_t> counter{0};
  pid_t pid = ::getpid();
  auto parts = id_source().parts(pid);
  QueueId id;
  id.reserve(40);
  append_base36(id, now_ms(), 9);
  id.push_back('-');
  if (parts.instance != 0) {
    id.push_back('i');  // lower case: never equal to a pid+key part
    append_base36(id, parts.instance, 7);
  } else {
    append_base36(id, static_cast<std::uint64_t>(pid), 5);
    append_base36(id, parts.key, 13);
  }
  id.push_back('-');
  append_base36(id, counter.fetch_add(1, std::memory_order_relaxed), 8);
  return id;
}

void claim_queue_id_instance(const std::string& queue_dir) {
  id_source().claim(queue_dir);
}

std::uint64_t queue_id_instance() {
  return id_source().instance();
}

bool valid_queue_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxQueueIdLength) return false;
  for (char c : id) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace estafette::queue
