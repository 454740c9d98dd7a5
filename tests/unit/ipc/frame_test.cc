// IPC framing and typed messages: round trips, input split at every byte, malformed frames.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lib/ipc/frame.h"
#include "lib/ipc/messages.h"

namespace estafette::ipc {
namespace {

std::string sample_stream() {
  Deliver d;
  d.job_id = 42;
  d.queue_id = "Q1";
  d.path = "/q/msg/Q1";
  d.body_offset = 123;
  d.body_size = 65536;
  d.sender = "";
  d.destination = "[127.0.0.1]:55225";
  d.recipients = {"a@x.test", "b@y.test"};
  d.ret = "HDRS";
  d.envid = "QQ+2B1";
  d.notify = {"SUCCESS,FAILURE", ""};
  d.orcpt = {"rfc822;A@x.test", ""};
  d.require_tls = true;
  DeliverResult r;
  r.job_id = 42;
  r.remote = "sink[127.0.0.1]:55225";
  r.host_failed = true;
  r.next_hop_dsn = true;
  r.results = {{RcptStatus::Delivered, "250 ok"}, {RcptStatus::PermFail, "550 5.1.1 no"}};
  r.setup_ms = 1234;
  r.transfer_ms = 56789;
  return encode(NewMessage{"Q1"}) + encode(d) + encode(r) + encode(ModuleReady{"esmtp"});
}

void check_frames(const std::vector<Frame>& frames) {
  ASSERT_EQ(frames.size(), 4u);
  auto n = decode_new_message(frames[0]);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->queue_id, "Q1");
  auto d = decode_deliver(frames[1]);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->job_id, 42u);
  EXPECT_EQ(d->body_offset, 123u);
  EXPECT_EQ(d->body_size, 65536u);
  EXPECT_EQ(d->sender, "");
  EXPECT_EQ(d->destination, "[127.0.0.1]:55225");
  EXPECT_EQ(d->recipients, (std::vector<std::string>{"a@x.test", "b@y.test"}));
  EXPECT_EQ(d->ret, "HDRS");
  EXPECT_EQ(d->envid, "QQ+2B1");
  EXPECT_EQ(d->notify, (std::vector<std::string>{"SUCCESS,FAILURE", ""}));
  EXPECT_EQ(d->orcpt, (std::vector<std::string>{"rfc822;A@x.test", ""}));
  EXPECT_TRUE(d->require_tls);
  auto r = decode_deliver_result(frames[2]);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->host_failed);
  EXPECT_TRUE(r->next_hop_dsn);
  ASSERT_EQ(r->results.size(), 2u);
  EXPECT_EQ(r->results[1].status, RcptStatus::PermFail);
  EXPECT_EQ(r->results[1].reply, "550 5.1.1 no");
  EXPECT_EQ(r->setup_ms, 1234u);
  EXPECT_EQ(r->transfer_ms, 56789u);
  auto m = decode_module_ready(frames[3]);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->name, "esmtp");
  // A frame of another type does not decode as this one.
  EXPECT_FALSE(decode_deliver(frames[0]));
}

TEST(IpcFrame, RoundTripWhole) {
  FrameSplitter s;
  s.feed(sample_stream());
  std::vector<Frame> frames;
  while (auto f = s.next()) frames.push_back(*f);
  check_frames(frames);
  EXPECT_FALSE(s.error());
}

TEST(IpcFrame, SplitAtEveryByte) {
  auto stream = sample_stream();
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameSplitter s;
    std::vector<Frame> frames;
    s.feed(std::string_view(stream).substr(0, cut));
    while (auto f = s.next()) frames.push_back(*f);
    s.feed(std::string_view(stream).substr(cut));
    while (auto f = s.next()) frames.push_back(*f);
    check_frames(frames);
  }
}

TEST(IpcFrame, ByteByByte) {
  auto stream = sample_stream();
  FrameSplitter s;
  std::vector<Frame> frames;
  for (char c : stream) {
    s.feed(std::string_view(&c, 1));
    while (auto f = s.next()) frames.push_back(*f);
  }
  check_frames(frames);
}

