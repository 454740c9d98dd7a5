// checksum.h: CRC-32C (Castagnoli), used by queue file trailers.
// Any thread; pure functions. crc32c_update(0, "123456789") == 0xE3069283.
#pragma once

#include <cstdint>
#include <string_view>

namespace estafette::queue {

// Continues a CRC over more bytes: crc32c_update(crc32c_update(0, a), b) == crc32c(a + b).
std::uint32_t crc32c_update(std::uint32_t crc, std::string_view bytes);

// The same with the portable tables only (the fast path above uses SSE4.2 when the CPU has it);
// for tests that compare the two.
std::uint32_t crc32c_portable(std::uint32_t crc, std::string_view bytes);

inline std::uint32_t crc32c(std::string_view bytes) {
  return crc32c_update(0, bytes);
}

}  // namespace estafette::queue
