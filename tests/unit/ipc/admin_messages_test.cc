// The admin messages on courierd's socket (mailq, flush): round trips, every frame split at
// every byte, wrong types and truncated payloads rejected.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "lib/ipc/frame.h"
#include "lib/ipc/messages.h"

namespace estafette::ipc {
namespace {

QueueSelection sel(bool by_sender = false, std::string sender = "", std::string domain = "",
                   std::string destination = "", std::uint64_t older_than_s = 0,
                   std::string reason = "") {
  return QueueSelection{by_sender,    std::move(sender), std::move(domain), std::move(destination),
                        older_than_s, std::move(reason)};
}

QueueEntry sample_entry() {
  QueueEntry e;
  e.queue_id = "0001ABCD";
  e.arrival = 1'700'000'000;
  e.size = 4242;
  e.sender = "alice@origin.test";
  e.recipients = {
      {"bob@dead.test", "[127.0.0.1]:9", RcptState::Waiting, 3, 1'700'000'060'123,
       "451 4.4.1 connect to 127.0.0.1:9: Connection refused"},
      {"carol@up.test", "up.test", RcptState::InFlight, 0, 0, ""},
      {"dave@up.test", "up.test", RcptState::Held, 1, 0, "451 4.2.0 later"},
  };
  return e;
}

struct Case {
  std::string name;
  std::string frame;
  // Decodes the frame with the right decoder and compares with the original.
  std::function<bool(const Frame&)> round_trip;
};

template <typename T, typename Decode>
Case make_case(std::string name, T value, Decode decode) {
  return Case{std::move(name), encode(value), [value, decode](const Frame& f) {
                auto got = decode(f);
                return got && *got == value;
              }};
}

std::vector<Case> cases() {
  QueueEntry empty_sender = sample_entry();
  empty_sender.sender = "";
  empty_sender.recipients.clear();
  QueueEntry held = sample_entry();
  held.held = true;
  held.quarantine = "spam score 42 (rspamd)";
  return {
      make_case("list_request", QueueListRequest{}, decode_queue_list_request),
      make_case("entry", sample_entry(), decode_queue_entry),
      make_case("entry_null_sender_no_rcpts", empty_sender, decode_queue_entry),
      make_case("list_end", QueueListEnd{17, 1'700'000'000'500}, decode_queue_list_end),
      make_case("flush_all", FlushRequest{FlushScope::All, ""}, decode_flush_request),
      make_case("flush_message", FlushRequest{FlushScope::Message, "0001ABCD"},
                decode_flush_request),
      make_case("flush_domain", FlushRequest{FlushScope::Domain, "dead.test"},
                decode_flush_request),
      make_case("flush_reply", FlushReply{12}, decode_flush_reply),
      make_case("flush_reply_not_found", FlushReply{0, false}, decode_flush_reply),
      make_case("entry_held", held, decode_queue_entry),
      make_case("hold_one", QueueOpRequest{QueueOp::Hold, false, "0001ABCD"},
                decode_queue_op_request),
      make_case("release_all", QueueOpRequest{QueueOp::Release, true, ""}, decode_queue_op_request),
      make_case("cancel", QueueOpRequest{QueueOp::Cancel, false, "0001ABCD"},
                decode_queue_op_request),
      make_case("delete", QueueOpRequest{QueueOp::Delete, false, "0001ABCD"},
                decode_queue_op_request),
      make_case("op_ok", QueueOpReply{QueueOpStatus::Ok, 3, 5, 1, ""}, decode_queue_op_reply),
      make_case("op_not_found", QueueOpReply{QueueOpStatus::NotFound, 0, 0, 0, ""},
                decode_queue_op_reply),
      make_case("op_failed", QueueOpReply{QueueOpStatus::Failed, 0, 0, 0, "No space left"},
                decode_queue_op_reply),
      make_case("select_sender", QueueSelectRequest{QueueOp::Hold, sel(true, "a@b.test")},
                decode_queue_select_request),
      make_case("select_null_sender", QueueSelectRequest{QueueOp::Cancel, sel(true, "")},
                decode_queue_select_request),
      make_case("select_every_criterion",
                QueueSelectRequest{QueueOp::Flush, sel(true, "a@b.test", "dead.test", "127.0.0.1:9",
                                                       7200, "Connection refused")},
                decode_queue_select_request),
      make_case("select_age", QueueSelectRequest{QueueOp::Delete, sel(false, "", "", "", 90, "")},
                decode_queue_select_request),
      make_case("selected", QueueSelected{"0001ABCD", 2, 1}, decode_queue_selected),
      make_case("shape_request", QueueShapeRequest{}, decode_queue_shape_request),
      make_case("shape_reply",
                QueueShapeReply{{{"dead.test", 3, 1'700'000'000}, {"local", 1, 1'700'000'100}},
                                7,
                                1'699'000'000,
                                1'700'000'200'500},
                decode_queue_shape_reply),
      make_case("shape_reply_empty", QueueShapeReply{}, decode_queue_shape_reply),
  };
}

class AdminMessages : public ::testing::TestWithParam<Case> {};

TEST_P(AdminMessages, RoundTripSplitAtEveryByte) {
  const Case& c = GetParam();
  for (std::size_t cut = 0; cut <= c.frame.size(); ++cut) {
    FrameSplitter s;
    s.feed(std::string_view(c.frame).substr(0, cut));
    auto early = s.next();
    if (cut < c.frame.size()) {
      EXPECT_FALSE(early) << cut;
    }
    s.feed(std::string_view(c.frame).substr(cut));
    auto f = early ? early : s.next();
    ASSERT_TRUE(f) << cut;
    EXPECT_TRUE(c.round_trip(*f)) << cut;
    EXPECT_FALSE(s.error());
  }
}

TEST_P(AdminMessages, TruncatedOrExtendedPayloadRejected) {
  const Case& c = GetParam();
  FrameSplitter s;
  s.feed(c.frame);
  auto f = s.next();
  ASSERT_TRUE(f);
  Frame longer = *f;
  longer.payload += 'x';
  EXPECT_FALSE(c.round_trip(longer));
  if (!f->payload.empty()) {
    Frame shorter = *f;
    shorter.payload.pop_back();
    EXPECT_FALSE(c.round_trip(shorter));
  }
}

INSTANTIATE_TEST_SUITE_P(All, AdminMessages, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(AdminMessages, QueueShapeReplyOverItsBoundRejected) {
  QueueShapeReply big;
  big.rows.resize(kMaxQueueShapeRows + 1, QueueShapeRow{"d", 1, 1});
  FrameSplitter s;
  s.feed(encode(big));
  auto f = s.next();
  ASSERT_TRUE(f);
  EXPECT_FALSE(decode_queue_shape_reply(*f));
  big.rows.pop_back();
  s.feed(encode(big));
  f = s.next();
  ASSERT_TRUE(f);
  EXPECT_TRUE(decode_queue_shape_reply(*f));
}

TEST(AdminMessages, WrongTypeOrBadEnumRejected) {
  FrameSplitter s;
  s.feed(encode(NewMessage{"Q"}));
  auto f = s.next();
  ASSERT_TRUE(f);
  EXPECT_FALSE(decode_queue_list_request(*f));
  EXPECT_FALSE(decode_queue_entry(*f));
  EXPECT_FALSE(decode_flush_request(*f));
  Frame bad_scope{static_cast<std::uint8_t>(MessageType::FlushRequest),
                  std::string("\x03\0\0\0\0", 5)};
  EXPECT_FALSE(decode_flush_request(bad_scope));
  Frame ok_scope{static_cast<std::uint8_t>(MessageType::FlushRequest),
                 std::string("\x02\0\0\0\0", 5)};
  EXPECT_TRUE(decode_flush_request(ok_scope));
  EXPECT_FALSE(decode_queue_op_request(*f));
  EXPECT_FALSE(decode_queue_op_reply(*f));
  // op 4, and a bad "all" flag
  Frame bad_op{static_cast<std::uint8_t>(MessageType::QueueOpRequest),
               std::string("\x04\0\0\0\0\0", 6)};
  EXPECT_FALSE(decode_queue_op_request(bad_op));
  Frame bad_all{static_cast<std::uint8_t>(MessageType::QueueOpRequest),
                std::string("\x00\x02\0\0\0\0", 6)};
  EXPECT_FALSE(decode_queue_op_request(bad_all));
  Frame good{static_cast<std::uint8_t>(MessageType::QueueOpRequest),
             std::string("\x03\x01\0\0\0\0", 6)};
  EXPECT_TRUE(decode_queue_op_request(good));
}

// Selections the decoder refuses: courierd acts on none of them.
TEST(AdminMessages, BadSelectionsRejected) {
  auto frame_of = [](const QueueSelectRequest& r) {
    FrameSplitter s;
    s.feed(encode(r));
    return *s.next();
  };
  const std::vector<std::pair<std::string, QueueSelectRequest>> bad = {
      {"empty", {QueueOp::Hold, sel()}},
      {"sender_without_flag", {QueueOp::Hold, sel(false, "a@b.test")}},
      {"op_5", {static_cast<QueueOp>(5), sel(true, "")}},
      {"too_old", {QueueOp::Hold, sel(false, "", "", "", kMaxOlderThanSeconds + 1, "")}},
      {"long_domain", {QueueOp::Hold, sel(false, "", std::string(kMaxSelectorSize + 1, 'a'))}},
      {"control_in_reason", {QueueOp::Hold, sel(false, "", "", "", 0, "a\nb")}},
      {"nul_in_destination", {QueueOp::Hold, sel(false, "", "", std::string("a\0b", 3))}},
  };
  for (const auto& [name, request] : bad)
    EXPECT_FALSE(decode_queue_select_request(frame_of(request))) << name;
  Frame by_sender_2 = frame_of({QueueOp::Hold, sel(true, "")});
  by_sender_2.payload[1] = 2;
  EXPECT_FALSE(decode_queue_select_request(by_sender_2));
  EXPECT_TRUE(decode_queue_select_request(
      frame_of({QueueOp::Hold, sel(false, "", std::string(kMaxSelectorSize, 'a'))})));
  // The other admin decoders do not take it, nor it theirs; QueueOpRequest has no flush.
  Frame select = frame_of({QueueOp::Hold, sel(true, "")});
  EXPECT_FALSE(decode_queue_op_request(select));
  EXPECT_FALSE(decode_queue_selected(select));
  FrameSplitter s;
  s.feed(encode(QueueOpRequest{QueueOp::Hold, false, "Q"}));
  Frame op = *s.next();
  EXPECT_FALSE(decode_queue_select_request(op));
  op.payload[0] = static_cast<char>(QueueOp::Flush);
  EXPECT_FALSE(decode_queue_op_request(op));
}

}  // namespace
}  // namespace estafette::ipc
