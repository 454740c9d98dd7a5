#include "lib/dns/tlsa.h"

#include "lib/dns/wire_reader.h"

namespace estafette::dns {

namespace {
constexpr std::uint16_t kClassIn = 1;
constexpr std::size_t kSha256Size = 32;
constexpr std::size_t kSha512Size = 64;
}  // namespace

std::optional<TlsaRecord> parse_tlsa_rdata(std::string_view rdata) {
  if (rdata.size() < 4) return std::nullopt;
  TlsaRecord r;
  r.usage = static_cast<std::uint8_t>(rdata[0]);
  r.selector = static_cast<std::uint8_t>(rdata[1]);
  r.matching_type = static_cast<std::uint8_t>(rdata[2]);
  r.data.assign(rdata.substr(3));
  return r;
}

std::optional<std::vector<TlsaRecord>> parse_tlsa_answer(std::string_view message) {
  WireReader r(message);
  r.u16();  // id
  std::uint16_t flags = r.u16();
  std::uint16_t qdcount = r.u16(), ancount = r.u16();
  r.skip(4);                                                                  // nscount, arcount
  if (!r.ok() || !(flags & 0x8000) || (flags & 0x0200)) return std::nullopt;  // QR, TC
  for (unsigned i = 0; i < qdcount; ++i) {
    r.skip_name();
    r.skip(4);  // QTYPE QCLASS
  }
  std::vector<TlsaRecord> out;
  for (unsigned i = 0; i < ancount && r.ok(); ++i) {
    r.skip_name();
    std::uint16_t type = r.u16();
    std::uint16_t klass = r.u16();
    r.skip(4);  // TTL
    std::uint16_t rdlength = r.u16();
    std::string_view rdata = r.bytes(rdlength);
    if (!r.ok() || type != kTypeTlsa || klass != kClassIn) continue;
    auto record = parse_tlsa_rdata(rdata);
    if (!record) return std::nullopt;
    out.push_back(std::move(*record));
  }
  if (!r.ok()) return std::nullopt;
  return out;
}

bool tlsa_usable(const TlsaRecord& record) {
  if (record.usage != static_cast<std::uint8_t>(TlsaUsage::DaneTa) &&
      record.usage != static_cast<std::uint8_t>(TlsaUsage::DaneEe))
    return false;
  if (record.selector > static_cast<std::uint8_t>(TlsaSelector::Spki)) return false;
  switch (static_cast<TlsaMatching>(record.matching_type)) {
    case TlsaMatching::Full:
      return !record.data.empty();
    case TlsaMatching::Sha256:
      return record.data.size() == kSha256Size;
    case TlsaMatching::Sha512:
      return record.data.size() == kSha512Size;
  }
  return false;  // an unknown matching type
}

std::vector<TlsaRecord> usable_tlsa(const std::vector<TlsaRecord>& records) {
  std::vector<TlsaRecord> out;
  for (const auto& r : records)
    if (tlsa_usable(r)) out.push_back(r);
  return out;
}

std::string tlsa_text(const TlsaRecord& record) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = std::to_string(record.usage) + " " + std::to_string(record.selector) + " " +
                    std::to_string(record.matching_type) + " ";
  for (unsigned char c : record.data) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

}  // namespace estafette::dns
