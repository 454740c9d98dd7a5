#include "lib/queue/queue_id.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>

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

// This process's key: drawn once per process, and again in a fork()ed child (whose pid may be
// one an earlier process that had the same key used).
std::uint64_t process_key(pid_t pid) {
  static std::mutex mutex;
  static pid_t key_pid = 0;
  static std::uint64_t key = 0;
  std::lock_guard lock(mutex);
  if (key_pid != pid) {
    key = random_key();
    key_pid = pid;
  }
  return key;
}

}  // namespace

QueueId make_queue_id() {
  static std::atomic<std::uint64_t> counter{0};
  constexpr std::uint64_t kEight = 36ull * 36 * 36 * 36 * 36 * 36 * 36 * 36;  // 2.8e12
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  auto ms = static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
            static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
  pid_t pid = ::getpid();
  QueueId id;
  id.reserve(40);
  append_base36(id, ms, 9);
  id.push_back('-');
  append_base36(id, static_cast<std::uint64_t>(pid), 5);
  append_base36(id, process_key(pid), 13);
  id.push_back('-');
  append_base36(id, counter.fetch_add(1, std::memory_order_relaxed) % kEight, 8);
  return id;
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
