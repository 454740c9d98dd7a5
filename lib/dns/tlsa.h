// tlsa.h: TLSA records (RFC 6698 2.1) read from wire-format DNS responses, and which of them
// SMTP may use (RFC 7672 3.1). Pure functions: no I/O, any thread; every read is bounds-checked
// (wire_reader.h). The Resolver's lookup_tlsa() uses them; tests/fuzz/tlsa_records_fuzz.cc
// fuzzes them. Errors: nullopt for a malformed record or message, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::dns {

inline constexpr std::uint16_t kTypeTlsa = 52;

// Certificate usages, selectors and matching types (RFC 6698 2.1.1-2.1.3, RFC 7218 names).
enum class TlsaUsage : std::uint8_t { PkixTa = 0, PkixEe = 1, DaneTa = 2, DaneEe = 3 };
enum class TlsaSelector : std::uint8_t { Cert = 0, Spki = 1 };
enum class TlsaMatching : std::uint8_t { Full = 0, Sha256 = 1, Sha512 = 2 };

struct TlsaRecord {
  std::uint8_t usage = 0;  // numbers as on the wire: unknown values are kept (and unusable)
  std::uint8_t selector = 0;
  std::uint8_t matching_type = 0;
  std::string data;  // certificate association data, raw bytes
  bool operator==(const TlsaRecord&) const = default;
};

// One TLSA RDATA: three octets and at least one octet of data; nullopt when shorter.
std::optional<TlsaRecord> parse_tlsa_rdata(std::string_view rdata);

// Every TLSA record (class IN) in the answer section of a response, in order; other types
// (CNAME, RRSIG) are skipped. nullopt: not a whole response (truncated, malformed, a query, TC),
// or a TLSA RDATA that does not parse.
std::optional<std::vector<TlsaRecord>> parse_tlsa_answer(std::string_view message);

// Whether SMTP uses it (RFC 7672 3.1): DANE-TA(2) or DANE-EE(3), selector Cert(0) or SPKI(1),
// matching Full(0), SHA2-256(1) with 32 bytes or SHA2-512(2) with 64. PKIX-TA/PKIX-EE and unknown
// values are unusable; when every record is, DANE does not apply (RFC 7672 2.2).
bool tlsa_usable(const TlsaRecord& record);
std::vector<TlsaRecord> usable_tlsa(const std::vector<TlsaRecord>& records);

// "3 1 1 0a1b..." (the presentation format, data in lower-case hex), for logs and probes.
std::string tlsa_text(const TlsaRecord& record);

}  // namespace estafette::dns
