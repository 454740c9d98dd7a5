#include "lib/queue/queue_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <functional>
#include <system_error>

#include "lib/base/fd.h"
#include "lib/queue/checksum.h"
#include "tests/unit/queue/queue_test_util.h"

namespace estafette::queue {
namespace {

Envelope sample_envelope() {
  Envelope e = testing::test_envelope(2);
  e.id = "0LWQ3K9ZA-02BXF-00A1K3P0";
  return e;
}

// A queue file exactly as the writer produces it.
std::string build_file(const Envelope& e, const std::string& body) {
  EncodedHeader h = encode_header(e);
  h.text.replace(h.size_field_offset, kSizeDigits, format_size_field(body.size()));
  return h.text + body + encode_trailer(body.size(), crc32c(h.text), crc32c(body));
}

struct Parsed {
  std::optional<QueueFileInfo> info;
  std::string error;
};

Parsed parse_bytes(const std::string& bytes, Check check = Check::kStructure) {
  static testing::TempDir dir;  // one for the whole run: this runs for every truncation length
  testing::write_file(dir.sub("f"), bytes);
  base::UniqueFd fd(::open(dir.sub("f").c_str(), O_RDONLY | O_CLOEXEC));
  Parsed p;
  p.info = read_queue_file(fd.get(), check, &p.error);
  return p;
}

TEST(QueueFile, HeaderLayout) {
  Envelope e = sample_envelope();
  EncodedHeader h = encode_header(e);
  EXPECT_EQ(h.text,
            "ESTAFETTE-QUEUE 1\n"
            "I 0LWQ3K9ZA-02BXF-00A1K3P0\n"
            "T 1700000000\n"
            "F alice@example.org\n"
            "C 192.0.2.7\n"
            "H mail.example.org\n"
            "R rcpt0@example.net\n"
            "R rcpt1@example.net\n"
            "B 00000000000000000000\n");
  EXPECT_EQ(h.text.substr(h.size_field_offset, kSizeDigits), std::string(kSizeDigits, '0'));
  EXPECT_EQ(encode_trailer(5, 0xdeadbeef, 1), "\nEND 5 deadbeef 00000001\n");
}

TEST(QueueFile, RoundTripWithEmptyOptionalFields) {
  for (const std::string& body : {std::string(), std::string("Subject: x\r\n\r\nhi\r\n")}) {
    Envelope e = sample_envelope();
    e.sender.clear();
    e.client_ip.clear();
    e.helo.clear();
    e.arrival = -5;
    Parsed p = parse_bytes(build_file(e, body), Check::kBody);
    ASSERT_TRUE(p.info) << p.error;
    EXPECT_EQ(p.info->envelope, e);
    EXPECT_EQ(p.info->body_size, body.size());
    EXPECT_EQ(build_file(e, body).substr(p.info->body_offset, body.size()), body);
  }
}

TEST(QueueFile, UnknownRecordIsSkipped) {
  Envelope e = sample_envelope();
  std::string body = "body\r\n";
  EncodedHeader h = encode_header(e);
  std::size_t b = h.text.find("B ");
  h.text.insert(b, "Y a later version's record\n");
  h.text.replace(b + 27 + 2, kSizeDigits, format_size_field(body.size()));
  std::string file = h.text + body + encode_trailer(body.size(), crc32c(h.text), crc32c(body));
  Parsed p = parse_bytes(file, Check::kBody);
  ASSERT_TRUE(p.info) << p.error;
  EXPECT_EQ(p.info->envelope, e);
}

TEST(QueueFile, ProgramRecordsFollowTheirRecipient) {
  Envelope e = sample_envelope();
  e.programs[1] = "1000 /usr/bin/archive --all";
  EncodedHeader h = encode_header(e);
  EXPECT_NE(h.text.find("R rcpt1@example.net\nP 1000 /usr/bin/archive --all\nB "),
            std::string::npos);
  Parsed p = parse_bytes(build_file(e, "x\r\n"), Check::kBody);
  ASSERT_TRUE(p.info) << p.error;
  EXPECT_EQ(p.info->envelope, e);
  // A P record needs an R before it, one P per R; a program for a missing recipient is refused.
  EXPECT_FALSE(
      parse_envelope("ESTAFETTE-QUEUE 1\nI 0LWQ3K9ZA-02BXF-00A1K3P0\nT 1\nF a@b\n"
                     "P 0 x\nR a@b\nB 00000000000000000000\n",
                     nullptr));
  EXPECT_FALSE(
      parse_envelope("ESTAFETTE-QUEUE 1\nI 0LWQ3K9ZA-02BXF-00A1K3P0\nT 1\nF a@b\n"
                     "R a@b\nP 0 x\nP 0 y\nB 00000000000000000000\n",
                     nullptr));
  e.programs[7] = "0 x";
  EXPECT_EQ(envelope_problem(e), "program for a missing recipient");
}

TEST(QueueFile, DsnRecordsRoundTrip) {
  Envelope e = testing::test_envelope(3);
  e.id = "0LWQ3K9ZA-02BXF-00A1K3P0";
  e.ret = "HDRS";
  e.envid = "QQ+2B1";
  e.dsn = {{"SUCCESS,FAILURE", "rfc822;A+2Bx@example.net"}, {}, {"NEVER", ""}};
  EncodedHeader h = encode_header(e);
  EXPECT_NE(h.text.find("M HDRS\nE QQ+2B1\nR rcpt0@example.net\nN SUCCESS,FAILURE\n"
                        "O rfc822;A+2Bx@example.net\nR rcpt1@example.net\nR rcpt2@example.net\n"
                        "N NEVER\nB "),
            std::string::npos)
      << h.text;
  std::string body = "Subject: x\r\n\r\nbody\r\n";
  Parsed p = parse_bytes(build_file(e, body), Check::kBody);
  ASSERT_TRUE(p.info) << p.error;
  EXPECT_EQ(p.info->envelope, e);
  EXPECT_EQ(p.info->envelope.dsn_of(1), RecipientDsn{});
  EXPECT_EQ(p.info->envelope.dsn_of(7), RecipientDsn{});  // past the end: none given
}

TEST(QueueFile, RequireTlsRoundTripsAndIsCheckedOnRead) {
  Envelope e = testing::test_envelope(1);
  e.id = "0LWQ3K9ZA-02BXF-00A1K3P0";
  e.require_tls = true;
  std::string file = build_file(e, "b\r\n");
  EXPECT_NE(file.find("\nQ 1\n"), std::string::npos);
  Parsed p = parse_bytes(file);
  ASSERT_TRUE(p.info) << p.error;
  EXPECT_TRUE(p.info->envelope.require_tls);
  e.require_tls = false;  // older records have no Q: not required
  Parsed old = parse_bytes(build_file(e, "b\r\n"));
  ASSERT_TRUE(old.info) << old.error;
  EXPECT_FALSE(old.info->envelope.require_tls);
  std::string bad = file;
  bad.replace(bad.find("\nQ 1\n"), 5, "\nQ 2\n");
  EXPECT_FALSE(parse_bytes(bad).info);
  std::string twice = file;
  twice.replace(twice.find("\nQ 1\n"), 5, "\nQ 1\nQ 1\n");
  EXPECT_FALSE(parse_bytes(twice).info);
}

TEST(QueueFile, QuarantineRoundTripsAndIsCheckedOnRead) {
  Envelope e = testing::test_envelope(1);
  e.id = "0LWQ3K9ZA-02BXF-00A1K3P0";
  e.quarantine = "spam score 42";
  std::string file = build_file(e, "b\r\n");
  EXPECT_NE(file.find("\nZ spam score 42\n"), std::string::npos);
  Parsed p = parse_bytes(file);
  ASSERT_TRUE(p.info) << p.error;
  EXPECT_EQ(p.info->envelope.quarantine, "spam score 42");
  e.quarantine.clear();  // older records have no Z: not quarantined
  Parsed old = parse_bytes(build_file(e, "b\r\n"));
  ASSERT_TRUE(old.info) << old.error;
  EXPECT_EQ(old.info->envelope.quarantine, "");
  EXPECT_EQ(old.info->envelope, e);
  std::string twice = file;
  twice.replace(twice.find("\nZ spam"), 8, "\nZ x\nZ spam");
  EXPECT_FALSE(parse_bytes(twice).info);
}

TEST(QueueFile, DsnOnlyOnTheFirstRecipients) {
  Envelope e = testing::test_envelope(3);
  e.id = "0LWQ3K9ZA-02BXF-00A1K3P0";
  e.dsn = {{"DELAY", ""}};  // shorter than recipients: the rest have none
  Parsed p = parse_bytes(build_file(e, "b\r\n"));
  ASSERT_TRUE(p.info) << p.error;
  EXPECT_EQ(p.info->envelope.dsn.size(), 3u);  // read back parallel to the recipients
  EXPECT_EQ(p.info->envelope.dsn_of(0).notify, "DELAY");
  EXPECT_EQ(p.info->envelope.dsn_of(2).notify, "");
}

struct BadDsnHeader {
  std::string records;  // inserted before "B "
  std::string error;
};

class QueueFileBadDsn : public ::testing::TestWithParam<BadDsnHeader> {};

TEST_P(QueueFileBadDsn, IsRejected) {
  Envelope e = sample_envelope();
  e.recipients.clear();
  std::string body = "b\r\n";
  EncodedHeader h = encode_header(e);
  std::size_t b = h.text.find("B ");
  h.text.insert(b, GetParam().records);
  std::size_t digits = h.text.find("B ") + 2;
  h.text.replace(digits, kSizeDigits, format_size_field(body.size()));
  std::string file = h.text + body + encode_trailer(body.size(), crc32c(h.text), crc32c(body));
  Parsed p = parse_bytes(file);
  EXPECT_FALSE(p.info);
  EXPECT_EQ(p.error, GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, QueueFileBadDsn,
    ::testing::Values(BadDsnHeader{"N NEVER\nR a@b\n", "N before R"},
                      BadDsnHeader{"O rfc822;a@b\nR a@b\n", "O before R"},
                      BadDsnHeader{"R a@b\nN NEVER\nN DELAY\n", "duplicate record N"},
                      BadDsnHeader{"R a@b\nO rfc822;x\nO rfc822;y\n", "duplicate record O"},
                      BadDsnHeader{"R a@b\nN \n", "empty record N"},
                      BadDsnHeader{"M FULL\nM HDRS\nR a@b\n", "duplicate record M"},
                      BadDsnHeader{"E x\nE y\nR a@b\n", "duplicate record E"}));

TEST(QueueFile, TruncatedAtEveryLengthIsRejected) {
  std::string full = build_file(sample_envelope(), testing::test_body(100));
  ASSERT_TRUE(parse_bytes(full).info);
  for (std::size_t len = 0; len < full.size(); ++len) {
    EXPECT_FALSE(parse_bytes(full.substr(0, len)).info) << "length " << len;
  }
}

struct Corruption {
  std::string name;
  std::function<void(std::string&)> mutate;
  bool structure_ok;  // still passes Check::kStructure (only the body crc catches it)
};

void PrintTo(const Corruption& c, std::ostream* os) {
  *os << c.name;
}

class QueueFileCorrupt : public ::testing::TestWithParam<Corruption> {};

TEST_P(QueueFileCorrupt, IsRejected) {
  std::string file = build_file(sample_envelope(), "Subject: x\r\n\r\nhello\r\n");
  GetParam().mutate(file);
  EXPECT_EQ(static_cast<bool>(parse_bytes(file, Check::kStructure).info), GetParam().structure_ok);
  EXPECT_FALSE(parse_bytes(file, Check::kBody).info);
}

void replace(std::string& s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.replace(at, from.size(), to);
}

INSTANTIATE_TEST_SUITE_P(
    Queue, QueueFileCorrupt,
    ::testing::Values(
        Corruption{"NoTrailer", [](std::string& s) { s.resize(s.rfind("\nEND ")); }, false},
        Corruption{"ByteAfterTrailer", [](std::string& s) { s += "x"; }, false},
        Corruption{"TrailerNewlineMissing", [](std::string& s) { s.pop_back(); }, false},
        Corruption{"BadMagic", [](std::string& s) { s[0] = 'e'; }, false},
        Corruption{"HeaderByteFlipped", [](std::string& s) { replace(s, "alice", "alicf"); },
                   false},
        Corruption{"RecipientDropped",
                   [](std::string& s) { replace(s, "R rcpt1@example.net\n", ""); }, false},
        Corruption{
            "SizeTooLarge",
            [](std::string& s) { replace(s, "B 00000000000000000021", "B 00000000000000000022"); },
            false},
        Corruption{"TrailerSizeWrong", [](std::string& s) { replace(s, "\nEND 21 ", "\nEND 20 "); },
                   false},
        Corruption{"BodyByteFlipped", [](std::string& s) { replace(s, "hello", "hellp"); }, true},
        Corruption{"Empty", [](std::string& s) { s.clear(); }, false}),
    [](const auto& info) { return info.param.name; });

struct BadEnvelope {
  std::string name;
  std::function<void(Envelope&)> mutate;
};

void PrintTo(const BadEnvelope& c, std::ostream* os) {
  *os << c.name;
}

class QueueFileBadEnvelope : public ::testing::TestWithParam<BadEnvelope> {};

TEST_P(QueueFileBadEnvelope, EncodeThrowsEinval) {
  Envelope e = sample_envelope();
  GetParam().mutate(e);
  EXPECT_FALSE(envelope_problem(e).empty());
  try {
    encode_header(e);
    FAIL() << "no exception";
  } catch (const std::system_error& err) {
    EXPECT_EQ(err.code(), std::errc::invalid_argument);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Queue, QueueFileBadEnvelope,
    ::testing::Values(
        BadEnvelope{"SenderCrlf", [](Envelope& e) { e.sender = "a@b\r\nR evil@x"; }},
        BadEnvelope{"RecipientLf", [](Envelope& e) { e.recipients.push_back("x\n"); }},
        BadEnvelope{"HeloNul", [](Envelope& e) { e.helo = std::string("h\0x", 3); }},
        BadEnvelope{"IpCr", [](Envelope& e) { e.client_ip = "1.2.3.4\r"; }},
        BadEnvelope{"IdSlash", [](Envelope& e) { e.id = "../x"; }},
        BadEnvelope{"IdEmpty", [](Envelope& e) { e.id.clear(); }},
        BadEnvelope{"EnvidLf", [](Envelope& e) { e.envid = "a\nR x@y"; }},
        BadEnvelope{"QuarantineLf", [](Envelope& e) { e.quarantine = "spam\nR evil@x"; }},
        BadEnvelope{"OrcptCr",
                    [](Envelope& e) {
                      e.dsn = {{"", "rfc822;a\r"}};
                    }},
        BadEnvelope{"MoreDsnThanRecipients",
                    [](Envelope& e) { e.dsn.resize(e.recipients.size() + 1); }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace estafette::queue
