// message_memory.h: one esmtpd process's budget for the messages it holds in memory (a
// filtered message is kept whole from DATA until the filters' verdict, filters/message_pass.h;
// an unfiltered one streams to the queue, whose own record budget spills to queue/tmp).
// `message_memory_budget` bytes for all sessions of the process together: a session admits a
// message at DATA only while the budget has room for its declared SIZE (at least kMinAdmit), and
// charges its buffer as it grows; a buffer that would go over it is refused (452 4.3.1).
// Loop thread only (the Server owns it, every Connection holds a Reservation). No I/O.
#pragma once

#include <cstddef>
#include <utility>

namespace estafette::esmtpd {

class MessageMemory final {
 public:
  // What DATA must find free even when the client declared no SIZE (or a smaller one).
  static constexpr std::size_t kMinAdmit = 64 * 1024;

  explicit MessageMemory(std::size_t limit) : limit_(limit) {}  // 0: no limit
  MessageMemory(const MessageMemory&) = delete;
  MessageMemory& operator=(const MessageMemory&) = delete;

  // Whether a new message of about `declared` bytes (0: unknown) fits now.
  bool admits(std::size_t declared) const {
    std::size_t need = declared > kMinAdmit ? declared : kMinAdmit;
    return limit_ == 0 || (used_ <= limit_ && need <= limit_ - used_);
  }
  std::size_t used() const { return used_; }
  std::size_t limit() const { return limit_; }

  // One message's charge; released when destroyed (or release()).
  class Reservation final {
   public:
    explicit Reservation(MessageMemory& memory) : memory_(&memory) {}
    ~Reservation() { release(); }
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;

    // Charges `bytes` in all for this message; false (charge unchanged) when that would go over
    // the budget.
    bool grow_to(std::size_t bytes) {
      if (bytes <= bytes_) return true;
      std::size_t more = bytes - bytes_;
      if (memory_->limit_ != 0 && more > memory_->limit_ - memory_->used_) return false;
      memory_->used_ += more;
      bytes_ = bytes;
      return true;
    }
    void release() { memory_->used_ -= std::exchange(bytes_, 0); }
    std::size_t bytes() const { return bytes_; }

   private:
    MessageMemory* memory_;
    std::size_t bytes_ = 0;
  };

 private:
  std::size_t limit_;
  std::size_t used_ = 0;
};

}  // namespace estafette::esmtpd
