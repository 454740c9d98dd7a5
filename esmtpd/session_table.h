// session_table.h: sessions per client address and per network (IPv4 /24, IPv6 /64), counted
// across every esmtpd process, for MAXPERIP and MAXPERC. With SO_REUSEPORT one client's
// connections land in any of the processes, so a per-process count would not mean the limit.
// The table is a file in run/ mapped MAP_SHARED: one row per process, each with hashed
// counters; a process writes only its own row and readers add up all rows. A row is claimed
// with an OFD lock, which the kernel drops when its process dies; rows nobody holds are zeroed
// at start-up and by sweep(), so a crashed process's sessions stop counting once its row is
// swept (the owner re-zeroes a row when it claims it). Hash collisions can only over-count.
// Buckets are chosen by SipHash-2-4 with a random key kept in the file's header: a client cannot
// compute which of its addresses share a victim's bucket. The first process to claim a row when
// no other row is held (a fresh start of esmtpd) draws a new key and zeroes every row, under a
// lock of its own so that processes starting together agree on one key.
// An IPv6 client is counted per network of `ipv6_prefix_length` bits (default /64: one customer
// gets a /64, so counting per /128 would not limit it at all); IPv4 per address.
// Failed AUTHs (auth_fail_limit) are counted the same way: each process records its own in its
// row (per bucket: the start of the current window and the failures in it), readers add up the
// rows whose window is still open. A swept row's failures stop counting.
// Loop thread of one process; other processes share the file.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/fd.h"
#include "lib/base/siphash.h"

namespace estafette::esmtpd {

class SessionTable final {
 public:
  static constexpr std::size_t kRows = 64;           // esmtpd processes at most (kMaxProcesses: 256
                                                     // would do the same with a bigger file)
  static constexpr std::size_t kBuckets = 4096;      // per kind (address, network) and row
  static constexpr std::size_t kAuthBuckets = 1024;  // failed-AUTH windows per row

  // Opens or creates the file and claims a free row; throws std::runtime_error. `fixed_key`
  // (tests only): the key to use instead of a random one when this table draws the key.
  explicit SessionTable(const std::string& path, int ipv6_prefix_length = 64,
                        const base::SipKey* fixed_key = nullptr);
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  struct Counts {
    std::uint32_t address = 0;
    std::uint32_t network = 0;
  };
  Counts counts(std::string_view ip) const;  // sessions now, all processes; 0 for a bad address

  // One counted session; the count drops when it is destroyed. Must not outlive the table.
  class Slot final {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept : table_(other.table_), a_(other.a_), n_(other.n_) {
      other.table_ = nullptr;
    }
    Slot& operator=(Slot&& other) noexcept;
    ~Slot() { release(); }
    void release();

   private:
    friend class SessionTable;
    SessionTable* table_ = nullptr;
    std::size_t a_ = 0, n_ = 0;
  };
  Slot add(std::string_view ip);
  void sweep();  // zero the rows no live process holds

  // One failed AUTH from ip at `now` (seconds): counted in this row's bucket, whose window
  // starts again when the last one began `window` seconds ago or more.
  void add_auth_failure(std::string_view ip, std::uint32_t now, std::uint32_t window);
  // Failed AUTHs from ip in windows that began less than `window` seconds before `now`, all
  // processes; 0 for a bad address.
  std::uint32_t auth_failures(std::string_view ip, std::uint32_t now, std::uint32_t window) const;

  std::size_t row() const { return row_; }

 private:
  struct Buckets {
    std::size_t address;
    std::size_t network;
    std::size_t auth;  // the window start; the count is the next slot
  };
  bool buckets_of(std::string_view ip, Buckets& out) const;
  std::atomic<std::uint32_t>* row_ptr(std::size_t row) const;

  int ipv6_prefix_length_;
  base::SipKey key_{};
  base::UniqueFd fd_;
  void* map_ = nullptr;
  std::size_t size_ = 0;
  std::size_t row_ = 0;
};

}  // namespace estafette::esmtpd
