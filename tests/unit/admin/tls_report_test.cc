// admin/tls_report.h: the --date argument.
#include "admin/tls_report.h"

#include <gtest/gtest.h>

namespace estafette::admin {
namespace {

TEST(TlsReportDay, Table) {
  EXPECT_EQ(parse_day("2025-12-07"), 1765065600);
  EXPECT_EQ(parse_day("1970-01-01"), 0);
  EXPECT_EQ(parse_day("2024-02-29"), 1709164800);
  for (const char* bad : {"", "2025-12-7", "2025/12/07", "2025-13-01", "2025-02-30", "2023-02-29",
                          "1969-12-31", "2025-12-07x", "+025-12-07", "2025-00-10", "2025-12-00"})
    EXPECT_FALSE(parse_day(bad)) << bad;
}

}  // namespace
}  // namespace estafette::admin
