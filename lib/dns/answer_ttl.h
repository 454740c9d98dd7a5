// answer_ttl.h: how long a DNS response may be cached, read from the wire-format message itself
// (RFC 1035 4.1, RFC 2308). Pure: no I/O, no allocation; every read is bounds-checked, names
// may be compressed (pointers must point backwards inside the message).
// Used by the Resolver's answer cache (answer_cache.h) on the loop thread; safe on any thread.
// Returns nullopt for anything that must not be cached: a malformed or truncated message, a
// query instead of a response, an error rcode (SERVFAIL, REFUSED, ...), a negative answer without
// an SOA record in its authority section.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace estafette::dns {

enum class AnswerKind { Positive, Negative };

struct AnswerTtl {
  AnswerKind kind = AnswerKind::Positive;
  std::uint32_t seconds = 0;  // 0: do not keep it at all
};

// Positive (NOERROR with answer records): the smallest TTL in the answer section.
// Negative (NXDOMAIN, or NOERROR without answer records): min(SOA TTL, SOA MINIMUM) of the
// first SOA in the authority section (RFC 2308 section 5), and no longer than any answer record
// (a CNAME in front of an NXDOMAIN). TTLs with the top bit set count as 0 (RFC 2181 8).
std::optional<AnswerTtl> answer_ttl(std::string_view message);

}  // namespace estafette::dns
