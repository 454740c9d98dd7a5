// Table tests for TLSA parsing (tlsa.h: RDATA, a whole response, RFC 7672 3.1 usability) and
// for dane_verdict() (dane.h: RFC 7672 2.2, what the DNSSEC state of each answer means).
#include "lib/dns/tlsa.h"

#include <gtest/gtest.h>

#include <string>

#include "lib/dns/dane.h"
#include "tests/unit/dns/dns_message.h"

namespace estafette::dns {
namespace {

using namespace wire;

std::string bytes(std::size_t n, char c = '\xab') {
  return std::string(n, c);
}
std::string rdata(unsigned usage, unsigned selector, unsigned mtype, const std::string& data) {
  return std::string{static_cast<char>(usage), static_cast<char>(selector),
                     static_cast<char>(mtype)} +
         data;
}

TEST(TlsaRdata, ParsesFields) {
  auto r = parse_tlsa_rdata(rdata(3, 1, 1, bytes(32)));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->usage, 3);
  EXPECT_EQ(r->selector, 1);
  EXPECT_EQ(r->matching_type, 1);
  EXPECT_EQ(r->data, bytes(32));
  EXPECT_EQ(tlsa_text(TlsaRecord{2, 0, 1, "\x01\xfe"}), "2 0 1 01fe");
}

TEST(TlsaRdata, TooShortIsMalformed) {
  EXPECT_FALSE(parse_tlsa_rdata(""));
  EXPECT_FALSE(parse_tlsa_rdata(std::string("\x03\x01\x01", 3)));  // no data at all
  EXPECT_TRUE(parse_tlsa_rdata(std::string("\x03\x01\x00\x00", 4)));
}

struct UsableCase {
  std::string label;
  TlsaRecord record;
  bool usable;
};
std::ostream& operator<<(std::ostream& os, const UsableCase& c) {
  return os << c.label;
}
class TlsaUsableTable : public ::testing::TestWithParam<UsableCase> {};
TEST_P(TlsaUsableTable, Rfc7672) {
  EXPECT_EQ(tlsa_usable(GetParam().record), GetParam().usable);
}
INSTANTIATE_TEST_SUITE_P(
    Records, TlsaUsableTable,
    ::testing::Values(UsableCase{"DANE-EE SPKI SHA-256", {3, 1, 1, bytes(32)}, true},
                      UsableCase{"DANE-EE cert SHA-512", {3, 0, 2, bytes(64)}, true},
                      UsableCase{"DANE-EE SPKI full", {3, 1, 0, bytes(91)}, true},
                      UsableCase{"DANE-TA cert SHA-256", {2, 0, 1, bytes(32)}, true},
                      UsableCase{"DANE-TA SPKI SHA-512", {2, 1, 2, bytes(64)}, true},
                      UsableCase{"PKIX-TA", {0, 0, 1, bytes(32)}, false},
                      UsableCase{"PKIX-EE", {1, 1, 1, bytes(32)}, false},
                      UsableCase{"usage 4", {4, 1, 1, bytes(32)}, false},
                      UsableCase{"usage 255 (private)", {255, 1, 1, bytes(32)}, false},
                      UsableCase{"selector 2", {3, 2, 1, bytes(32)}, false},
                      UsableCase{"matching type 3", {3, 1, 3, bytes(32)}, false},
                      UsableCase{"SHA-256 of 31 bytes", {3, 1, 1, bytes(31)}, false},
                      UsableCase{"SHA-256 of 33 bytes", {3, 1, 1, bytes(33)}, false},
                      UsableCase{"SHA-512 of 32 bytes", {3, 1, 2, bytes(32)}, false},
                      UsableCase{"full, empty", {3, 1, 0, ""}, false}));

TEST(TlsaUsable, FiltersKeepingOrder) {
  std::vector<TlsaRecord> all{{0, 0, 1, bytes(32)},
                              {3, 1, 1, bytes(32, '\x01')},
                              {3, 1, 1, bytes(5)},
                              {2, 0, 1, bytes(32, '\x02')}};
  auto usable = usable_tlsa(all);
  ASSERT_EQ(usable.size(), 2u);
  EXPECT_EQ(usable[0], all[1]);
  EXPECT_EQ(usable[1], all[3]);
}

constexpr unsigned kTlsa = 52;
const std::string kOwner = "_25._tcp.mx.test";
std::string tlsa_question() {
  return question(kOwner, kTlsa);
}

struct AnswerCase {
  std::string label;
  std::string message;
  std::optional<std::vector<TlsaRecord>> expected;
};
std::ostream& operator<<(std::ostream& os, const AnswerCase& c) {
  return os << c.label;
}
class TlsaAnswerTable : public ::testing::TestWithParam<AnswerCase> {};
TEST_P(TlsaAnswerTable, Parses) {
  EXPECT_EQ(parse_tlsa_answer(GetParam().message), GetParam().expected);
}

const std::string kEe = rdata(3, 1, 1, bytes(32, '\x11'));
const std::string kTa = rdata(2, 0, 1, bytes(32, '\x22'));
const TlsaRecord kEeRecord{3, 1, 1, bytes(32, '\x11')};
const TlsaRecord kTaRecord{2, 0, 1, bytes(32, '\x22')};
const std::string kRrsig = rr(ptr(kQ), 46, 300, bytes(40));

INSTANTIATE_TEST_SUITE_P(
    Messages, TlsaAnswerTable,
    ::testing::Values(
        AnswerCase{"two records",
                   header(kNoError, 1, 2, 0) + tlsa_question() + rr(ptr(kQ), kTlsa, 300, kEe) +
                       rr(ptr(kQ), kTlsa, 300, kTa),
                   std::vector<TlsaRecord>{kEeRecord, kTaRecord}},
        AnswerCase{"RRSIG and CNAME skipped",
                   header(kNoError | 0x20, 1, 3, 0) + tlsa_question() +
                       rr(ptr(kQ), 5, 300, name("_25._tcp.real.test")) +
                       rr(name("_25._tcp.real.test"), kTlsa, 300, kEe) + kRrsig,
                   std::vector<TlsaRecord>{kEeRecord}},
        AnswerCase{"no data", header(kNoError, 1, 0, 0) + tlsa_question(),
                   std::vector<TlsaRecord>{}},
        AnswerCase{"a TLSA RDATA of 3 bytes",
                   header(kNoError, 1, 1, 0) + tlsa_question() +
                       rr(ptr(kQ), kTlsa, 300, std::string("\x03\x01\x01", 3)),
                   std::nullopt},
        AnswerCase{"RDLENGTH past the end",
                   header(kNoError, 1, 1, 0) + tlsa_question() +
                       (rr(ptr(kQ), kTlsa, 300, kEe)).substr(0, 20),
                   std::nullopt},
        AnswerCase{"a query, not a response",
                   header(0x0100, 1, 1, 0) + tlsa_question() + rr(ptr(kQ), kTlsa, 300, kEe),
                   std::nullopt},
        AnswerCase{
            "truncated (TC)",
            header(kNoError | 0x200, 1, 1, 0) + tlsa_question() + rr(ptr(kQ), kTlsa, 300, kEe),
            std::nullopt},
        AnswerCase{"forward compression pointer",
                   header(kNoError, 1, 1, 0) + tlsa_question() + rr(ptr(200), kTlsa, 300, kEe),
                   std::nullopt},
        AnswerCase{"short header", std::string("\x12\x34\x81", 3), std::nullopt}));

TEST(TlsaAnswer, EverySplitPointIsSafe) {
  std::string whole = header(kNoError, 1, 2, 0) + tlsa_question() + rr(ptr(kQ), kTlsa, 300, kEe) +
                      rr(ptr(kQ), kTlsa, 300, kTa);
  for (std::size_t n = 0; n < whole.size(); ++n)
    EXPECT_FALSE(parse_tlsa_answer(whole.substr(0, n))) << "cut at " << n;
  EXPECT_TRUE(parse_tlsa_answer(whole));
}

// --- dane_verdict (RFC 7672 2.2)

MxResult mx(bool mx_secure, bool host_secure, Status host_status = Status::Ok) {
  MxResult r;
  r.status = host_status;
  r.authenticated = mx_secure;
  r.hosts.push_back(MxHost{"mx.test", 10, host_status, {"127.0.0.1"}, host_secure});
  return r;
}
TlsaResult tlsa(Status status, bool secure, std::vector<TlsaRecord> records = {}) {
  return TlsaResult{status, secure, std::move(records)};
}

TEST(DaneVerdict, InsecureMxMeansNoTlsaLookup) {
  auto m = mx(false, true);
  EXPECT_FALSE(dane_wants_tlsa(m, m.hosts[0]));
  auto v = dane_verdict(m, m.hosts[0], nullptr);
  EXPECT_EQ(v.state, DaneState::NotApplicable);
  EXPECT_NE(v.reason.find("insecure"), std::string::npos) << v.reason;
}

TEST(DaneVerdict, InsecureHostAddressesMeanNoTlsaLookup) {
  auto m = mx(true, false);
  EXPECT_FALSE(dane_wants_tlsa(m, m.hosts[0]));
  EXPECT_EQ(dane_verdict(m, m.hosts[0], nullptr).state, DaneState::NotApplicable);
  auto failed = mx(true, false, Status::TempFail);
  EXPECT_FALSE(dane_wants_tlsa(failed, failed.hosts[0]));
}

TEST(DaneVerdict, Table) {
  auto m = mx(true, true);
  const MxHost& h = m.hosts[0];
  EXPECT_TRUE(dane_wants_tlsa(m, h));
  std::vector<TlsaRecord> mixed{{1, 1, 1, bytes(32)}, kEeRecord};
  struct Case {
    TlsaResult tlsa;
    DaneState state;
    std::size_t records;
  } cases[] = {
      {tlsa(Status::Ok, true, mixed), DaneState::Verify, 1},
      {tlsa(Status::Ok, true, {{0, 0, 1, bytes(32)}, {3, 1, 1, bytes(3)}}),
       DaneState::NotApplicable, 0},                                  // all unusable
      {tlsa(Status::Ok, false, mixed), DaneState::NotApplicable, 0},  // insecure TLSA
      {tlsa(Status::NotFound, true), DaneState::NotApplicable, 0},    // secure denial
      {tlsa(Status::NotFound, false), DaneState::NotApplicable, 0},   // insecure denial
      {tlsa(Status::TempFail, false), DaneState::TempFail, 0},        // bogus: SERVFAIL
  };
  for (const auto& c : cases) {
    auto v = dane_verdict(m, h, &c.tlsa);
    EXPECT_EQ(v.state, c.state) << v.reason;
    EXPECT_EQ(v.records.size(), c.records) << v.reason;
    EXPECT_FALSE(v.reason.empty());
  }
}

}  // namespace
}  // namespace estafette::dns
