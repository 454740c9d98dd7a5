#include "lib/dns/answer_ttl.h"

#include <algorithm>

namespace estafette::dns {

namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr std::uint16_t kTypeSoa = 6;
constexpr unsigned kRcodeNoError = 0;
constexpr unsigned kRcodeNxDomain = 3;

// A bounds-checked reader over [0, end) of the message.
class Reader {
 public:
  explicit Reader(std::string_view message) : msg_(message), end_(message.size()) {}

  std::size_t pos() const { return pos_; }
  bool ok() const { return ok_; }

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

struct Record {
  std::uint16_t type = 0;
  std::uint32_t ttl = 0;
  std::uint32_t soa_minimum = 0;  // for an SOA
};

std::uint32_t clamp_ttl(std::uint32_t ttl) {
  return (ttl & 0x80000000u) ? 0 : ttl;  // RFC 2181 8: a "negative" TTL is zero
}

// Reads one resource record; false when malformed.
bool read_record(Reader& r, Record& rec) {
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
  if (message.size() < kHeaderSize) return std::nullopt;
  Reader r(message);
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
