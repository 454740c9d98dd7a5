// Tests for filters/macro_store.h: what getsymval and foreach_symval answer an in-process
// module, and the arena's bound when values are replaced over a long session.
#include "filters/macro_store.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace estafette::filters {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs phase(const MacroStore& store) {
  Pairs out;
  store.for_each_phase([&](const char* n, const char* v) { out.emplace_back(n, v); });
  return out;
}

TEST(MacroStore, LaterPhasesReplaceAndAdd) {
  MacroStore m;
  m.begin_phase();
  m.set("j", "mx.example.test");
  m.set("{client_addr}", "192.0.2.1");
  EXPECT_EQ(phase(m), (Pairs{{"j", "mx.example.test"}, {"{client_addr}", "192.0.2.1"}}));
  m.begin_phase();
  m.set("{rcpt_addr}", "a@example.test");
  m.set("j", "mx2.example.test");  // a longer value: appended
  EXPECT_EQ(phase(m), (Pairs{{"{rcpt_addr}", "a@example.test"}, {"j", "mx2.example.test"}}));
  EXPECT_STREQ(m.get("j"), "mx2.example.test");
  EXPECT_STREQ(m.get("{client_addr}"), "192.0.2.1");  // from an earlier phase
  m.begin_phase();
  m.set("{rcpt_addr}", "b@x.test");  // a shorter one: in place
  EXPECT_STREQ(m.get("{rcpt_addr}"), "b@x.test");
  EXPECT_EQ(phase(m), (Pairs{{"{rcpt_addr}", "b@x.test"}}));
  m.begin_phase();
  EXPECT_TRUE(phase(m).empty());
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m.get("{rcpt}"), nullptr);
  EXPECT_EQ(m.get("{rcpt_addr"), nullptr);  // a prefix of a name is not the name
  EXPECT_EQ(m.get(""), nullptr);
}

TEST(MacroStore, ValuesEndAtTheirFirstNul) {
  MacroStore m;
  m.set("v", std::string("abc\0def", 7));
  EXPECT_STREQ(m.get("v"), "abc");
  m.set("", "empty name");  // kept as given: nothing finds it by another name
  EXPECT_STREQ(m.get(""), "empty name");
}

TEST(MacroStore, ReplacedValuesDoNotGrowTheArenaWithoutBound) {
  // A session with a million recipients: each RCPT replaces {rcpt_addr} with a longer value.
  MacroStore m;
  m.set("j", "mx.example.test");
  std::string value;
  std::size_t largest = 0;
  for (int i = 0; i < 100000; ++i) {
    m.begin_phase();
    value = "rcpt" + std::to_string(i) + std::string(i % 50, 'x') + "@example.test";
    m.set("{rcpt_addr}", value);
    ASSERT_STREQ(m.get("{rcpt_addr}"), value.c_str());
    largest = std::max(largest, m.arena_bytes());
  }
  EXPECT_STREQ(m.get("j"), "mx.example.test");
  EXPECT_LE(largest, MacroStore::kMinCompact + 200);
}

TEST(MacroStore, ClearForgetsEverything) {
  MacroStore m;
  m.set("i", "QID");
  m.clear();
  EXPECT_EQ(m.get("i"), nullptr);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_TRUE(phase(m).empty());
}

}  // namespace
}  // namespace estafette::filters
