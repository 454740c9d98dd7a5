// base64.h: base64 (RFC 4648 section 4) as SMTP AUTH uses it (RFC 4954): encode, and a strict
// decode that refuses what a client must not send (characters outside the alphabet, whitespace,
// a length that is not a multiple of 4, misplaced padding, non-zero bits after the data), so
// that malformed input gets 501 rather than a guess. Pure functions; OpenSSL's EVP_EncodeBlock
// and EVP_DecodeBlock do the conversion. No allocation beyond the result; no exceptions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace estafette::auth {

std::string base64_encode(std::string_view data);

// nullopt when `text` is not canonical base64. "" decodes to "".
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace estafette::auth
