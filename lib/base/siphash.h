// siphash.h: SipHash-2-4 (Aumasson and Bernstein, 2012), a keyed 64-bit hash for tables whose
// keys come from the network: without the key, nobody can aim inputs at one bucket.
// Pure functions, any thread; no allocation (it runs for every accepted connection).
// The output is the reference implementation's, read as a little-endian uint64.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace estafette::base {

using SipKey = std::array<std::uint8_t, 16>;

std::uint64_t siphash24(const SipKey& key, const void* data, std::size_t size);

// A key from getrandom(2); throws std::system_error if the kernel has none to give.
SipKey random_sip_key();

}  // namespace estafette::base
