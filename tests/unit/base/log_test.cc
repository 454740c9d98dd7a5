// lib/base/log.h log_quote(): a value in a log line, quoted so that it stays on its line.
#include "lib/base/log.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace estafette::base {
namespace {

TEST(LogQuote, EscapesWhatCouldBreakTheLine) {
  using namespace std::string_literals;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "\"\""},
      {"plain text", "\"plain text\""},
      // A multi-line SMTP reply, as a filter gives it.
      {"550-5.7.1 first\r\n550 5.7.1 second", "\"550-5.7.1 first\\r\\n550 5.7.1 second\""},
      {"say \"hi\" \\ there", "\"say \\\"hi\\\" \\\\ there\""},
      {"tab\there", "\"tab\\there\""},
      {"nul\0bel\x07"
       "del\x7f"s,
       "\"nul\\x00bel\\x07del\\x7f\""},
      {"caf\xc3\xa9", "\"caf\xc3\xa9\""},  // UTF-8 stays as it is
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(log_quote(in), want) << in;
}

}  // namespace
}  // namespace estafette::base
