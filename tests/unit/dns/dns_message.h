// dns_message.h: a tiny builder of wire-format DNS messages (RFC 1035 4.1) for the table tests
// of lib/dns's pure parsers (answer_ttl_test.cc, tlsa_test.cc). Header-only, tests only.
#pragma once

#include <cstdint>
#include <string>

namespace estafette::dns::wire {

inline std::string u16(unsigned v) {
  return {static_cast<char>(v >> 8 & 0xff), static_cast<char>(v & 0xff)};
}
inline std::string u32(std::uint32_t v) {
  return u16(v >> 16) + u16(v & 0xffff);
}
inline std::string name(const std::string& dotted) {  // "a.test" -> 1a4test0
  std::string out;
  std::size_t start = 0;
  while (start < dotted.size()) {
    std::size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    out += static_cast<char>(dot - start);
    out += dotted.substr(start, dot - start);
    start = dot + 1;
  }
  return out + std::string(1, '\0');
}
inline std::string ptr(unsigned offset) {
  return u16(0xC000 | offset);
}
inline constexpr unsigned kQ = 12;  // offset of the question name

inline constexpr unsigned kNoError = 0x8180;  // QR RD RA
inline constexpr unsigned kNxDomain = 0x8183;
inline constexpr unsigned kServFail = 0x8182;
inline constexpr unsigned kRefused = 0x8185;

inline std::string header(unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar = 0) {
  return u16(0x1234) + u16(flags) + u16(qd) + u16(an) + u16(ns) + u16(ar);
}
inline std::string question(const std::string& n = "host.test", unsigned type = 1) {
  return name(n) + u16(type) + u16(1);
}
inline std::string rr(const std::string& owner, unsigned type, std::uint32_t ttl,
                      const std::string& rdata) {
  return owner + u16(type) + u16(1) + u32(ttl) + u16(static_cast<unsigned>(rdata.size())) + rdata;
}
}  // namespace estafette::dns::wire
