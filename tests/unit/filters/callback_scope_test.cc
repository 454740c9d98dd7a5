// filters/callback_scope.h: the loop-hold warning's text, and the crash context a scope records.
#include "filters/callback_scope.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::filters {
namespace {

using namespace std::chrono_literals;

TEST(HoldWarning, Formats) {
  struct Case {
    std::chrono::nanoseconds held;
    std::chrono::milliseconds limit;
    std::string want_tail;
  };
  const std::vector<Case> cases = {
      {2003ms + 400us, 100ms, "held the event loop 2.003s (filter_callback_warn_time 100ms)"},
      {101ms, 100ms, "held the event loop 0.101s (filter_callback_warn_time 100ms)"},
      {65s, 2s, "held the event loop 65.000s (filter_callback_warn_time 2s)"},
      {1500us, 1ms, "held the event loop 0.001s (filter_callback_warn_time 1ms)"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(hold_warning("4242.7", "spamcheck", "helo", c.held, c.limit),
              "filter session=4242.7 module=spamcheck phase=helo " + c.want_tail);
}

TEST(CallbackScope, RecordsTheCrashContextWhileItLives) {
  EXPECT_EQ(base::crash::current_context(), "");
  {
    CallbackScope scope("4242.7", "spamcheck", "fd-callback", 100ms);
    EXPECT_EQ(base::crash::current_context(),
              "filter session=4242.7 module=spamcheck phase=fd-callback");
  }
  EXPECT_EQ(base::crash::current_context(), "");
}

}  // namespace
}  // namespace estafette::filters
