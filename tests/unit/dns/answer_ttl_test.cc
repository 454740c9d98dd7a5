// Table tests for answer_ttl() (how long a wire-format DNS response may be cached) and for the
// AnswerCache's bounds, expiry and LRU order. Messages are built byte by byte here.
#include "lib/dns/answer_ttl.h"

#include <gtest/gtest.h>

#include <string>

#include "lib/dns/answer_cache.h"
#include "tests/unit/dns/dns_message.h"

namespace estafette::dns {
namespace {

using namespace wire;

std::string a_rr(std::uint32_t ttl, const std::string& owner = ptr(kQ)) {
  return rr(owner, 1, ttl, std::string("\x7f\x00\x00\x01", 4));
}
std::string soa_rr(std::uint32_t ttl, std::uint32_t minimum,
                   const std::string& owner = name("test")) {
  return rr(owner, 6, ttl,
            name("ns.test") + name("admin.test") + u32(1) + u32(600) + u32(300) + u32(86400) +
                u32(minimum));
}

struct TtlCase {
  std::string label;
  std::string message;
  std::optional<AnswerTtl> expected;
};

std::ostream& operator<<(std::ostream& os, const TtlCase& c) {
  return os << c.label;
}

class AnswerTtlTable : public ::testing::TestWithParam<TtlCase> {};

TEST_P(AnswerTtlTable, Extracts) {
  const TtlCase& c = GetParam();
  auto got = answer_ttl(c.message);
  ASSERT_EQ(got.has_value(), c.expected.has_value());
  if (!got) return;
  EXPECT_EQ(got->kind, c.expected->kind);
  EXPECT_EQ(got->seconds, c.expected->seconds);
}

constexpr auto kPos = AnswerKind::Positive;
constexpr auto kNeg = AnswerKind::Negative;

INSTANTIATE_TEST_SUITE_P(
    Messages, AnswerTtlTable,
    ::testing::Values(
        TtlCase{"one A", header(kNoError, 1, 1, 0) + question() + a_rr(300), AnswerTtl{kPos, 300}},
        TtlCase{"smallest of two", header(kNoError, 1, 2, 0) + question() + a_rr(300) + a_rr(60),
                AnswerTtl{kPos, 60}},
        TtlCase{"CNAME then A, uncompressed",
                header(kNoError, 1, 2, 0) + question() +
                    rr(name("host.test"), 5, 100, name("real.test")) + a_rr(300, name("real.test")),
                AnswerTtl{kPos, 100}},
        TtlCase{"CNAME target compressed",
                header(kNoError, 1, 2, 0) + question() +
                    rr(ptr(kQ), 5, 100, u16(0x0472) + "eal" + ptr(kQ + 5)) +
                    a_rr(20, ptr(kQ + 15 + 12)),
                AnswerTtl{kPos, 20}},
        TtlCase{"authority ignored when positive",
                header(kNoError, 1, 1, 1) + question() + a_rr(300) + soa_rr(5, 5),
                AnswerTtl{kPos, 300}},
        TtlCase{"additional section not read",
                header(kNoError, 1, 1, 0, 1) + question() + a_rr(300) + "garbage",
                AnswerTtl{kPos, 300}},
        TtlCase{"TTL zero", header(kNoError, 1, 1, 0) + question() + a_rr(0), AnswerTtl{kPos, 0}},
        TtlCase{"TTL with the top bit is zero",
                header(kNoError, 1, 2, 0) + question() + a_rr(300) + a_rr(0x80000001u),
                AnswerTtl{kPos, 0}},
        TtlCase{"NXDOMAIN: SOA minimum",
                header(kNxDomain, 1, 0, 1) + question() + soa_rr(3600, 900), AnswerTtl{kNeg, 900}},
        TtlCase{"NXDOMAIN: SOA TTL when smaller",
                header(kNxDomain, 1, 0, 1) + question() + soa_rr(60, 900), AnswerTtl{kNeg, 60}},
        TtlCase{"NODATA with SOA", header(kNoError, 1, 0, 1) + question() + soa_rr(600, 300),
                AnswerTtl{kNeg, 300}},
        TtlCase{"SOA after an NS record",
                header(kNxDomain, 1, 0, 2) + question() + rr(name("test"), 2, 10, name("ns.test")) +
                    soa_rr(600, 300),
                AnswerTtl{kNeg, 300}},
        TtlCase{"SOA with compressed names",
                header(kNxDomain, 1, 0, 1) + question() +
                    rr(ptr(kQ + 5), 6, 600,
                       u16(0x026e) + "s" + ptr(kQ + 5) + u16(0x0561) + "dmin" + ptr(kQ + 5) +
                           u32(1) + u32(2) + u32(3) + u32(4) + u32(42)),
                AnswerTtl{kNeg, 42}},
        TtlCase{"NXDOMAIN behind a CNAME",
                header(kNxDomain, 1, 1, 1) + question() + rr(ptr(kQ), 5, 30, name("gone.test")) +
                    soa_rr(600, 300),
                AnswerTtl{kNeg, 30}},
        TtlCase{"NXDOMAIN without SOA", header(kNxDomain, 1, 0, 0) + question(), std::nullopt},
        TtlCase{"NODATA with only NS",
                header(kNoError, 1, 0, 1) + question() + rr(name("test"), 2, 10, name("ns.test")),
                std::nullopt},
        TtlCase{"SERVFAIL", header(kServFail, 1, 0, 1) + question() + soa_rr(600, 300),
                std::nullopt},
        TtlCase{"REFUSED", header(kRefused, 1, 0, 0) + question(), std::nullopt},
        TtlCase{"a query, not a response", header(0x0100, 1, 1, 0) + question() + a_rr(300),
                std::nullopt},
        TtlCase{"truncated (TC)", header(kNoError | 0x0200, 1, 1, 0) + question() + a_rr(300),
                std::nullopt},
        TtlCase{"opcode not QUERY", header(kNoError | 0x1000, 1, 1, 0) + question() + a_rr(300),
                std::nullopt},
        TtlCase{"empty", "", std::nullopt},
        TtlCase{"header only, counts lie", header(kNoError, 1, 1, 0), std::nullopt},
        TtlCase{"rdlength past the end",
                header(kNoError, 1, 1, 0) + question() + ptr(kQ) + u16(1) + u16(1) + u32(5) +
                    u16(10) + "ab",
                std::nullopt},
        TtlCase{"forward pointer", header(kNoError, 1, 1, 0) + question() + a_rr(300, ptr(200)),
                std::nullopt},
        TtlCase{"pointer to itself",
                header(kNoError, 1, 1, 0) + question() + a_rr(300, ptr(kQ + 15)), std::nullopt},
        TtlCase{"reserved label type",
                header(kNoError, 1, 1, 0) + question() + a_rr(300, std::string("\x41x\0", 3)),
                std::nullopt},
        TtlCase{"name longer than 255",
                header(kNoError, 1, 1, 0) +
                    name(std::string(60, 'a') + "." + std::string(60, 'b') + "." +
                         std::string(60, 'c') + "." + std::string(60, 'd') + "." +
                         std::string(60, 'e')) +
                    u16(1) + u16(1) + a_rr(300),
                std::nullopt},
        TtlCase{"SOA rdata longer than its fields",
                header(kNxDomain, 1, 0, 1) + question() +
                    rr(name("test"), 6, 600,
                       name("ns.test") + name("a.test") + u32(1) + u32(2) + u32(3) + u32(4) +
                           u32(5) + "x"),
                std::nullopt},
        TtlCase{"SOA rdata too short",
                header(kNxDomain, 1, 0, 1) + question() +
                    rr(name("test"), 6, 600, name("ns.test") + name("a.test") + u32(1)),
                std::nullopt}));

TEST(AnswerTtl, EveryPrefixOfAValidMessageIsRejected) {
  const std::string messages[] = {
      header(kNoError, 1, 2, 0) + question() + a_rr(300) + a_rr(60),
      header(kNxDomain, 1, 0, 1) + question() + soa_rr(3600, 900),
  };
  for (const auto& m : messages) {
    ASSERT_TRUE(answer_ttl(m).has_value());
    for (std::size_t n = 0; n < m.size(); ++n) {
      EXPECT_FALSE(answer_ttl(std::string_view(m).substr(0, n)).has_value()) << n;
    }
  }
}

// --- the cache

using Clock = AnswerCache::Clock;
using std::chrono::seconds;

TEST(AnswerCache, KeyIsCaseInsensitiveNameAndType) {
  EXPECT_EQ(AnswerCache::key("Host.TEST.", 1), AnswerCache::key("host.test", 1));
  EXPECT_NE(AnswerCache::key("host.test", 1), AnswerCache::key("host.test", 28));
  EXPECT_NE(AnswerCache::key("host.test", 1), AnswerCache::key("host.test1", 1));
}

TEST(AnswerCache, ExpiresAtItsTime) {
  AnswerCache c(4);
  auto t0 = Clock::now();
  c.insert("a", 0, "answer", t0 + seconds(10), t0);
  ASSERT_NE(c.find("a", t0 + seconds(9)), nullptr);
  EXPECT_EQ(c.find("a", t0 + seconds(9))->answer, "answer");
  EXPECT_EQ(c.find("a", t0 + seconds(10)), nullptr);
  EXPECT_EQ(c.size(), 0u);
  c.insert("b", 0, "x", t0, t0);  // already expired: not kept
  EXPECT_EQ(c.size(), 0u);
}

TEST(AnswerCache, EvictsTheLeastRecentlyUsed) {
  AnswerCache c(2);
  auto t0 = Clock::now(), later = t0 + seconds(100);
  c.insert("a", 1, "A", later, t0);
  c.insert("b", 2, "B", later, t0);
  ASSERT_NE(c.find("a", t0), nullptr);  // a is now the most recent
  c.insert("c", 3, "C", later, t0);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.find("b", t0), nullptr);
  ASSERT_NE(c.find("a", t0), nullptr);
  ASSERT_NE(c.find("c", t0), nullptr);
  EXPECT_EQ(c.find("c", t0)->status, 3);
  c.insert("a", 4, "A2", later, t0);  // replaces, no eviction
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.find("a", t0)->answer, "A2");
  ASSERT_NE(c.find("c", t0), nullptr);
  for (int i = 0; i < 1000; ++i) c.insert("k" + std::to_string(i), 0, "v", later, t0);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_NE(c.find("k999", t0), nullptr);
  EXPECT_NE(c.find("k998", t0), nullptr);
}

TEST(AnswerCache, ZeroCapacityKeepsNothing) {
  AnswerCache c(0);
  auto t0 = Clock::now();
  c.insert("a", 0, "A", t0 + seconds(5), t0);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.find("a", t0), nullptr);
}

}  // namespace
}  // namespace estafette::dns
