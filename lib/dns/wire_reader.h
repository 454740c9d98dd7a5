// wire_reader.h: a bounds-checked reader over a wire-format DNS message (RFC 1035 4.1), for the
// pure parsers of lib/dns (answer_ttl.h, tlsa.h). Pure: no I/O, no allocation, any thread.
// Ownership: it views the caller's bytes, which must outlive it. Errors: the first read past
// the end (or past limit()), a forward or out-of-range compression pointer or an over-long name
// makes ok() false for good; every later read returns 0 and moves nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace estafette::dns {

inline constexpr std::size_t kDnsHeaderSize = 12;
inline constexpr std::uint16_t kDnsFlagAd = 0x0020;  // "authentic data" (RFC 4035 3.2.3)

class WireReader final {
 public:
  explicit WireReader(std::string_view message) : msg_(message), end_(message.size()) {}

  std::size_t pos() const { return pos_; }
  bool ok() const { return ok_; }

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<std::uint8_t>(byte(pos_++));
  }
  std::uint16_t u16() {
    if (!need(2)) return 0;
    auto v = static_cast<std::uint16_t>(byte(pos_) << 8 | byte(pos_ + 1));
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t hi = u16();
    return hi << 16 | u16();
  }
  void skip(std::size_t n) {
    if (need(n)) pos_ += n;
  }
  // The next n bytes (empty and !ok() when they are not there).
  std::string_view bytes(std::size_t n) {
    if (!need(n)) return {};
    std::string_view out = msg_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  // Skips a domain name: labels up to a zero byte, or up to a compression pointer, which must
  // point backwards (to an earlier name) and inside the message. At most 255 bytes of labels.
  void skip_name() {
    std::size_t length = 0;
    while (ok_) {
      if (!need(1)) return;
      unsigned len = byte(pos_);
      if (len == 0) {
        ++pos_;
        return;
      }
      if ((len & 0xC0) == 0xC0) {
        std::size_t at = pos_;
        std::size_t target = u16() & 0x3FFF;
        if (ok_ && target >= at) ok_ = false;
        return;
      }
      if ((len & 0xC0) != 0) {  // 0x40 / 0x80: obsolete or reserved label types
        ok_ = false;
        return;
      }
      length += len + 1;
      if (length > 255) {
        ok_ = false;
        return;
      }
      skip(len + 1);
    }
  }

  // Restricts reading to [pos, pos + n) (an RR's RDATA); returns the old end.
  std::size_t limit(std::size_t n) {
    std::size_t old = end_;
    if (need(n)) end_ = pos_ + n;
    return old;
  }
  void unlimit(std::size_t old_end) { end_ = old_end; }

 private:
  bool need(std::size_t n) {
    if (!ok_ || n > end_ - pos_) ok_ = false;
    return ok_;
  }
  unsigned byte(std::size_t i) const { return static_cast<unsigned char>(msg_[i]); }

  std::string_view msg_;
  std::size_t end_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// Whether a response's header carries the AD bit: a validating resolver vouches for every
// record in it (RFC 4035 3.2.3; trust it only from a resolver on a trusted path, RFC 6698 A.3).
inline bool authentic_data(std::string_view message) {
  return message.size() >= kDnsHeaderSize &&
         (static_cast<unsigned char>(message[3]) & kDnsFlagAd) != 0;
}

}  // namespace estafette::dns
