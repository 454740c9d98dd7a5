// address.h: RFC 5321 mailbox syntax (local-part "@" domain) as used in SMTP envelope paths.
// Pure functions, callable from any thread. Parsing never throws: invalid input yields
// std::nullopt / false. Length limits of RFC 5321 4.5.3.1 are enforced (local part 64 octets,
// domain 255 octets, label 63 octets). Only ASCII is accepted (no SMTPUTF8).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::smtp {

inline constexpr std::size_t kMaxLocalPart = 64;
inline constexpr std::size_t kMaxDomain = 255;
inline constexpr std::size_t kMaxLabel = 63;

struct Address {
  std::string local;   // as written: a dot-string or a quoted string (quotes kept)
  std::string domain;  // as written: a domain name or an address literal "[...]"

  std::string str() const { return local + "@" + domain; }
  bool operator==(const Address&) const = default;
};

// Parses "local@domain" (no angle brackets, no source route). Returns nullopt on any syntax
// error, including an overlong local part or domain.
std::optional<Address> parse_mailbox(std::string_view text);

// True for an RFC 5321 Domain (dot-separated LDH labels) or an address literal
// ("[1.2.3.4]", "[IPv6:...]", "[tag:content]").
bool is_valid_domain(std::string_view domain);
bool is_valid_address_literal(std::string_view literal);

// True for a Dot-string or a Quoted-string local part.
bool is_valid_local_part(std::string_view local);

// The lower-cased domain of a "local@domain" address (quoted local parts may contain '@').
// Returns "" when there is no '@'.
std::string domain_of(std::string_view address);

// The local part with the quotes and quoted-pair backslashes of a Quoted-string removed;
// a Dot-string is returned unchanged.
std::string unquote_local(std::string_view local);

// True when a lower-case domain is in a list of lower-case domain entries: equal to an entry,
// or, for an entry starting with "." (".example.com"), any subdomain of it ("a.b.example.com",
// not "example.com" itself). Used for local_domains and relay_domains.
bool domain_listed(const std::vector<std::string>& list, std::string_view domain);

// ASCII lower-casing (locale independent).
std::string to_lower(std::string_view text);
std::string to_upper(std::string_view text);

}  // namespace estafette::smtp
