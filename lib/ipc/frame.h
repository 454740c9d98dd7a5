// frame.h: the wire format of messages between Estafette's processes (pure, no I/O).
// A frame is: u32 length (little endian, of what follows), u8 type, payload. Payload fields are
// encoded with Writer (u8/u32/u64 little endian, strings as u32 length + bytes) and read back
// with Reader, which never reads past the end and reports a short or malformed payload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::ipc {

inline constexpr std::uint32_t kMaxFrame = 16 << 20;

class Writer final {
 public:
  explicit Writer(std::uint8_t type);
  Writer& u8(std::uint8_t v);
  Writer& u32(std::uint32_t v);
  Writer& u64(std::uint64_t v);
  Writer& str(std::string_view v);
  Writer& strings(const std::vector<std::string>& v);
  std::string finish();  // the complete frame

 private:
  std::string out_;
};

class Reader final {
 public:
  explicit Reader(std::string_view payload) : in_(payload) {}
  std::uint8_t u8();
  std::uint32_t u32();
  std::uint64_t u64();
  std::string str();
  std::vector<std::string> strings();
  // True when every read so far was inside the payload and it was consumed completely.
  bool ok_and_done() const { return ok_ && in_.empty(); }
  bool ok() const { return ok_; }

 private:
  bool take(std::size_t n, std::string_view& out);
  std::string_view in_;
  bool ok_ = true;
};

struct Frame {
  std::uint8_t type = 0;
  std::string payload;
};

// Splits a byte stream into frames; survives input split at any byte.
class FrameSplitter final {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // Next complete frame, or nullopt. Sets error() on a length over kMaxFrame or of zero.
  std::optional<Frame> next();
  bool error() const { return error_; }

 private:
  std::string buffer_;
  std::size_t start_ = 0;
  bool error_ = false;
};

}  // namespace estafette::ipc
