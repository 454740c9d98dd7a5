#include "esmtpd/session_table.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace estafette::esmtpd {

namespace {

// The file: a header (magic, the hash key) in a page of its own, then the rows. A row: its
// total and whether it holds AUTH failures (in a cache line of their own), then the address and
// the network buckets, then the failed-AUTH windows (start, count).
constexpr std::size_t kFileHeader = 4096;
constexpr char kMagic[8] = {'E', 'S', 'T', 'S', 'E', 'S', 'S', '3'};
struct FileHeader {
  char magic[8];
  base::SipKey key;
};
constexpr std::size_t kHeader = 16;  // in uint32 slots: 64 bytes
constexpr std::size_t kAuthBase = kHeader + 2 * SessionTable::kBuckets;
constexpr std::size_t kRowSlots = kAuthBase + 2 * SessionTable::kAuthBuckets;
constexpr std::size_t kRowBytes = kRowSlots * sizeof(std::uint32_t);
constexpr std::size_t kAuthUsed = 1;  // header slot: this row has recorded an AUTH failure
// The lock held while a process claims its row and, when alone, draws the key (a byte past the
// rows' lock bytes).
constexpr off_t kSetupLock = SessionTable::kRows;

// The bucket of `len` bytes of address, in one of the two kinds ('a' address, 'n' network).
std::size_t bucket(const base::SipKey& key, char kind, const std::uint8_t* addr, std::size_t len,
                   std::size_t buckets = SessionTable::kBuckets) {
  std::uint8_t buf[18];
  buf[0] = static_cast<std::uint8_t>(kind);
  buf[1] = static_cast<std::uint8_t>(len);
  std::memcpy(buf + 2, addr, len);
  return base::siphash24(key, buf, len + 2) % buckets;
}

// Keeps the first `bits` bits of `len` bytes, zeroes the rest.
void keep_prefix(std::uint8_t* addr, std::size_t len, int bits) {
  for (std::size_t i = 0; i < len; ++i) {
    int keep = std::clamp(bits - static_cast<int>(8 * i), 0, 8);
    addr[i] &= static_cast<std::uint8_t>(0xff00 >> keep);
  }
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

bool SessionTable::buckets_of(std::string_view ip, Buckets& out) const {
  std::array<std::uint8_t, 16> addr{};
  std::string text(ip);
  std::size_t len = 0, net = 0;
  int address_bits = 32;
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
      address_bits = ipv6_prefix_length_;
    }
  } else {
    return false;
  }
  out.network = kHeader + kBuckets + bucket(key_, 'n', addr.data(), net);
  keep_prefix(addr.data(), len, address_bits);
  out.address = kHeader + bucket(key_, 'a', addr.data(), len);
  out.auth = kAuthBase + 2 * bucket(key_, 'f', addr.data(), len, kAuthBuckets);
  return true;
}

SessionTable::SessionTable(const std::string& path, int ipv6_prefix_length,
                           const base::SipKey* fixed_key)
    : ipv6_prefix_length_(std::clamp(ipv6_prefix_length, 0, 128)) {
  fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_) throw std::runtime_error(path + ": " + base::errno_text(errno));
  size_ = kFileHeader + kRows * kRowBytes;
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0 || (static_cast<std::size_t>(st.st_size) < size_ &&
                                       ::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0))
    throw std::runtime_error(path + ": " + base::errno_text(errno));
  map_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw std::runtime_error(path + ": mmap: " + base::errno_text(errno));
  }
  struct flock setup {};
  setup.l_type = F_WRLCK;
  setup.l_whence = SEEK_SET;
  setup.l_start = kSetupLock;
  setup.l_len = 1;
  while (::fcntl(fd_.get(), F_OFD_SETLKW, &setup) != 0)
    if (errno != EINTR) throw std::runtime_error(path + ": lock: " + base::errno_text(errno));
  row_ = kRows;
  bool alone = true;
  for (std::size_t r = 0; r < kRows; ++r) {
    if (row_ == kRows && lock_row(fd_.get(), r, F_WRLCK))
      row_ = r;
    else if (r != row_ && !lock_row(fd_.get(), r, F_WRLCK, true))
      alone = false;
  }
  auto* header = static_cast<FileHeader*>(map_);
  if (row_ < kRows && (alone || std::memcmp(header->magic, kMagic, sizeof kMagic) != 0)) {
    // Nobody else counts: a fresh key, so that what was learnt about the last one is worthless.
    try {
      header->key = fixed_key ? *fixed_key : base::random_sip_key();
    } catch (const std::system_error& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
    std::memcpy(header->magic, kMagic, sizeof kMagic);
    std::memset(static_cast<char*>(map_) + kFileHeader, 0, kRows * kRowBytes);
  }
  key_ = header->key;
  setup.l_type = F_UNLCK;
  ::fcntl(fd_.get(), F_OFD_SETLK, &setup);
  if (row_ == kRows) throw std::runtime_error(path + ": every row is held by a live process");
  std::memset(static_cast<void*>(row_ptr(row_)), 0, kRowBytes);
  sweep();
}

SessionTable::~SessionTable() {
  if (map_) ::munmap(map_, size_);
}

std::atomic<std::uint32_t>* SessionTable::row_ptr(std::size_t row) const {
  return reinterpret_cast<std::atomic<std::uint32_t>*>(static_cast<char*>(map_) + kFileHeader +
                                                       row * kRowBytes);
}

void SessionTable::sweep() {
  for (std::size_t r = 0; r < kRows; ++r) {
    if (r == row_) continue;
    // Take the row's lock for a moment: held by nobody means its counts are stale.
    if (!lock_row(fd_.get(), r, F_WRLCK)) continue;
    auto* p = row_ptr(r);
    if (p[0].load(std::memory_order_relaxed) != 0 ||
        p[kAuthUsed].load(std::memory_order_relaxed) != 0) {
      for (std::size_t i = 1; i < kRowSlots; ++i)
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

void SessionTable::add_auth_failure(std::string_view ip, std::uint32_t now, std::uint32_t window) {
  Buckets b;
  if (!buckets_of(ip, b)) return;
  auto* p = row_ptr(row_);  // only this process writes its row: no compare-and-swap needed
  p[kAuthUsed].store(1, std::memory_order_relaxed);
  std::uint32_t start = p[b.auth].load(std::memory_order_relaxed);
  if (start == 0 || now - start >= window || now < start) {
    p[b.auth + 1].store(0, std::memory_order_relaxed);
    p[b.auth].store(now, std::memory_order_relaxed);
  }
  p[b.auth + 1].fetch_add(1, std::memory_order_relaxed);
}

std::uint32_t SessionTable::auth_failures(std::string_view ip, std::uint32_t now,
                                          std::uint32_t window) const {
  Buckets b;
  if (!buckets_of(ip, b)) return 0;
  std::uint32_t total = 0;
  for (std::size_t r = 0; r < kRows; ++r) {
    const auto* p = row_ptr(r);
    if (p[kAuthUsed].load(std::memory_order_relaxed) == 0) continue;
    std::uint32_t start = p[b.auth].load(std::memory_order_relaxed);
    if (start == 0 || now < start || now - start >= window) continue;
    total += p[b.auth + 1].load(std::memory_order_relaxed);
  }
  return total;
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
