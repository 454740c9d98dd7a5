// courierd's bounces: the RFC 3464 report is parsed back (MIME structure, per-message and
// per-recipient fields, original headers), the wire form is CRLF and dot-stuffed, and, when
// python3 is there, Python's email package agrees with the structure.
#include "courierd/dsn.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "lib/smtp/dotstuff.h"

namespace estafette::courierd {
namespace {

struct StatusCase {
  const char* reply;
  bool expired;
  const char* status;
};

class CourierdDsnStatus : public ::testing::TestWithParam<StatusCase> {};

TEST_P(CourierdDsnStatus, FromTheEnhancedCode) {
  EXPECT_EQ(dsn_status(GetParam().reply, GetParam().expired), GetParam().status)
      << GetParam().reply;
}

INSTANTIATE_TEST_SUITE_P(
    Replies, CourierdDsnStatus,
    ::testing::Values(StatusCase{"550 5.1.1 <a@b>: user unknown", false, "5.1.1"},
                      StatusCase{"552-5.2.2 mailbox full", false, "5.2.2"},
                      StatusCase{"554 5.7.125 blocked", false, "5.7.125"},
                      StatusCase{"550 user unknown", false, "5.0.0"},
                      StatusCase{"", false, "5.0.0"}, StatusCase{"garbage", false, "5.0.0"},
                      StatusCase{"550 5.1 not a code", false, "5.0.0"},
                      StatusCase{"550 6.1.1 bad class", false, "5.0.0"},
                      StatusCase{"451 4.4.1 no answer", true, "4.4.1"},
                      StatusCase{"451 try later", true, "4.4.7"},
                      StatusCase{"550 5.1.1 expired but permanent", true, "5.1.1"},
                      StatusCase{"451 4.4.1 temp but not expired", false, "5.0.0"}));

TEST(CourierdDsn, DatesAndRemoteNames) {
  EXPECT_EQ(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(1700000000), "Tue, 14 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(remote_host_name("mx.example.com[192.0.2.1]:25"), "mx.example.com");
  EXPECT_EQ(remote_host_name("relay.test:2525"), "relay.test");
  EXPECT_EQ(remote_host_name("host"), "host");
  EXPECT_EQ(remote_host_name("[192.0.2.1]:25"), "192.0.2.1");
  EXPECT_EQ(remote_host_name("[::1]:25"), "::1");
}

DsnRequest sample_request() {
  DsnRequest r;
  r.hostname = "mx.estafette.test";
  r.message_id = "0BOUNCE-1-2";
  r.queue_id = "0ORIG-3-4";
  r.sender = "alice@origin.test";
  r.arrival = 1700000000;
  r.now = 1700000100;
  r.recipients = {
      {"bob@remote.test", "550 5.1.1 <bob@remote.test>: user unknown", "mx.remote.test", false},
      {"carol@remote.test", "451 4.4.1 connection timed out\r\n451 second line", "", true},
      {"dave@local.test", "550 bad mailbox name", "", false}};
  r.original_headers =
      "From: Alice <alice@origin.test>\nTo: bob@remote.test\nSubject: hello\n.Dotted: header\n";
  return r;
}

// compose_dsn()'s notice in plain form (un-dot-stuffed, LF line ends).
std::string plain_dsn(const DsnRequest& r) {
  std::string plain;
  smtp::Unstuffer(true).feed(compose_dsn(r), plain);
  return plain;
}

// Splits a plain message into header fields (name -> value, continuation lines unfolded) and body.
std::pair<std::multimap<std::string, std::string>, std::string> split_message(
    const std::string& text) {
  std::multimap<std::string, std::string> fields;
  std::size_t pos = 0;
  std::string last;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') {
      auto it = fields.find(last);
      for (auto i = fields.begin(); i != fields.end(); ++i)
        if (i->first == last) it = i;
      it->second += " " + line.substr(1);
      continue;
    }
    auto colon = line.find(':');
    last = line.substr(0, colon);
    std::size_t v = colon + 1;
    while (v < line.size() && line[v] == ' ') ++v;
    fields.emplace(last, line.substr(v));
  }
  return {fields, pos < text.size() ? text.substr(pos) : ""};
}

std::string field(const std::multimap<std::string, std::string>& f, const std::string& name) {
  auto it = f.find(name);
  return it == f.end() ? "<missing>" : it->second;
}

TEST(CourierdDsn, WireFormIsCrlfAndDotStuffed) {
  std::string wire = compose_dsn(sample_request());
  ASSERT_FALSE(wire.empty());
  EXPECT_EQ(wire.substr(wire.size() - 2), "\r\n");
  for (std::size_t i = 0; i < wire.size(); ++i) {
    if (wire[i] == '\n') {
      ASSERT_TRUE(i > 0 && wire[i - 1] == '\r') << "bare LF at " << i;
    }
    if (wire[i] == '\r') {
      ASSERT_TRUE(i + 1 < wire.size() && wire[i + 1] == '\n');
    }
  }
  EXPECT_NE(wire.find("\r\n..Dotted: header\r\n"), std::string::npos);
  EXPECT_EQ(wire.find("\r\n.\r\n"), std::string::npos);
}

// A server may answer with a 64 KB multi-line reply; the notice's own lines stay within
// RFC 5322's 998 characters (found by tests/fuzz/dsn_compose_fuzz.cc: corpus long_reply).
TEST(CourierdDsn, LongRepliesAreCutToLineLimit) {
  DsnRequest r = sample_request();
  std::string reply = "550-5.7.1 " + std::string(900, 'x');
  for (int i = 0; i < 60; ++i) reply += "\r\n550-5.7.1 " + std::string(900, 'y');
  r.recipients[0].reply = reply;
  r.recipients[0].recipient = std::string(64, 'b') + "@" + std::string(250, 'r') + ".test";
  r.recipients[1].reply = reply;  // expired: a prefix in front of the reply
  for (auto action : {DsnAction::Failed, DsnAction::Delayed}) {
    for (auto& f : r.recipients) f.action = action;
    std::string wire = compose_dsn(r);
    for (std::size_t start = 0, end; start < wire.size(); start = end + 2) {
      end = wire.find("\r\n", start);
      ASSERT_NE(end, std::string::npos);
      EXPECT_LE(end - start, 998u) << wire.substr(start, 80);
    }
    std::string plain = plain_dsn(r);
    EXPECT_NE(plain.find("Diagnostic-Code: smtp; 550-5.7.1 xxx"), std::string::npos);
    EXPECT_NE(plain.find("xxx...\n"), std::string::npos);
    EXPECT_NE(plain.find("last reply: 550-5.7.1 xxx"), std::string::npos);
  }
}

TEST(CourierdDsn, ParsesBackAsMultipartReport) {
  std::string plain = plain_dsn(sample_request());
  auto [headers, body] = split_message(plain);
  EXPECT_EQ(field(headers, "From"), "MAILER-DAEMON@mx.estafette.test (Mail Delivery System)");
  EXPECT_EQ(field(headers, "To"), "<alice@origin.test>");
  EXPECT_EQ(field(headers, "Subject"), "Undelivered Mail Returned to Sender");
  EXPECT_EQ(field(headers, "Auto-Submitted"), "auto-replied");
  EXPECT_EQ(field(headers, "MIME-Version"), "1.0");
  EXPECT_EQ(field(headers, "Message-ID"), "<0BOUNCE-1-2@mx.estafette.test>");
  EXPECT_EQ(field(headers, "Date"), "Tue, 14 Nov 2023 22:15:00 +0000");
  std::string ctype = field(headers, "Content-Type");
  EXPECT_EQ(ctype.rfind("multipart/report; report-type=delivery-status;", 0), 0u) << ctype;
  auto b = ctype.find("boundary=\"");
  ASSERT_NE(b, std::string::npos);
  std::string boundary = ctype.substr(b + 10, ctype.find('"', b + 10) - b - 10);
  ASSERT_FALSE(boundary.empty());

  // Parts between "--boundary" lines; the last delimiter is "--boundary--".
  std::vector<std::string> parts;
  std::string delim = "\n--" + boundary;
  std::size_t pos = ("\n" + body).find(delim);
  ASSERT_NE(pos, std::string::npos);
  std::string rest = ("\n" + body).substr(pos + delim.size());
  for (;;) {
    ASSERT_FALSE(rest.empty());
    if (rest.rfind("--", 0) == 0) break;
    ASSERT_EQ(rest[0], '\n');
    auto next = rest.find(delim);
    ASSERT_NE(next, std::string::npos);
    parts.push_back(rest.substr(1, next - 1));
    rest = rest.substr(next + delim.size());
  }
  ASSERT_EQ(parts.size(), 3u);

  auto [h1, b1] = split_message(parts[0]);
  EXPECT_EQ(field(h1, "Content-Type"), "text/plain; charset=us-ascii");
  EXPECT_NE(b1.find("<bob@remote.test>: 550 5.1.1 <bob@remote.test>: user unknown"),
            std::string::npos);
  EXPECT_NE(b1.find("<carol@remote.test>: delivery time expired"), std::string::npos);
  EXPECT_NE(b1.find("<dave@local.test>: 550 bad mailbox name"), std::string::npos);

  auto [h2, b2] = split_message(parts[1]);
  EXPECT_EQ(field(h2, "Content-Type"), "message/delivery-status");
  // The report: per-message fields, then one group per recipient, separated by empty lines.
  std::vector<std::multimap<std::string, std::string>> groups;
  std::string report = b2;
  while (!report.empty()) {
    auto [g, more] = split_message(report);
    if (!g.empty()) groups.push_back(g);
    report = more;
  }
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(field(groups[0], "Reporting-MTA"), "dns; mx.estafette.test");
  EXPECT_EQ(field(groups[0], "Arrival-Date"), "Tue, 14 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(field(groups[1], "Final-Recipient"), "rfc822; bob@remote.test");
  EXPECT_EQ(field(groups[1], "Action"), "failed");
  EXPECT_EQ(field(groups[1], "Status"), "5.1.1");
  EXPECT_EQ(field(groups[1], "Remote-MTA"), "dns; mx.remote.test");
  EXPECT_EQ(field(groups[1], "Diagnostic-Code"), "smtp; 550 5.1.1 <bob@remote.test>: user unknown");
  EXPECT_EQ(field(groups[2], "Final-Recipient"), "rfc822; carol@remote.test");
  EXPECT_EQ(field(groups[2], "Status"), "4.4.1");
  EXPECT_EQ(groups[2].count("Remote-MTA"), 0u);
  EXPECT_EQ(field(groups[2], "Diagnostic-Code"),
            "smtp; delivery time expired; last reply: 451 4.4.1 connection timed out 451 second "
            "line");
  EXPECT_EQ(field(groups[3], "Status"), "5.0.0");

  auto [h3, b3] = split_message(parts[2]);
  EXPECT_EQ(field(h3, "Content-Type"), "text/rfc822-headers");
  EXPECT_EQ(b3,
            "From: Alice <alice@origin.test>\nTo: bob@remote.test\nSubject: hello\n"
            ".Dotted: header\n");
}

TEST(CourierdDsn, ReadsOriginalHeadersFromTheQueueFile) {
  char path[] = "/tmp/estafette-dsn-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string prefix = "QUEUE-FILE-HEADER\n";
  std::string body =
      "Subject: hi\r\n..Dot: x\r\nX-Long: a\r\n b\r\n\r\nbody line\r\n..dotted body\r\n";
  std::string content = prefix + body + "TRAILER";
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(fd);
  EXPECT_EQ(read_original_headers(path, prefix.size(), body.size()),
            "Subject: hi\n.Dot: x\nX-Long: a\n b\n");
  // Body starting with an empty line: no headers at all.
  EXPECT_EQ(read_original_headers(path, prefix.size() + body.find("\r\n\r\n") + 2, 2), "");
  // A header section cut by max_bytes ends at the last complete line.
  EXPECT_EQ(read_original_headers(path, prefix.size(), body.size(), 25), "Subject: hi\n.Dot: x\n");
  EXPECT_EQ(read_original_headers("/nonexistent/file", 0, 10), "");
  ::unlink(path);
}

TEST(CourierdDsn, PythonEmailPackageAgrees) {
  if (::system("python3 -c 'import email' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 not available";
  char path[] = "/tmp/estafette-dsn-py-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string plain;
  smtp::Unstuffer(false).feed(compose_dsn(sample_request()), plain);
  ASSERT_EQ(::write(fd, plain.data(), plain.size()), static_cast<ssize_t>(plain.size()));
  ::close(fd);
  std::string script =
      "import email, sys\n"
      "m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n"
      "assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
      "assert m.get_param('report-type') == 'delivery-status'\n"
      "p = m.get_payload()\n"
      "assert [x.get_content_type() for x in p] == ['text/plain', 'message/delivery-status',"
      " 'text/rfc822-headers'], [x.get_content_type() for x in p]\n"
      "ds = p[1].get_payload()\n"
      "assert len(ds) == 4, len(ds)\n"
      "assert ds[0]['Reporting-MTA'] == 'dns; mx.estafette.test'\n"
      "assert ds[1]['Final-Recipient'] == 'rfc822; bob@remote.test'\n"
      "assert ds[1]['Status'] == '5.1.1'\n"
      "assert not m.defects and not any(x.defects for x in p)\n";
  std::string cmd = "python3 -c \"$(cat <<'PYEOF'\n" + script + "PYEOF\n)\" " + path;
  int rc = ::system(cmd.c_str());
  ::unlink(path);
  EXPECT_EQ(rc, 0);
}

// The report's groups (per-message fields first) of a notice, parsed back.
std::vector<std::multimap<std::string, std::string>> report_groups(const std::string& plain) {
  const std::string start = "Content-Type: message/delivery-status\n\n";
  auto pos = plain.find(start);
  EXPECT_NE(pos, std::string::npos);
  std::string report = plain.substr(pos + start.size());
  report = report.substr(0, report.find("\n--"));
  std::vector<std::multimap<std::string, std::string>> groups;
  while (!report.empty()) {
    auto [g, more] = split_message(report);
    if (!g.empty()) groups.push_back(g);
    report = more;
  }
  return groups;
}

TEST(CourierdDsn, OriginalEnvelopeIdAndRecipient) {
  DsnRequest r = sample_request();
  r.envid = "QQ+2B1";
  r.recipients[0].orcpt = "rfc822;Bob+2Bx@remote.test";
  r.recipients[1].orcpt = "rfc822;+zz";  // unreadable: the recipient as received
  std::string plain = plain_dsn(r);
  auto groups = report_groups(plain);
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(field(groups[0], "Original-Envelope-Id"), "QQ+1");
  EXPECT_EQ(field(groups[1], "Original-Recipient"), "rfc822; Bob+x@remote.test");
  EXPECT_EQ(field(groups[2], "Original-Recipient"), "rfc822; carol@remote.test");
  EXPECT_EQ(field(groups[3], "Original-Recipient"), "rfc822; dave@local.test");
  // No ENVID, no Original-Envelope-Id.
  plain = plain_dsn(sample_request());
  EXPECT_EQ(report_groups(plain)[0].count("Original-Envelope-Id"), 0u);
}

TEST(CourierdDsn, DelayWarningAndSuccessNotices) {
  DsnRequest r = sample_request();
  r.retry_until = 1700086400;
  r.recipients = {{"bob@remote.test", "451 4.4.1 no answer", "", false, DsnAction::Delayed},
                  {"eve@remote.test", "", "", false, DsnAction::Delayed}};
  std::string plain = plain_dsn(r);
  EXPECT_NE(plain.find("Subject: Delayed Mail (still being retried)\n"), std::string::npos);
  auto groups = report_groups(plain);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(field(groups[1], "Action"), "delayed");
  EXPECT_EQ(field(groups[1], "Status"), "4.4.1");
  EXPECT_EQ(field(groups[1], "Will-Retry-Until"), "Wed, 15 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(field(groups[2], "Status"), "4.0.0");
  EXPECT_EQ(groups[2].count("Diagnostic-Code"), 0u);  // not tried yet
  EXPECT_NE(plain.find("Content-Type: text/rfc822-headers\n"), std::string::npos);

  r.recipients = {{"bob@local.test", "250 2.0.0 ok", "", false, DsnAction::Delivered},
                  {"carol@remote.test", "250 queued", "mx.remote.test", false, DsnAction::Relayed}};
  plain = plain_dsn(r);
  EXPECT_NE(plain.find("Subject: Successful Mail Delivery Report\n"), std::string::npos);
  groups = report_groups(plain);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(field(groups[1], "Action"), "delivered");
  EXPECT_EQ(field(groups[1], "Status"), "2.0.0");
  EXPECT_EQ(field(groups[2], "Action"), "relayed");
  EXPECT_EQ(field(groups[2], "Remote-MTA"), "dns; mx.remote.test");
  EXPECT_EQ(groups[2].count("Will-Retry-Until"), 0u);
}

TEST(CourierdDsn, WholeMessageAttachedAsMessageRfc822) {
  DsnRequest r = sample_request();
  r.original_message = "From: a@b\r\nSubject: hi\r\n\r\n.leading dot\r\nlast";
  std::string wire = compose_dsn(r);
  EXPECT_NE(wire.find("\r\n..leading dot\r\nlast\r\n"), std::string::npos);
  std::string plain;
  smtp::Unstuffer(true).feed(wire, plain);
  EXPECT_NE(plain.find("Content-Type: message/rfc822\n\nFrom: a@b\nSubject: hi\n\n"
                       ".leading dot\nlast\n\n--"),
            std::string::npos)
      << plain;
  EXPECT_EQ(plain.find("text/rfc822-headers"), std::string::npos);
}

TEST(CourierdDsn, ReadsTheWholeOriginalUpToALimit) {
  char path[] = "/tmp/estafette-dsn-whole-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string prefix = "HDR\n";
  std::string body = "Subject: hi\r\n\r\n..dotted\r\nend\r\n";
  std::string content = prefix + body + "TRAILER";
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(fd);
  EXPECT_EQ(read_original_message(path, prefix.size(), body.size(), 1000),
            "Subject: hi\n\n.dotted\nend\n");
  EXPECT_EQ(read_original_message(path, prefix.size(), body.size(), body.size() - 1), "");
  EXPECT_EQ(read_original_message("/nonexistent", 0, 10, 1000), "");
  ::unlink(path);
}

}  // namespace
}  // namespace estafette::courierd
