// rfc7677.h: the SCRAM-SHA-256 example exchange of RFC 7677 section 3 (user "user", password
// "pencil"), for the tests of lib/auth/scram.h and of the session's AUTH SCRAM-SHA-256.
#pragma once

#include <cstdint>
#include <string_view>

#include "lib/auth/base64.h"
#include "lib/auth/scram.h"

namespace estafette::auth::rfc7677 {

inline constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
inline constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
inline constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
inline constexpr std::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
inline constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
inline constexpr std::string_view kSaltBase64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
inline constexpr std::uint32_t kIterations = 4096;

// The stored secret of "pencil" with the example's salt and iteration count.
inline ScramSecret pencil_secret() {
  return derive_scram_secret("pencil", *base64_decode(kSaltBase64), kIterations);
}

}  // namespace estafette::auth::rfc7677