TEST(IpcFrame, RejectsZeroAndHugeLengths) {
  FrameSplitter zero;
  zero.feed(std::string("\0\0\0\0", 4));
  EXPECT_FALSE(zero.next());
  EXPECT_TRUE(zero.error());
  FrameSplitter huge;
  huge.feed(std::string("\xff\xff\xff\x7f\x01", 5));
  EXPECT_FALSE(huge.next());
  EXPECT_TRUE(huge.error());
}

TEST(IpcFrame, DeliverCarriesProgramsPerRecipient) {
  Deliver d;
  d.queue_id = "Q";
  d.recipients = {"a@b", "prog@b"};
  d.programs = {"", "0 /bin/log"};
  FrameSplitter s;
  s.feed(encode(d));
  auto f = s.next();
  ASSERT_TRUE(f);
  auto back = decode_deliver(*f);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->programs, d.programs);
  d.programs = {"0 /bin/log"};  // not one per recipient
  s.feed(encode(d));
  f = s.next();
  ASSERT_TRUE(f);
  EXPECT_FALSE(decode_deliver(*f));
}

TEST(IpcFrame, DeliverResultTimingIsOptionalButWhole) {
  DeliverResult r;
  r.results = {{RcptStatus::Delivered, "250 ok"}};
  r.setup_ms = 7;
  r.transfer_ms = 9;
  const std::string bytes = encode(r);
  auto decode_cut = [&](std::size_t cut) {  // the payload without its last `cut` bytes
    std::string b = bytes.substr(0, bytes.size() - cut);
    const std::uint32_t len = static_cast<std::uint32_t>(b.size() - 4);
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    FrameSplitter s;
    s.feed(b);
    auto f = s.next();
    return f ? decode_deliver_result(*f) : std::nullopt;
  };
  auto whole = decode_cut(0);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->transfer_ms, 9u);
  auto older = decode_cut(16);  // a module from before the timing
  ASSERT_TRUE(older);
  EXPECT_EQ(older->setup_ms, 0u);
  EXPECT_EQ(older->transfer_ms, 0u);
  EXPECT_FALSE(decode_cut(8));  // half of it
}

TEST(IpcFrame, TruncatedPayloadsDoNotDecode) {
  Deliver d;
  d.queue_id = "Q";
  d.recipients = {"a@b"};
  auto bytes = encode(d);
  FrameSplitter s;
  s.feed(bytes);
  auto f = s.next();
  ASSERT_TRUE(f);
  const std::size_t without_require_tls = f->payload.size() - 1;  // its one byte
  const std::size_t without_programs = without_require_tls - 4;   // the empty list's count
  for (std::size_t len = 0; len < f->payload.size(); ++len) {
    Frame cut{f->type, f->payload.substr(0, len)};
    // Ending after the DSN lists or after programs are the older forms, without the optional
    // programs and require_tls.
    EXPECT_EQ(decode_deliver(cut).has_value(),
              len == without_programs || len == without_require_tls)
        << len;
  }
  Frame extra{f->type, f->payload + "x"};
  EXPECT_FALSE(decode_deliver(extra));
}

TEST(IpcFrame, DsnListsMustMatchTheRecipients) {
  Deliver d;
  d.queue_id = "Q";
  d.recipients = {"a@b", "c@d"};
  d.notify = {"NEVER"};  // one for two recipients
  FrameSplitter s;
  s.feed(encode(d));
  auto f = s.next();
  ASSERT_TRUE(f);
  EXPECT_FALSE(decode_deliver(*f));
  d.notify = {"NEVER", ""};
  s.feed(encode(d));
  f = s.next();
  ASSERT_TRUE(f);
  EXPECT_TRUE(decode_deliver(*f));
}

TEST(IpcFrame, HugeStringCountIsMalformed) {
  std::string payload = Writer(2).u64(1).str("q").str("p").u64(0).u64(0).str("").str("d").finish();
  // Replace the recipients count by a huge number with no data behind it.
  payload += std::string("\xff\xff\xff\x0f", 4);
  Frame f{2, payload.substr(5)};
  EXPECT_FALSE(decode_deliver(f));
}

}  // namespace
}  // namespace estafette::ipc
