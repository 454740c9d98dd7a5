// estafette-sendmail's exit codes per SMTP stage and reply, and the -bs line-end fixer.
#include "lib/submit/client.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/smtp/split_feeder.h"

namespace estafette::submit {
namespace {

struct ExitCase {
  Stage stage;
  int code;
  int expected;
};

class SendmailExitCode : public ::testing::TestWithParam<ExitCase> {};

TEST_P(SendmailExitCode, MapsRepliesToSysexits) {
  smtp::Reply reply;
  reply.code = GetParam().code;
  EXPECT_EQ(exit_code_for(GetParam().stage, reply), GetParam().expected)
      << static_cast<int>(GetParam().stage) << " " << GetParam().code;
}

INSTANTIATE_TEST_SUITE_P(
    Table, SendmailExitCode,
    ::testing::Values(ExitCase{Stage::Greeting, 421, 75}, ExitCase{Stage::Greeting, 554, 69},
                      ExitCase{Stage::Ehlo, 500, 69}, ExitCase{Stage::Mail, 451, 75},
                      ExitCase{Stage::Mail, 553, 65}, ExitCase{Stage::Rcpt, 550, 67},
                      ExitCase{Stage::Rcpt, 452, 75}, ExitCase{Stage::Rcpt, 501, 67},
                      ExitCase{Stage::Data, 554, 76}, ExitCase{Stage::Data, 451, 75},
                      ExitCase{Stage::DataEnd, 552, 65}, ExitCase{Stage::DataEnd, 451, 75},
                      ExitCase{Stage::Rcpt, 354, 76}, ExitCase{Stage::DataEnd, 250, 76}));

struct FixCase {
  std::string in;
  std::string out;
};

class SendmailLineEndFixer : public ::testing::TestWithParam<FixCase> {};

TEST_P(SendmailLineEndFixer, MakesBareLfCrlfSplitAnywhere) {
  for (const auto& split : smtp::testing::all_splits(GetParam().in)) {
    LineEndFixer fixer;
    std::string out;
    for (auto chunk : split.chunks) out += fixer.feed(chunk);
    EXPECT_EQ(out, GetParam().out) << split.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, SendmailLineEndFixer,
                         ::testing::Values(FixCase{"", ""}, FixCase{"EHLO x\n", "EHLO x\r\n"},
                                           FixCase{"EHLO x\r\n", "EHLO x\r\n"},
                                           FixCase{"a\n\nb\r\nc\n", "a\r\n\r\nb\r\nc\r\n"},
                                           FixCase{"bare\rcr\n", "bare\rcr\r\n"}));

}  // namespace
}  // namespace estafette::submit
