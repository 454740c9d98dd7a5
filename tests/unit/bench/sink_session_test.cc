// The sink's conversation (bench/kit/sink_session.h) fed whole and split at every byte, and the
// source's message template (bench/kit/source.h).
#include "bench/kit/sink_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/kit/source.h"
#include "tests/unit/smtp/split_feeder.h"

namespace estafette::bench {
namespace {

struct Seen {
  std::vector<std::pair<bool, std::size_t>> messages;
  std::vector<std::string> ids;
};

// Feeds the chunks; returns the replies written and the last action.
std::string converse(SinkSession& session, const std::vector<std::string_view>& chunks,
                     SinkSession::Action* last = nullptr) {
  std::string out;
  for (auto chunk : chunks) {
    auto action = session.feed(chunk, out);
    if (last) *last = action;
    if (action != SinkSession::Action::None) break;
  }
  return out;
}

constexpr std::string_view kTwoMessages =
    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
    "From: a\r\nMessage-ID: <1@x>\r\n\r\n..dot-stuffed\r\n.\r\n"
    "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
    "Message-Id:\r\n <2@x>\r\n\r\n.x\r\n\r\n.\r\n"
    "QUIT\r\n";

constexpr std::string_view kTwoMessagesReplies =
    "250-sink.bench.estafette.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n"
    "250 ENHANCEDSTATUSCODES\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
    "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n"
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    "250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n";

TEST(BenchSinkSession, PipelinedMessagesAtEverySplit) {
  for (const auto& split : smtp::testing::all_splits(kTwoMessages, 0)) {
    Seen seen;
    SinkSession::Options options;
    options.capture_ids = true;
    SinkSession session(options, [&](bool ok, std::size_t bytes, std::string_view id) {
      seen.messages.push_back({ok, bytes});
      seen.ids.emplace_back(id);
    });
    SinkSession::Action last = SinkSession::Action::None;
    EXPECT_EQ(converse(session, split.chunks, &last), kTwoMessagesReplies) << split.name;
    EXPECT_EQ(last, SinkSession::Action::Close) << split.name;
    ASSERT_EQ(seen.messages.size(), 2u) << split.name;
    EXPECT_EQ(seen.messages[0], std::make_pair(true, std::size_t{45})) << split.name;
    EXPECT_EQ(seen.messages[1], std::make_pair(true, std::size_t{29})) << split.name;
    EXPECT_EQ(seen.ids, (std::vector<std::string>{"<1@x>", "<2@x>"})) << split.name;
  }
}

TEST(BenchSinkSession, FailReplyAndNoRecipient) {
  SinkSession::Options options;
  options.fail_reply = "451 4.3.0 not now";
  int refused = 0;
  SinkSession session(options, [&](bool ok, std::size_t, std::string_view) { refused += !ok; });
  std::string out;
  session.feed("MAIL FROM:<>\r\nDATA\r\nRCPT TO:<x@y>\r\nDATA\r\nbody\r\n.\r\nNOOP\r\n", out);
  EXPECT_EQ(out,
            "250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n250 2.1.5 Ok\r\n"
            "354 End data with <CR><LF>.<CR><LF>\r\n451 4.3.0 not now\r\n250 2.0.0 Ok\r\n");
  EXPECT_EQ(refused, 1);
}

TEST(BenchSinkSession, StartTlsDropsWhatFollowsAndIsOfferedOnce) {
  SinkSession::Options options;
  options.offer_starttls = true;
  SinkSession session(options, [](bool, std::size_t, std::string_view) {});
  std::string out;
  session.feed("EHLO x\r\n", out);
  EXPECT_NE(out.find("250-STARTTLS\r\n"), std::string::npos);
  out.clear();
  // A command pipelined after STARTTLS (the CVE-2011-0411 injection) is not answered.
  EXPECT_EQ(session.feed("STARTTLS\r\nMAIL FROM:<evil@x>\r\n", out), SinkSession::Action::StartTls);
  EXPECT_EQ(out, "220 2.0.0 Ready to start TLS\r\n");
  session.tls_started();
  out.clear();
  session.feed("EHLO x\r\nSTARTTLS\r\n", out);
  EXPECT_EQ(out.find("STARTTLS\r\n250"), std::string::npos);
  EXPECT_NE(out.find("502 5.5.1 STARTTLS not offered\r\n"), std::string::npos);
}

TEST(BenchSinkSession, NoStartTlsWithoutCertificate) {
  SinkSession session({}, [](bool, std::size_t, std::string_view) {});
  std::string out;
  EXPECT_EQ(session.feed("EHLO x\r\nSTARTTLS\r\n", out), SinkSession::Action::None);
  EXPECT_EQ(out.find("250-STARTTLS"), std::string::npos);
  EXPECT_NE(out.find("502 5.5.1"), std::string::npos);
}

TEST(BenchSinkSession, LongLineIsRefusedAndTheSessionGoesOn) {
  SinkSession session({}, [](bool, std::size_t, std::string_view) {});
  std::string out;
  session.feed(std::string(5000, 'a'), out);
  session.feed("\r\nNOOP\r\n", out);
  EXPECT_EQ(out.substr(0, 4), "500 ");
  EXPECT_NE(out.find("250 2.0.0 Ok\r\n"), std::string::npos);
}

TEST(BenchMessageId, Headers) {
  EXPECT_EQ(message_id_of("Subject: x\r\nMESSAGE-ID:  <a@b> \r\n"), "<a@b>");
  EXPECT_EQ(message_id_of("Message-ID:\r\n\t<folded@b>\r\nTo: x\r\n"), "<folded@b>");
  EXPECT_EQ(message_id_of("X-Message-ID: <no@b>\r\n"), "");
  EXPECT_EQ(message_id_of(""), "");
}

TEST(BenchMessageTemplate, ExactSizeAndUniqueIds) {
  for (std::size_t size : {150u, 400u, 401u, 402u, 477u, 478u, 479u, 65536u}) {
    MessageTemplate t(size, "a@b.test", "c@d.test", "1.2");
    std::string first = t.with_id(1);
    ASSERT_TRUE(first.ends_with("\r\n.\r\n"));
    EXPECT_EQ(first.size() - 3, size) << size;  // without the final ".\r\n"
    EXPECT_NE(first.find("Message-ID: <0000000000000001.1.2@bench.estafette.test>\r\n"),
              std::string::npos);
    std::string second = t.with_id(9999999999999999ull);
    EXPECT_EQ(second.size(), first.size());
    EXPECT_NE(second.find("<9999999999999999.1.2@"), std::string::npos);
    // No line of the body starts with "." and every line ends with CRLF.
    EXPECT_EQ(second.find("\n."), second.size() - 4);
    EXPECT_EQ(second.find("\n\n"), std::string::npos);
  }
}

}  // namespace
}  // namespace estafette::bench
