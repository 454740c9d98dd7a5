// record_builder.h: builds one queue record (format: queue_file.h) from an envelope and the body
// in chunks. It stays in memory while it is small and spills to a file (opened on demand by the
// owner) when it outgrows memory_limit, writing through a 64 KiB buffer from then on.
// Threads: one thread at a time (append() on the session's loop thread, finish() on the
// committer thread, handed over under the committer's lock). Errors: the constructor throws
// std::system_error(EINVAL) for an envelope that cannot be stored; append()/finish() return false
// after a write error (logged; error() is the errno) and stay failed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "lib/queue/backend.h"
#include "lib/queue/queue_file.h"

namespace estafette::queue {

class RecordBuilder final {
 public:
  // Returns the fd to spill to (owned by the caller, positioned at 0), or -1 with errno set.
  using OpenSpill = std::function<int()>;

  RecordBuilder(const Envelope& envelope, std::size_t memory_limit, OpenSpill open_spill);

  bool append(std::string_view bytes);
  // Completes the record (body size, trailer). In memory, memory_record() is then all of it;
  // spilled, all of it has been written to the spill fd (not synced).
  bool finish();

  // Spills now, however small the record is (the caller's memory budget is used up).
  bool spill_now() { return spilled() || (error_ == 0 && spill() && flush()); }

  bool spilled() const { return spill_fd_ >= 0; }
  std::string_view memory_record() const { return buffer_; }
  std::uint64_t body_size() const { return body_size_; }
  int error() const { return error_; }

 private:
  bool spill();
  bool flush();
  bool write_out(std::string_view bytes);
  bool failed(int err, const char* what);

  std::string id_;  // for log lines
  EncodedHeader header_;
  std::size_t memory_limit_;
  OpenSpill open_spill_;
  int spill_fd_ = -1;
  std::string buffer_;  // in memory: the record so far; spilled: bytes not yet written
  bool header_in_buffer_ = true;
  std::uint64_t body_size_ = 0;
  std::uint32_t body_crc_ = 0;
  int error_ = 0;
};

}  // namespace estafette::queue
