// Table tests for relay_clientcerts (lib/config/fingerprints.h): the two spellings of a SHA-256
// fingerprint, comments and notes, and the lines that must be refused with file:line.
#include "lib/config/fingerprints.h"

#include <gtest/gtest.h>

#include <string>

#include "lib/config/config.h"

namespace estafette::config {
namespace {

const std::string kHex = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789ABCDEF";
const std::string kCanonical =
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:"
    "CD:EF";

struct CanonicalCase {
  std::string input;
  std::string expect;  // "" = refused
};
class FingerprintCanonical : public ::testing::TestWithParam<CanonicalCase> {};

TEST_P(FingerprintCanonical, OneForm) {
  EXPECT_EQ(canonical_fingerprint(GetParam().input), GetParam().expect) << GetParam().input;
}
INSTANTIATE_TEST_SUITE_P(
    Table, FingerprintCanonical,
    ::testing::Values(
        CanonicalCase{kHex, kCanonical}, CanonicalCase{kCanonical, kCanonical},
        CanonicalCase{
            "01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:"
            "89:ab:cd:ef",
            kCanonical},
        CanonicalCase{"", ""}, CanonicalCase{kHex.substr(2), ""},  // 31 bytes
        CanonicalCase{kHex + "00", ""},                            // 33 bytes
        CanonicalCase{kHex.substr(0, 40), ""},                     // SHA-1 length
        CanonicalCase{kCanonical.substr(3), ""},
        CanonicalCase{"g" + kHex.substr(1), ""},           // not hex
        CanonicalCase{"01-" + kCanonical.substr(3), ""},   // other separator
        CanonicalCase{"012:" + kCanonical.substr(4), ""},  // misplaced colon
        CanonicalCase{kHex.substr(0, 62) + ":F", ""},      // mixed forms
        CanonicalCase{std::string(95, ':'), ""}));

TEST(FingerprintFile, CommentsNotesAndBothForms) {
  std::string other(64, 'e');
  auto set = parse_fingerprints(
      "# trusted client certificates\n"
      "\n" +
          kHex + "   laptop.example.org\n" + "  " + kCanonical + "\n" + other +
          "\t# the relay box\n",
      "relay_clientcerts");
  ASSERT_EQ(set.size(), 2u);
  EXPECT_TRUE(set.contains(kCanonical));
  EXPECT_TRUE(set.contains(canonical_fingerprint(other)));
  EXPECT_FALSE(set.contains(kHex));  // only the canonical form is stored
}

struct BadCase {
  std::string text;
  std::string error;
};
class FingerprintFileBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(FingerprintFileBad, RefusedWithFileAndLine) {
  try {
    parse_fingerprints(GetParam().text, "certs");
    FAIL() << "accepted: " << GetParam().text;
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).substr(0, GetParam().error.size()), GetParam().error);
  }
}
INSTANTIATE_TEST_SUITE_P(
    Table, FingerprintFileBad,
    ::testing::Values(BadCase{"# ok\n" + kHex + "\nnot-a-fingerprint\n",
                              "certs:3: 'not-a-fingerprint' is not a SHA-256 fingerprint"},
                      BadCase{kHex.substr(0, 40) + "\n", "certs:1: '" + kHex.substr(0, 40) + "'"},
                      BadCase{"\n\n" + kHex + "x note\n", "certs:3: '" + kHex + "x'"}));

TEST(FingerprintFile, MissingFileIsAConfigError) {
  EXPECT_THROW(load_fingerprints("/nonexistent/relay_clientcerts"), ConfigError);
}

}  // namespace
}  // namespace estafette::config
