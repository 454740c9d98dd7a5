// lib/auth/dovecot_protocol: the lines Estafette sends to Dovecot's auth-client socket and a
// table of the lines Dovecot sends (and malformed ones), plus tab-escaping round trips.
#include "lib/auth/dovecot_protocol.h"

#include <gtest/gtest.h>

namespace estafette::auth::dovecot {
namespace {

using Kind = ServerLine::Kind;

TEST(DovecotProtocol, TabEscapingRoundTrips) {
  const std::string raw = std::string("a\tb\nc\rd\001e\0f", 11);
  const std::string escaped = tab_escape(raw);
  EXPECT_EQ(escaped, std::string("a\001tb\001nc\001rd\0011e\0010f"));
  EXPECT_EQ(escaped.find('\t'), std::string::npos);
  EXPECT_EQ(escaped.find('\n'), std::string::npos);
  EXPECT_EQ(tab_unescape(escaped), raw);
  EXPECT_EQ(tab_unescape("x\001ly\001qz\001"), "x\nyqz\001");  // 'l' is LF too; unknown: itself
}

TEST(DovecotProtocol, HandshakeAndRequests) {
  EXPECT_EQ(handshake(4242), "VERSION\t1\t2\nCPID\t4242\n");
  AuthRequest r;
  r.id = 7;
  r.mechanism = "PLAIN";
  r.local_ip = "127.0.0.1";
  r.remote_ip = "::1";
  r.local_port = 587;
  r.remote_port = 40000;
  r.secured = true;
  r.has_initial_response = true;
  r.initial_response = "AGFsaWNlAHB3";
  EXPECT_EQ(format_auth(r),
            "AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=::1\tlport=587\t"
            "rport=40000\tsecured\tresp=AGFsaWNlAHB3\n");
  AuthRequest bare;
  bare.id = 1;
  bare.mechanism = "LOGIN";
  EXPECT_EQ(format_auth(bare), "AUTH\t1\tLOGIN\tservice=smtp\tnologin\n");
  bare.has_initial_response = true;  // "AUTH PLAIN =": an empty initial response
  EXPECT_EQ(format_auth(bare), "AUTH\t1\tLOGIN\tservice=smtp\tnologin\tresp=\n");
  EXPECT_EQ(format_cont(3, "cGFzcw=="), "CONT\t3\tcGFzcw==\n");
  // A field cannot smuggle a line or a field into the request.
  AuthRequest evil = bare;
  evil.remote_ip = "1.2.3.4\tsecured\nAUTH\t2";
  EXPECT_EQ(format_auth(evil).find("\tsecured"), std::string::npos);
  EXPECT_EQ(format_auth(evil).find('\n'), format_auth(evil).size() - 1);
}

struct LineCase {
  std::string line;
  Kind kind;
  std::uint32_t id = 0;
  std::string user{}, reason{}, data{};
  bool temporary = false;
};

void PrintTo(const LineCase& c, std::ostream* os) {
  *os << ::testing::PrintToString(c.line);
}

class DovecotServerLines : public ::testing::TestWithParam<LineCase> {};

TEST_P(DovecotServerLines, Parse) {
  const auto& c = GetParam();
  ServerLine l = parse_server_line(c.line);
  EXPECT_EQ(l.kind, c.kind);
  EXPECT_EQ(l.id, c.id);
  EXPECT_EQ(l.user, c.user);
  EXPECT_EQ(l.reason, c.reason);
  EXPECT_EQ(l.data, c.data);
  EXPECT_EQ(l.temporary, c.temporary);
}

INSTANTIATE_TEST_SUITE_P(
    Table, DovecotServerLines,
    ::testing::Values(
        LineCase{"VERSION\t1\t2", Kind::Version}, LineCase{"VERSION\t1", Kind::Malformed},
        LineCase{"VERSION\tx\t2", Kind::Malformed}, LineCase{"MECH\tPLAIN\tplaintext", Kind::Mech},
        LineCase{"MECH", Kind::Malformed}, LineCase{"SPID\t123", Kind::Spid},
        LineCase{"CUID\t9", Kind::Cuid}, LineCase{"COOKIE\tabcdef", Kind::Cookie},
        LineCase{"DONE", Kind::Done}, LineCase{"OK\t5\tuser=alice", Kind::Ok, 5, "alice"},
        LineCase{"OK\t5", Kind::Ok, 5}, LineCase{"OK\tfive\tuser=alice", Kind::Malformed},
        LineCase{"FAIL\t2x\tuser=bob", Kind::Malformed},  // no id from a number's prefix
        LineCase{"OK", Kind::Malformed}, LineCase{"OK\t99999999999\tuser=a", Kind::Malformed},
        LineCase{"FAIL\t6\tuser=bob\treason=Password mismatch", Kind::Fail, 6, "bob",
                 "Password mismatch"},
        LineCase{"FAIL\t6\ttemp", Kind::Fail, 6, "", "", "", true},
        LineCase{"FAIL\t6\tcode=temp_fail", Kind::Fail, 6, "", "", "", true},
        LineCase{"FAIL\t6\tuser=a\001tb", Kind::Fail, 6, "a\tb"},
        LineCase{"CONT\t8\tVXNlcm5hbWU6", Kind::Cont, 8, "", "", "VXNlcm5hbWU6"},
        LineCase{"CONT\t8", Kind::Malformed}, LineCase{"NOTIFY\twhatever", Kind::Unknown},
        LineCase{"", Kind::Unknown},
        LineCase{"OK\t1\tuser=" + std::string(kMaxLineLength, 'a'), Kind::Malformed}));

}  // namespace
}  // namespace estafette::auth::dovecot
