// lib/tlsrpt: the aggregate and its journal (round trip, hostile lines), the _smtp._tls TXT
// record as a table, the JSON report and the message (parsed back with Poco).
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lib/tlsrpt/aggregate.h"
#include "lib/tlsrpt/report.h"

namespace estafette::tlsrpt {
namespace {

Policy sts_policy() {
  return {PolicyType::Sts,
          "example.net",
          {"version: STSv1", "mode: enforce", "mx: *.example.net", "max_age: 86400"},
          {"*.example.net"}};
}

Failure expired() {
  return {ResultType::CertificateExpired, "127.0.0.1", "mx1.example.net", "127.0.0.2",
          "certificate has expired"};
}

TEST(TlsrptAggregate, CountsPerPolicyAndFailureRow) {
  Aggregate a;
  a.add_success(sts_policy());
  a.add_success(sts_policy(), 4);
  a.add_failure(sts_policy(), expired());
  a.add_failure(sts_policy(), expired());
  a.add_success({PolicyType::NoPolicyFound, "other.example", {}, {}});
  ASSERT_EQ(a.policies().size(), 2u);
  const Counts& c = a.policies().at(sts_policy());
  EXPECT_EQ(c.successes, 5u);
  EXPECT_EQ(c.failures, 2u);
  ASSERT_EQ(c.details.size(), 1u);
  EXPECT_EQ(c.details.begin()->second, 2u);
  EXPECT_EQ(a.domains(), (std::vector<std::string>{"example.net", "other.example"}));
}

TEST(TlsrptAggregate, BoundedPoliciesAndRows) {
  Aggregate a(Limits{.policies = 2, .details = 1});
  a.add_success({PolicyType::NoPolicyFound, "a.example", {}, {}});
  a.add_success({PolicyType::NoPolicyFound, "b.example", {}, {}});
  a.add_success({PolicyType::NoPolicyFound, "c.example", {}, {}}, 3);
  EXPECT_EQ(a.policies().size(), 2u);
  EXPECT_EQ(a.dropped(), 3u);
  Failure other = expired();
  other.result = ResultType::CertificateNotTrusted;
  a.add_failure({PolicyType::NoPolicyFound, "a.example", {}, {}}, expired());
  a.add_failure({PolicyType::NoPolicyFound, "a.example", {}, {}}, other);
  const Counts& c = a.policies().at({PolicyType::NoPolicyFound, "a.example", {}, {}});
  EXPECT_EQ(c.failures, 2u);  // the second row did not fit, the session still counts
  EXPECT_EQ(c.details.size(), 1u);
}

TEST(TlsrptAggregate, TextIsCutAndMadePrintable) {
  Aggregate a;
  Failure f = expired();
  f.additional = std::string(5000, 'x') + "\r\n";
  f.receiving_mx = "mx\x01\xff";
  a.add_failure(sts_policy(), f);
  const auto& row = a.policies().begin()->second.details.begin()->first;
  EXPECT_EQ(row.additional.size(), kMaxText);
  EXPECT_EQ(row.receiving_mx, "mx??");
}

TEST(TlsrptJournal, RoundTrip) {
  Aggregate a;
  a.add_success(sts_policy(), 7);
  a.add_failure(sts_policy(), expired(), 2);
  a.add_failure({PolicyType::Tlsa, "dane.example", {"3 1 1 ABCD"}, {"mx.dane.example"}},
                {ResultType::ValidationFailure, "::1", "mx.dane.example", "::1", "no match"});
  Aggregate b;
  EXPECT_EQ(b.merge_journal(a.journal()), 0u);
  EXPECT_EQ(b.journal(), a.journal());
  // Two writers' lines for one policy add up.
  EXPECT_EQ(b.merge_journal(a.journal()), 0u);
  EXPECT_EQ(b.policies().at(sts_policy()).successes, 14u);
  EXPECT_EQ(b.policies().at(sts_policy()).failures, 4u);
  EXPECT_EQ(b.policies().at(sts_policy()).details.at(expired()), 4u);
}

TEST(TlsrptJournal, HostileLinesAreRefusedAndCounted) {
  const std::vector<std::string> bad = {
      "not json",
      "[]",
      "{}",
      R"({"type":"sts","domain":"","ok":1})",
      R"({"type":"bogus","domain":"a.example","ok":1})",
      R"({"type":"sts","domain":"a.example","ok":-1})",
      R"({"type":"sts","domain":"a.example","ok":1.5})",
      R"({"type":"sts","domain":"a.example","ok":0,"fail":0})",
      R"({"type":"sts","domain":"a.example","ok":999999999999999999})",
      R"({"type":"sts","domain":"a\u0001.example","ok":1})",
      R"({"type":"sts","domain":"a.example","strings":[1],"ok":1})",
      R"({"type":"sts","domain":"a.example","fail":1,"details":[{"result":"nope","n":1}]})",
      R"({"type":"sts","domain":"a.example","fail":1,"details":[{"result":"dane-required","n":2}]})",
      R"({"type":"sts","domain":"a.example","ok":1,"x":[[[[[[]]]]]]})",
      "{\"type\":\"sts\",\"domain\":\"a.example\",\"ok\":1,\"x\":\"" +
          std::string(kMaxJournalLine, 'a') + "\"}",
      std::string(100000, '['),
  };
  for (const auto& line : bad) {
    Aggregate a;
    EXPECT_EQ(a.merge_journal(line + "\n"), 1u) << line.substr(0, 80);
    EXPECT_TRUE(a.empty()) << line.substr(0, 80);
  }
  Aggregate a;
  EXPECT_EQ(a.merge_journal(R"({"type":"sts","domain":"a.example","ok":2})"
                            "\n\ngarbage\n"
                            R"({"type":"no-policy-found","domain":"b.example","fail":3})"),
            1u);
  EXPECT_EQ(a.policies().size(), 2u);
  EXPECT_EQ(a.policies().at({PolicyType::NoPolicyFound, "b.example", {}, {}}).failures, 3u);
}

struct TxtCase {
  std::vector<std::string> records;
  bool ok;
  std::vector<std::string> mailto;
  std::vector<std::string> https;
};

TEST(TlsrptTxt, Table) {
  const std::vector<TxtCase> cases = {
      {{"v=TLSRPTv1; rua=mailto:tlsrpt@example.net"}, true, {"tlsrpt@example.net"}, {}},
      {{"v=TLSRPTv1;rua=mailto:a@example.net,https://r.example/x"},
       true,
       {"a@example.net"},
       {"https://r.example/x"}},
      {{"v=TLSRPTv1 ; rua = mailto:a@example.net"}, false, {}, {}},  // "rua =" is no rua field
      {{"v=TLSRPTv1; rua=MAILTO:r%2Bx@example.net?subject=hi ;"}, true, {"r+x@example.net"}, {}},
      {{"v=TLSRPTv1; rua=mailto:not-an-address"}, false, {}, {}},
      {{"v=TLSRPTv1; rua=mailto:a@[127.0.0.1]"}, false, {}, {}},
      {{"v=TLSRPTv1; rua=mailto:a@example.net%"}, false, {}, {}},
      {{"v=TLSRPTv1; rua=ftp://x"}, false, {}, {}},
      {{"v=TLSRPTv1"}, false, {}, {}},
      {{"v=TLSRPTv10; rua=mailto:a@example.net"}, false, {}, {}},
      {{"v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@example.net"}, true, {"a@example.net"}, {}},
      {{"v=TLSRPTv1; rua=mailto:a@example.net", "v=TLSRPTv1; rua=mailto:b@example.net"},
       false,
       {},
       {}},
      {{"v=TLSRPTv1; rua=mailto:a@example.net; rua=mailto:b@example.net"}, false, {}, {}},
      {{}, false, {}, {}},
  };
  for (const auto& c : cases) {
    RuaResult r = parse_txt_records(c.records);
    std::string label = c.records.empty() ? "(none)" : c.records.back();
    EXPECT_EQ(r.ok, c.ok) << label << ": " << r.reason;
    if (!c.ok) continue;
    EXPECT_EQ(r.mailto, c.mailto) << label;
    EXPECT_EQ(r.https, c.https) << label;
  }
  std::string many = "v=TLSRPTv1; rua=";
  for (int i = 0; i < 50; ++i) many += "mailto:r" + std::to_string(i) + "@example.net,";
  EXPECT_EQ(parse_txt_record(many).mailto.size(), kMaxRua);
}

ReportInfo info() {
  return {"Estafette at mail.sender.example", "postmaster@sender.example", "mail.sender.example",
          1765065600};  // 2025-12-07T00:00:00Z
}

TEST(TlsrptReport, JsonHasTheFieldsOfRfc8460) {
  Aggregate a;
  a.add_success(sts_policy(), 5);
  a.add_failure(sts_policy(), expired(), 2);
  a.add_success({PolicyType::NoPolicyFound, "other.example", {}, {}});
  std::string json = report_json(a, "example.net", info());
  Poco::JSON::Parser parser;
  auto report = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(report->getValue<std::string>("organization-name"), "Estafette at mail.sender.example");
  EXPECT_EQ(report->getObject("date-range")->getValue<std::string>("start-datetime"),
            "2025-12-07T00:00:00Z");
  EXPECT_EQ(report->getObject("date-range")->getValue<std::string>("end-datetime"),
            "2025-12-07T23:59:59Z");
  EXPECT_EQ(report->getValue<std::string>("report-id"),
            "2025-12-07T00:00:00Z_example.net@mail.sender.example");
  auto policies = report->getArray("policies");
  ASSERT_EQ(policies->size(), 1u);  // other.example's policy is another report
  auto p = policies->getObject(0);
  EXPECT_EQ(p->getObject("policy")->getValue<std::string>("policy-type"), "sts");
  EXPECT_EQ(p->getObject("policy")->getArray("policy-string")->size(), 4u);
  EXPECT_EQ(p->getObject("policy")->getArray("mx-host")->getElement<std::string>(0),
            "*.example.net");
  EXPECT_EQ(p->getObject("summary")->getValue<int>("total-successful-session-count"), 5);
  EXPECT_EQ(p->getObject("summary")->getValue<int>("total-failure-session-count"), 2);
  auto d = p->getArray("failure-details")->getObject(0);
  EXPECT_EQ(d->getValue<std::string>("result-type"), "certificate-expired");
  EXPECT_EQ(d->getValue<std::string>("receiving-mx-hostname"), "mx1.example.net");
  EXPECT_EQ(d->getValue<int>("failed-session-count"), 2);
}

TEST(TlsrptReport, GzipRoundTripAndBomb) {
  std::string text(100000, 'x');
  std::string z = gzip(text);
  EXPECT_LT(z.size(), 1000u);
  EXPECT_EQ(z.substr(0, 2), "\x1f\x8b");
  EXPECT_EQ(gunzip(z, text.size()), text);
  EXPECT_THROW(gunzip(z, 1000), std::runtime_error);
  EXPECT_THROW(gunzip("not gzip at all", 1000), std::runtime_error);
}

TEST(TlsrptReport, MessageIsMultipartReport) {
  Aggregate a;
  a.add_success(sts_policy());
  std::string json = report_json(a, "example.net", info());
  std::string m = report_message(info(), "example.net", "tlsrpt@example.net", json,
                                 "Sun, 07 Dec 2025 01:00:00 +0000");
  EXPECT_NE(m.find("TLS-Report-Domain: example.net\r\n"), std::string::npos);
  EXPECT_NE(m.find("TLS-Report-Submitter: mail.sender.example\r\n"), std::string::npos);
  EXPECT_NE(m.find("Subject: Report Domain: example.net Submitter: mail.sender.example "
                   "Report-ID: <2025-12-07T00:00:00Z_example.net@mail.sender.example>\r\n"),
            std::string::npos);
  EXPECT_NE(m.find("multipart/report; report-type=\"tlsrpt\""), std::string::npos);
  EXPECT_NE(m.find("Content-Type: application/tlsrpt+gzip\r\n"), std::string::npos);
  EXPECT_NE(m.find("filename=\"mail.sender.example!example.net!1765065600!1765151999.json.gz\""),
            std::string::npos);
  for (std::size_t i = 0; (i = m.find('\n', i)) != std::string::npos; ++i)
    ASSERT_EQ(m[i - 1], '\r') << "bare LF at " << i;
  for (std::size_t start = 0, end; (end = m.find("\r\n", start)) != std::string::npos;
       start = end + 2)
    ASSERT_LE(end - start, 998u);
}

}  // namespace
}  // namespace estafette::tlsrpt
