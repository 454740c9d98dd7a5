#include "lib/queue/queue_id.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

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

std::uint32_t random_bits() {
  std::uint32_t value = 0;
  if (::getrandom(&value, sizeof value, GRND_NONBLOCK) == sizeof value) return value;
  // No entropy yet (early boot): the time, pid and counter still make the id unique.
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint32_t>(ts.tv_nsec);
}

}  // namespace

QueueId make_queue_id() {
  static std::atomic<std::uint32_t> counter{0};
  constexpr std::uint32_t kFour = 36 * 36 * 36 * 36;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  auto ms = static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
            static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
  QueueId id;
  id.reserve(28);
  append_base36(id, ms, 9);
  id.push_back('-');
  append_base36(id, static_cast<std::uint64_t>(::getpid()), 5);
  id.push_back('-');
  append_base36(id, counter.fetch_add(1, std::memory_order_relaxed) % kFour, 4);
  append_base36(id, random_bits() % kFour, 4);
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
