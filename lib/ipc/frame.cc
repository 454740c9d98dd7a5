#include "lib/ipc/frame.h"

#include <cstring>

namespace estafette::ipc {

namespace {
void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_le(std::string_view in, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}
}  // namespace

Writer::Writer(std::uint8_t type) {
  out_.assign(4, '\0');
  out_.push_back(static_cast<char>(type));
}
Writer& Writer::u8(std::uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}
Writer& Writer::u32(std::uint32_t v) {
  put_le(out_, v, 4);
  return *this;
}
Writer& Writer::u64(std::uint64_t v) {
  put_le(out_, v, 8);
  return *this;
}
Writer& Writer::str(std::string_view v) {
  u32(static_cast<std::uint32_t>(v.size()));
  out_.append(v);
  return *this;
}
Writer& Writer::strings(const std::vector<std::string>& v) {
  u32(static_cast<std::uint32_t>(v.size()));
  for (const auto& s : v) str(s);
  return *this;
}
std::string Writer::finish() {
  std::uint32_t len = static_cast<std::uint32_t>(out_.size() - 4);
  for (int i = 0; i < 4; ++i) out_[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  return std::move(out_);
}

bool Reader::take(std::size_t n, std::string_view& out) {
  if (!ok_ || in_.size() < n) {
    ok_ = false;
    return false;
  }
  out = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}
std::uint8_t Reader::u8() {
  std::string_view b;
  return take(1, b) ? static_cast<std::uint8_t>(b[0]) : 0;
}
std::uint32_t Reader::u32() {
  std::string_view b;
  return take(4, b) ? static_cast<std::uint32_t>(get_le(b, 4)) : 0;
}
std::uint64_t Reader::u64() {
  std::string_view b;
  return take(8, b) ? get_le(b, 8) : 0;
}
std::string Reader::str() {
  std::uint32_t n = u32();
  std::string_view b;
  return take(n, b) ? std::string(b) : std::string();
}
std::vector<std::string> Reader::strings() {
  std::uint32_t n = u32();
  std::vector<std::string> v;
  // Each string takes at least 4 bytes: a count beyond that is malformed, not a huge reserve.
  if (n > in_.size() / 4) {
    ok_ = false;
    return v;
  }
  v.reserve(n);
  for (std::uint32_t i = 0; i < n && ok_; ++i) v.push_back(str());
  return v;
}

std::optional<Frame> FrameSplitter::next() {
  if (error_) return std::nullopt;
  std::string_view avail(buffer_.data() + start_, buffer_.size() - start_);
  if (avail.size() < 4) return std::nullopt;
  auto len = static_cast<std::uint32_t>(get_le(avail, 4));
  if (len == 0 || len > kMaxFrame) {
    error_ = true;
    return std::nullopt;
  }
  if (avail.size() < 4 + std::size_t{len}) return std::nullopt;
  Frame f;
  f.type = static_cast<std::uint8_t>(avail[4]);
  f.payload.assign(avail.substr(5, len - 1));
  start_ += 4 + len;
  // Compact once the consumed prefix dominates, so the buffer does not grow without bound.
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > 65536 && start_ * 2 > buffer_.size()) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  return f;
}

}  // namespace estafette::ipc
