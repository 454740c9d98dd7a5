// SipHash-2-4: the reference vectors (key 00..0f, message 00..n-1, from the paper's
// implementation) and, for every length up to 64, OpenSSL's SIPHASH as a second opinion.
#include "lib/base/siphash.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstdint>
#include <vector>

namespace estafette::base {
namespace {

SipKey reference_key() {
  SipKey key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  return key;
}

std::vector<std::uint8_t> message(std::size_t n) {
  std::vector<std::uint8_t> m(n);
  for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<std::uint8_t>(i);
  return m;
}

TEST(SipHash, ReferenceVectors) {
  struct Vector {
    std::size_t length;
    std::uint64_t hash;
  };
  // vectors_sip64 of the reference implementation, read little-endian.
  constexpr Vector kVectors[] = {
      {0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL},  {2, 0x0d6c8009d9a94f5aULL},
      {3, 0x85676696d7fb7e2dULL},  {7, 0xab0200f58b01d137ULL},  {8, 0x93f5f5799a932462ULL},
      {15, 0xa129ca6149be45e5ULL}, {63, 0x958a324ceb064572ULL},
  };
  for (const auto& v : kVectors) {
    auto m = message(v.length);
    EXPECT_EQ(siphash24(reference_key(), m.data(), m.size()), v.hash) << "length " << v.length;
  }
}

TEST(SipHash, AgreesWithOpenSsl) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  if (!mac) GTEST_SKIP() << "OpenSSL without SIPHASH";
  SipKey key = reference_key();
  key[3] = 0x5a;  // not only the reference key
  for (std::size_t n = 0; n <= 64; ++n) {
    auto m = message(n);
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    ASSERT_NE(ctx, nullptr);
    std::size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t("size", &size), OSSL_PARAM_END};
    ASSERT_EQ(EVP_MAC_init(ctx, key.data(), key.size(), params), 1);
    ASSERT_EQ(EVP_MAC_update(ctx, m.data(), m.size()), 1);
    unsigned char out[8];
    std::size_t out_len = 0;
    ASSERT_EQ(EVP_MAC_final(ctx, out, &out_len, sizeof out), 1);
    EVP_MAC_CTX_free(ctx);
    std::uint64_t expected = 0;
    for (int i = 7; i >= 0; --i) expected = (expected << 8) | out[i];
    EXPECT_EQ(siphash24(key, m.data(), m.size()), expected) << "length " << n;
  }
  EVP_MAC_free(mac);
}

TEST(SipHash, RandomKeysDiffer) {
  EXPECT_NE(random_sip_key(), random_sip_key());
}

}  // namespace
}  // namespace estafette::base
