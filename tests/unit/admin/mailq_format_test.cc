// What `estafette mailq` prints: qshape's age buckets, the per-destination summary, the
// Postfix-style listing and the JSON document.
#include "lib/admin/mailq_format.h"

#include "admin/offline_mailq.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

namespace estafette::admin {
namespace {

constexpr std::int64_t kNowMs = 1'700'000'000'000;  // 2023-11-14 22:13:20 UTC
constexpr std::int64_t kNow = kNowMs / 1000;

struct BucketCase {
  std::int64_t age;
  std::size_t bucket;
};

class AgeBucket : public ::testing::TestWithParam<BucketCase> {};

TEST_P(AgeBucket, PostfixQshapeBoundaries) {
  EXPECT_EQ(age_bucket(GetParam().age), GetParam().bucket) << GetParam().age;
}

INSTANTIATE_TEST_SUITE_P(Table, AgeBucket,
                         ::testing::Values(BucketCase{-30, 0}, BucketCase{0, 0}, BucketCase{299, 0},
                                           BucketCase{300, 1}, BucketCase{599, 1},
                                           BucketCase{600, 2}, BucketCase{1199, 2},
                                           BucketCase{1200, 3}, BucketCase{2399, 3},
                                           BucketCase{2400, 4}, BucketCase{4799, 4},
                                           BucketCase{4800, 5}, BucketCase{9599, 5},
                                           BucketCase{9600, 6}, BucketCase{86400 * 30, 6}));

ipc::QueueEntry entry(std::string id, std::int64_t age, std::vector<std::string> dests,
                      std::string sender = "alice@origin.test") {
  ipc::QueueEntry e;
  e.queue_id = std::move(id);
  e.arrival = kNow - age;
  e.size = 2048;
  e.sender = std::move(sender);
  for (auto& d : dests) e.recipients.push_back({"rcpt@" + d, d, ipc::RcptState::Ready, 0, 0, ""});
  return e;
}

TEST(Qshape, CountsRecipientsPerDestinationByMessageAge) {
  std::vector<ipc::QueueEntry> q = {entry("A", 10, {"a.test", "b.test"}),
                                    entry("B", 700, {"a.test"}), entry("C", 20000, {"a.test"}),
                                    entry("D", 4000, {"c.test", "c.test"})};
  auto rows = qshape(q, kNowMs);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].destination, "TOTAL");
  EXPECT_EQ(rows[0].total, 6u);
  EXPECT_EQ(rows[0].counts, (std::array<std::size_t, kBuckets>{2, 0, 1, 0, 2, 0, 1}));
  EXPECT_EQ(rows[1].destination, "a.test");  // most recipients first
  EXPECT_EQ(rows[1].counts, (std::array<std::size_t, kBuckets>{1, 0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(rows[2].destination, "c.test");
  EXPECT_EQ(rows[2].total, 2u);
  EXPECT_EQ(rows[3].destination, "b.test");
  EXPECT_EQ(rows[3].total, 1u);
}

TEST(Qshape, EmptyQueueHasOnlyAZeroTotal) {
  auto rows = qshape({}, kNowMs);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].total, 0u);
  EXPECT_EQ(format_qshape(rows),
            "destination      T    0-5m   5-10m  10-20m  20-40m  40-80m 80-160m   160m+\n"
            "TOTAL            0       0       0       0       0       0       0       0\n");
}

TEST(Mailq, EmptyQueue) {
  EXPECT_EQ(format_mailq({}, kNowMs), "Mail queue is empty\n");
}

TEST(Mailq, ListingWithErrorsRetriesAndSummary) {
  auto a = entry("Q2", 700, {}, "");
  a.size = 5000;
  a.recipients.push_back({"bob@dead.test", "127.0.0.1:9", ipc::RcptState::Waiting, 3,
                          kNowMs + 60'000, "451 4.4.1 connect refused\r\n"});
  auto b = entry("Q1", 10, {});
  b.recipients.push_back({"carol@up.test", "up.test", ipc::RcptState::InFlight, 0, 0, ""});
  b.recipients.push_back({"dave@up.test", "up.test", ipc::RcptState::Ready, 1, 0, "421 busy"});
  EXPECT_EQ(format_mailq({b, a}, kNowMs),
            "-Queue ID-       ---Size--- --Arrival Time (UTC)- -Sender/Recipient-------\n"
            "Q2                     5000 2023-11-14 22:01:40  MAILER-DAEMON\n"
            "    bob@dead.test  dest=127.0.0.1:9 attempts=3 next=2023-11-14 22:14:20\n"
            "        (451 4.4.1 connect refused)\n"
            "\n"
            "Q1                     2048 2023-11-14 22:13:10  alice@origin.test\n"
            "    carol@up.test  dest=up.test attempts=0 next=in flight\n"
            "    dave@up.test  dest=up.test attempts=1 next=now\n"
            "        (421 busy)\n"
            "\n"
            "-- 7 Kbytes in 2 Requests.\n"
            "\n"
            "destination      T    0-5m   5-10m  10-20m  20-40m  40-80m 80-160m   160m+\n"
            "TOTAL            3       2       0       1       0       0       0       0\n"
            "up.test          2       2       0       0       0       0       0       0\n"
            "127.0.0.1:9      1       0       0       1       0       0       0       0\n");
}

TEST(Mailq, JsonHasTheSameFacts) {
  auto a = entry("Q2", 700, {});
  a.recipients.push_back({"bob@dead.test", "127.0.0.1:9", ipc::RcptState::Waiting, 3,
                          kNowMs + 60'000, "451 4.4.1 \"refused\""});
  Poco::JSON::Parser parser;
  auto doc = parser.parse(format_mailq_json({a}, kNowMs)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(doc->getValue<std::string>("now"), "2023-11-14 22:13:20");
  auto messages = doc->getArray("messages");
  ASSERT_EQ(messages->size(), 1u);
  auto m = messages->getObject(0);
  EXPECT_EQ(m->getValue<std::string>("id"), "Q2");
  EXPECT_EQ(m->getValue<std::int64_t>("arrival_unix"), kNow - 700);
  EXPECT_EQ(m->getValue<std::uint64_t>("size"), 2048u);
  auto r = m->getArray("recipients")->getObject(0);
  EXPECT_EQ(r->getValue<std::string>("address"), "bob@dead.test");
  EXPECT_EQ(r->getValue<std::string>("destination"), "127.0.0.1:9");
  EXPECT_EQ(r->getValue<std::string>("state"), "waiting");
  EXPECT_EQ(r->getValue<unsigned>("attempts"), 3u);
  EXPECT_EQ(r->getValue<std::string>("next_retry"), "2023-11-14 22:14:20");
  EXPECT_EQ(r->getValue<std::string>("last_error"), "451 4.4.1 \"refused\"");
  auto rows = doc->getObject("summary")->getArray("destinations");
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->getObject(1)->getValue<std::string>("destination"), "127.0.0.1:9");
  EXPECT_EQ(rows->getObject(1)->getArray("counts")->getElement<int>(2), 1);
  EXPECT_EQ(doc->getObject("summary")->getArray("buckets")->getElement<std::string>(6), "160m+");
}

TEST(Mailq, HeldMessageIsMarked) {
  auto h = entry("Q3", 10, {});
  h.held = true;
  h.recipients.push_back({"bob@dead.test", "dead.test", ipc::RcptState::Held, 2, 0, "451 later"});
  std::string text = format_mailq({h}, kNowMs);
  EXPECT_NE(text.find("Q3!                    2048 2023-11-14 22:13:10  alice@origin.test\n"
                      "    bob@dead.test  dest=dead.test attempts=2 next=held\n"
                      "        (451 later)\n"),
            std::string::npos)
      << text;
  Poco::JSON::Parser parser;
  auto doc = parser.parse(format_mailq_json({h}, kNowMs)).extract<Poco::JSON::Object::Ptr>();
  auto m = doc->getArray("messages")->getObject(0);
  EXPECT_TRUE(m->getValue<bool>("held"));
  EXPECT_EQ(m->getArray("recipients")->getObject(0)->getValue<std::string>("state"), "held");
  EXPECT_EQ(m->getValue<std::string>("quarantine"), "");
  h.held = false;
  doc = parser.parse(format_mailq_json({h}, kNowMs)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_FALSE(doc->getArray("messages")->getObject(0)->getValue<bool>("held"));
}

// A filter's quarantine: held, with its reason under the sender line and in the JSON.
TEST(Mailq, QuarantineReasonIsShown) {
  auto h = entry("Q4", 10, {});
  h.held = true;
  h.quarantine = "virus\nfound";  // one line however it came
  h.recipients.push_back({"bob@dead.test", "dead.test", ipc::RcptState::Held, 0, 0, ""});
  std::string text = format_mailq({h}, kNowMs);
  EXPECT_NE(text.find("Q4!                    2048 2023-11-14 22:13:10  alice@origin.test\n"
                      "        (quarantined: virus found)\n"
                      "    bob@dead.test  dest=dead.test attempts=0 next=held\n"),
            std::string::npos)
      << text;
  Poco::JSON::Parser parser;
  auto doc = parser.parse(format_mailq_json({h}, kNowMs)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(doc->getArray("messages")->getObject(0)->getValue<std::string>("quarantine"),
            "virus\nfound");
}

// mailq from the queue files (courierd not running): the note first, pending recipients only,
// their domain as destination, and no next try or attempts it cannot know.
TEST(Mailq, FromTheQueueFiles) {
  queue::StoredMessage m;
  m.envelope.id = "Q5";
  m.envelope.arrival = kNow - 700;
  m.envelope.sender = "alice@origin.test";
  m.envelope.recipients = {"bob@Dead.TEST", "carol@up.test", "prog@local.test"};
  m.envelope.programs[2] = "/bin/true";
  m.body_size = 2048;
  m.done = {false, true, false};
  queue::StoredMessage held = m;
  held.envelope.id = "Q6";
  held.held = true;
  held.envelope.quarantine = "by milter";
  held.done = {true, true, false};
  auto entries = entries_from_queue({m, held});
  ASSERT_EQ(entries.size(), 2u);
  ASSERT_EQ(entries[0].recipients.size(), 2u);
  EXPECT_EQ(entries[0].recipients[0].destination, "dead.test");
  EXPECT_EQ(entries[0].recipients[1].destination, "local");
  EXPECT_EQ(entries[1].recipients[0].state, ipc::RcptState::Held);
  EXPECT_EQ(entries[1].quarantine, "by milter");
  std::string text = format_mailq(entries, kNowMs, true);
  EXPECT_EQ(text.rfind(std::string(kNotRunningNote) + "\n-Queue ID-", 0), 0u) << text;
  EXPECT_NE(text.find("Q5                     2048 2023-11-14 22:01:40  alice@origin.test\n"
                      "    bob@Dead.TEST  dest=dead.test attempts=? next=unknown\n"
                      "    prog@local.test  dest=local attempts=? next=unknown\n\n"
                      "Q6!"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("next=held"), std::string::npos);
  EXPECT_EQ(format_mailq({}, kNowMs, true),
            std::string(kNotRunningNote) + "\nMail queue is empty\n");
  Poco::JSON::Parser parser;
  auto doc =
      parser.parse(format_mailq_json(entries, kNowMs, true)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_FALSE(doc->getValue<bool>("courierd_running"));
  auto rcpt = doc->getArray("messages")->getObject(0)->getArray("recipients")->getObject(0);
  EXPECT_EQ(rcpt->getValue<std::string>("state"), "unknown");
  doc = parser.parse(format_mailq_json(entries, kNowMs)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_FALSE(doc->has("courierd_running"));
}

}  // namespace
}  // namespace estafette::admin
