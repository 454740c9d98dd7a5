#include "esmtpd/session_table.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <stdexcept>

namespace estafette::esmtpd {

namespace {

// A row: its total (in a cache line of its own), then the address and the network buckets.
constexpr std::size_t kHeader = 16;  // in uint32 slots: 64 bytes
constexpr std::size_t kRowBytes = (kHeader + 2 * SessionTable::kBuckets) * sizeof(std::uint32_t);

std::uint64_t fnv1a(const std::uint8_t* p, std::size_t n, std::uint64_t salt) {
  std::uint64_t h = 1469598103934665603ULL ^ salt;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

// An OFD lock on byte `row` (no data lives there; the lock is the claim).
bool lock_row(int fd, std::size_t row, short type, bool test_only = false) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(row);
  fl.l_len = 1;
  if (test_only) {
    if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;
    return fl.l_type == F_UNLCK;
  }
  return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

}  // namespace

bool SessionTable::buckets_of(std::string_view ip, Buckets& out) {
  std::array<std::uint8_t, 16> addr{};
  std::string text(ip);
  std::size_t len = 0, net = 0;
  if (::inet_pton(AF_INET, text.c_str(), addr.data()) == 1) {
    len = 4;
    net = 3;
  } else if (::inet_pton(AF_INET6, text.c_str(), addr.data()) == 1) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(addr.data(), kMapped, 12) == 0) {  // ::ffff:a.b.c.d counts as IPv4
      std::memmove(addr.data(), addr.data() + 12, 4);
      len = 4;
      net = 3;
    } else {
      len = 16;
      net = 8;
    }
  } else {
    return false;
  }
  out.address = kHeader + fnv1a(addr.data(), len, len) % kBuckets;
  out.network = kHeader + kBuckets + fnv1a(addr.data(), net, net) % kBuckets;
  return true;
}

SessionTable::SessionTable(const std::string& path) {
  fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_) throw std::runtime_error(path + ": " + base::errno_text(errno));
  size_ = kRows * kRowBytes;
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0 || (static_cast<std::size_t>(st.st_size) < size_ &&
                                       ::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0))
    throw std::runtime_error(path + ": " + base::errno_text(errno));
  map_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw std::runtime_error(path + ": mmap: " + base::errno_text(errno));
  }
  row_ = kRows;
  for (std::size_t r = 0; r < kRows; ++r) {
    if (lock_row(fd_.get(), r, F_WRLCK)) {
      row_ = r;
      break;
    }
  }
  if (row_ == kRows) throw std::runtime_error(path + ": every row is held by a live process");
  std::memset(static_cast<void*>(row_ptr(row_)), 0, kRowBytes);
  sweep();
}

SessionTable::~SessionTable() {
  if (map_) ::munmap(map_, size_);
}

std::atomic<std::uint32_t>* SessionTable::row_ptr(std::size_t row) const {
  return reinterpret_cast<std::atomic<std::uint32_t>*>(static_cast<char*>(map_) + row * kRowBytes);
}

void SessionTable::sweep() {
  for (std::size_t r = 0; r < kRows; ++r) {
    if (r == row_) continue;
    // Take the row's lock for a moment: held by nobody means its counts are stale.
    if (!lock_row(fd_.get(), r, F_WRLCK)) continue;
    auto* p = row_ptr(r);
    if (p[0].load(std::memory_order_relaxed) != 0) {
      for (std::size_t i = 1; i < kHeader + 2 * kBuckets; ++i)
        if (p[i].load(std::memory_order_relaxed) != 0) p[i].store(0, std::memory_order_relaxed);
      p[0].store(0, std::memory_order_relaxed);
    }
    lock_row(fd_.get(), r, F_UNLCK);
  }
}

SessionTable::Counts SessionTable::counts(std::string_view ip) const {
  Buckets b;
  Counts c;
  if (!buckets_of(ip, b)) return c;
  for (std::size_t r = 0; r < kRows; ++r) {
    const auto* p = row_ptr(r);
    if (p[0].load(std::memory_order_relaxed) == 0) continue;
    c.address += p[b.address].load(std::memory_order_relaxed);
    c.network += p[b.network].load(std::memory_order_relaxed);
  }
  return c;
}

SessionTable::Slot SessionTable::add(std::string_view ip) {
  Slot slot;
  Buckets b;
  if (!buckets_of(ip, b)) return slot;
  auto* p = row_ptr(row_);
  p[b.address].fetch_add(1, std::memory_order_relaxed);
  p[b.network].fetch_add(1, std::memory_order_relaxed);
  p[0].fetch_add(1, std::memory_order_relaxed);  // the row total: readers skip rows at 0
  slot.table_ = this;
  slot.a_ = b.address;
  slot.n_ = b.network;
  return slot;
}

SessionTable::Slot& SessionTable::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    table_ = other.table_;
    a_ = other.a_;
    n_ = other.n_;
    other.table_ = nullptr;
  }
  return *this;
}

void SessionTable::Slot::release() {
  if (!table_) return;
  auto* p = table_->row_ptr(table_->row_);
  p[a_].fetch_sub(1, std::memory_order_relaxed);
  p[n_].fetch_sub(1, std::memory_order_relaxed);
  p[0].fetch_sub(1, std::memory_order_relaxed);
  table_ = nullptr;
}

}  // namespace estafette::esmtpd
