// lib/mtasts/http_response.h: the policy fetch's HTTP response, as a table; every input is also
// fed split at every byte (tests/unit/smtp/split_feeder.h) and must give the same outcome.
#include "lib/mtasts/http_response.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/smtp/split_feeder.h"

namespace estafette::mtasts {
namespace {

struct HttpCase {
  std::string name;
  std::string response;
  bool closed;           // the server closes after the bytes (finish())
  bool ok;               // Done with `body`
  std::string expected;  // ok: the body; else a part of the reason
};

class HttpResponseTest : public ::testing::TestWithParam<HttpCase> {};

constexpr std::size_t kMax = 64;

TEST_P(HttpResponseTest, EverySplitAgrees) {
  const auto& c = GetParam();
  for (const auto& split : smtp::testing::all_splits(c.response, 0)) {
    HttpResponse r(kMax);
    for (auto chunk : split.chunks) r.feed(chunk);
    if (c.closed) r.finish();
    if (c.ok) {
      ASSERT_EQ(r.state(), HttpResponse::State::Done) << split.name << ": " << r.reason();
      EXPECT_EQ(r.body(), c.expected) << split.name;
    } else {
      ASSERT_EQ(r.state(), HttpResponse::State::Failed) << split.name;
      EXPECT_NE(r.reason().find(c.expected), std::string::npos) << split.name << ": " << r.reason();
    }
  }
}

const std::string kHead = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n";

INSTANTIATE_TEST_SUITE_P(
    Table, HttpResponseTest,
    ::testing::Values(
        HttpCase{"length", kHead + "Content-Length: 5\r\n\r\nhello", false, true, "hello"},
        HttpCase{"length_extra_ignored", kHead + "Content-Length: 2\r\n\r\nhello", false, true,
                 "he"},
        HttpCase{"length_cut", kHead + "Content-Length: 9\r\n\r\nhello", true, false,
                 "before the end of the body"},
        HttpCase{"close_delimited", kHead + "\r\nhello", true, true, "hello"},
        HttpCase{"lf_only", "HTTP/1.0 200 OK\nContent-Type: text/plain; charset=utf-8\n\nhi", true,
                 true, "hi"},
        HttpCase{"chunked",
                 kHead + "Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\n"
                         "Trailer: x\r\n\r\n",
                 false, true, "hello"},
        HttpCase{"chunked_wins",
                 kHead + "Content-Length: 1\r\nTransfer-Encoding: Chunked\r\n\r\n"
                         "2\r\nab\r\n0\r\n\r\n",
                 false, true, "ab"},
        HttpCase{"chunked_cut", kHead + "Transfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n", true,
                 false, "before the end"},
        HttpCase{"chunk_bad_size", kHead + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", false, false,
                 "chunk size"},
        HttpCase{"chunk_too_long", kHead + "Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", false,
                 false, "chunk longer"},
        HttpCase{"chunked_over_limit",
                 kHead + "Transfer-Encoding: chunked\r\n\r\n40\r\n" + std::string(64, 'a') +
                     "\r\n1\r\nb\r\n0\r\n\r\n",
                 false, false, "larger than 64"},
        HttpCase{"length_over_limit", kHead + "Content-Length: 65\r\n\r\n", false, false,
                 "larger than 64"},
        HttpCase{"close_over_limit", kHead + "\r\n" + std::string(65, 'a'), true, false,
                 "larger than 64"},
        HttpCase{"at_limit", kHead + "\r\n" + std::string(64, 'a'), true, true,
                 std::string(64, 'a')},
        HttpCase{"redirect",
                 "HTTP/1.1 301 Moved\r\nLocation: https://evil.test/x\r\nContent-Length: 0\r\n\r\n",
                 false, false, "HTTP 301 redirect to https://evil.test/x refused"},
        HttpCase{"not_found", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n", false,
                 false, "HTTP 404"},
        HttpCase{"html", "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx", true, false,
                 "media type text/html"},
        HttpCase{"no_type", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false, false,
                 "media type (none)"},
        HttpCase{"gzip", kHead + "Transfer-Encoding: gzip\r\n\r\n", false, false,
                 "Transfer-Encoding"},
        HttpCase{"two_lengths", kHead + "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", false,
                 false, "Content-Length"},
        HttpCase{"bad_length", kHead + "Content-Length: 1x\r\n\r\n", false, false,
                 "Content-Length"},
        HttpCase{"folded", kHead + " folded\r\n\r\n", false, false, "header line"},
        HttpCase{"not_http", "SSH-2.0-OpenSSH\r\n\r\n", false, false, "not an HTTP"},
        HttpCase{"bad_status", "HTTP/1.1 2x0 OK\r\n\r\n", false, false, "status line"},
        HttpCase{"nothing", "", true, false, "before the end of the response head"}),
    [](const auto& info) { return info.param.name; });

TEST(HttpResponse, HeadIsBounded) {
  HttpResponse r(kMax);
  std::string head = kHead + "X-Filler: " + std::string(HttpResponse::kMaxHead, 'a') + "\r\n";
  EXPECT_EQ(r.feed(head), HttpResponse::State::Failed);
  EXPECT_NE(r.reason().find("head larger"), std::string::npos) << r.reason();
}

TEST(HttpResponse, BytesAfterTheEndAreIgnored) {
  HttpResponse r(kMax);
  EXPECT_EQ(r.feed(kHead + "Content-Length: 0\r\n\r\n"), HttpResponse::State::Done);
  EXPECT_EQ(r.feed("garbage"), HttpResponse::State::Done);
  EXPECT_EQ(r.finish(), HttpResponse::State::Done);
  EXPECT_EQ(r.body(), "");
}

}  // namespace
}  // namespace estafette::mtasts
