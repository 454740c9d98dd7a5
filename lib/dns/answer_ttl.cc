#include "lib/dns/answer_ttl.h"

#include <algorithm>

#include "lib/dns/wire_reader.h"

namespace estafette::dns {

namespace {

constexpr std::uint16_t kTypeSoa = 6;
constexpr unsigned kRcodeNoError = 0;
constexpr unsigned kRcodeNxDomain = 3;

struct Record {
  std::uint16_t type = 0;
  std::uint32_t ttl = 0;
  std::uint32_t soa_minimum = 0;  // for an SOA
};

std::uint32_t clamp_ttl(std::uint32_t ttl) {
  return (ttl & 0x80000000u) ? 0 : ttl;  // RFC 2181 8: a "negative" TTL is zero
}

// Reads one resource record; false when malformed.
bool read_record(WireReader& r, Record& rec) {
  r.skip_name();
  rec.type = r.u16();
  r.u16();  // class
  rec.ttl = clamp_ttl(r.u32());
  std::uint16_t rdlength = r.u16();
  if (!r.ok()) return false;
  std::size_t rdata_end = r.pos() + rdlength;
  std::size_t outer = r.limit(rdlength);
  if (!r.ok()) return false;
  if (rec.type == kTypeSoa) {
    r.skip_name();  // MNAME
    r.skip_name();  // RNAME
    r.skip(16);     // SERIAL REFRESH RETRY EXPIRE
    rec.soa_minimum = clamp_ttl(r.u32());
    if (!r.ok() || r.pos() != rdata_end) return false;
  }
  r.unlimit(outer);
  r.skip(rdata_end - r.pos());
  return r.ok();
}

}  // namespace

std::optional<AnswerTtl> answer_ttl(std::string_view message) {
  if (message.size() < kDnsHeaderSize) return std::nullopt;
  WireReader r(message);
  r.u16();  // id
  std::uint16_t flags = r.u16();
  std::uint16_t qdcount = r.u16(), ancount = r.u16(), nscount = r.u16();
  r.u16();  // arcount: never needed
  bool response = flags & 0x8000;
  unsigned opcode = (flags >> 11) & 0xF;
  bool truncated = flags & 0x0200;
  unsigned rcode = flags & 0xF;
  if (!response || opcode != 0 || truncated) return std::nullopt;
  if (rcode != kRcodeNoError && rcode != kRcodeNxDomain) return std::nullopt;

  for (unsigned i = 0; i < qdcount; ++i) {
    r.skip_name();
    r.skip(4);  // QTYPE QCLASS
  }
  if (!r.ok()) return std::nullopt;

  std::optional<std::uint32_t> answer_min;
  for (unsigned i = 0; i < ancount; ++i) {
    Record rec;
    if (!read_record(r, rec)) return std::nullopt;
    answer_min = std::min(answer_min.value_or(rec.ttl), rec.ttl);
  }
  if (rcode == kRcodeNoError && ancount > 0) return AnswerTtl{AnswerKind::Positive, *answer_min};

  for (unsigned i = 0; i < nscount; ++i) {
    Record rec;
    if (!read_record(r, rec)) return std::nullopt;
    if (rec.type != kTypeSoa) continue;
    std::uint32_t ttl = std::min(rec.ttl, rec.soa_minimum);
    if (answer_min) ttl = std::min(ttl, *answer_min);
    return AnswerTtl{AnswerKind::Negative, ttl};
  }
  return std::nullopt;  // negative without an SOA: not cacheable (RFC 2308 5)
}

}  // namespace estafette::dns
