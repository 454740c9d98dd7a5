// wire.h: the milter protocol's framing, shared by both sides (protocol.cc: esmtpd's client,
// server_protocol.cc: estafette-filterhost's server): 4-byte big-endian lengths, NUL-terminated
// strings, packets of a command letter and its data, and splitting a byte stream into packets.
// Pure functions.
#pragma once

#include <libmilter/mfdef.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace estafette::milter::wire {

inline void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// in holds at least 4 bytes.
inline std::uint32_t get_u32(std::string_view in) {
  auto b = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(in[i]));
  };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

inline void put_string(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

inline std::string packet(char command, std::string_view data) {
  std::string out;
  out.reserve(5 + data.size());
  put_u32(out, static_cast<std::uint32_t>(data.size() + 1));
  out.push_back(command);
  out.append(data);
  return out;
}

// Appends bytes to buffer and hands each whole packet in it to decode(command, data, &error),
// in order, removing what was decoded. A zero or over-max_packet length, or decode returning
// false, sets error, empties buffer and returns false (the packets before it were decoded).
template <typename Decode>
bool split_packets(std::string& buffer, std::string_view bytes, std::size_t max_packet,
                   std::string& error, Decode&& decode) {
  buffer.append(bytes);
  std::size_t pos = 0;
  bool ok = true;
  while (buffer.size() - pos >= MILTER_LEN_BYTES) {
    std::uint32_t len = get_u32(std::string_view(buffer).substr(pos));
    if (len == 0) {
      error = "zero-length packet";
      ok = false;
      break;
    }
    if (len > max_packet) {
      error = "packet of " + std::to_string(len) + " bytes is too long";
      ok = false;
      break;
    }
    if (buffer.size() - pos - MILTER_LEN_BYTES < len) break;
    std::string_view body = std::string_view(buffer).substr(pos + MILTER_LEN_BYTES, len);
    if (!decode(body[0], body.substr(1), &error)) {
      ok = false;
      break;
    }
    pos += MILTER_LEN_BYTES + len;
  }
  if (!ok) {
    buffer.clear();
    return false;
  }
  buffer.erase(0, pos);
  return true;
}

}  // namespace estafette::milter::wire
