// estafette-sendmail's command line: a table of argument lists and what they mean.
#include "sendmail/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::sendmail {
namespace {

struct OptionsCase {
  std::string name{};
  std::vector<std::string> args{};
  bool ok = false;
  Mode mode = Mode::Deliver;
  std::string sender = "-";  // "-": not given
  std::string full_name{};
  bool extract = false;
  bool ignore_dots = false;
  std::string config{};
  std::vector<std::string> recipients{};
  std::string error{};  // part of the error text when !ok
  std::string flush_target{};
  std::string program = "sendmail";  // argv[0]
};

void PrintTo(const OptionsCase& c, std::ostream* os) {
  *os << c.name;
}

class SendmailOptions : public ::testing::TestWithParam<OptionsCase> {};

TEST_P(SendmailOptions, Parses) {
  const auto& c = GetParam();
  auto r = parse_options(c.args, c.program);
  ASSERT_EQ(r.options.has_value(), c.ok) << r.error;
  if (!c.ok) {
    EXPECT_NE(r.error.find(c.error), std::string::npos) << r.error;
    return;
  }
  const auto& o = *r.options;
  EXPECT_EQ(o.mode, c.mode);
  EXPECT_EQ(o.sender.value_or("-"), c.sender);
  EXPECT_EQ(o.full_name, c.full_name);
  EXPECT_EQ(o.extract_recipients, c.extract);
  EXPECT_EQ(o.ignore_dots, c.ignore_dots);
  EXPECT_EQ(o.config_path, c.config);
  EXPECT_EQ(o.recipients, c.recipients);
  EXPECT_EQ(o.flush_target, c.flush_target);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SendmailOptions,
    ::testing::Values(
        OptionsCase{.name = "Nothing", .args = {}, .ok = true},
        OptionsCase{
            .name = "Recipients", .args = {"a@x", "b@y"}, .ok = true, .recipients = {"a@x", "b@y"}},
        OptionsCase{.name = "SenderSeparate",
                    .args = {"-f", "s@x", "a@x"},
                    .ok = true,
                    .sender = "s@x",
                    .recipients = {"a@x"}},
        OptionsCase{.name = "SenderAttached", .args = {"-fs@x"}, .ok = true, .sender = "s@x"},
        OptionsCase{.name = "SenderAngles", .args = {"-f", "<s@x>"}, .ok = true, .sender = "s@x"},
        OptionsCase{.name = "NullSender", .args = {"-f", "<>"}, .ok = true, .sender = ""},
        OptionsCase{.name = "DashR", .args = {"-r", "s@x"}, .ok = true, .sender = "s@x"},
        OptionsCase{.name = "FullName",
                    .args = {"-F", "Jane Doe", "-t"},
                    .ok = true,
                    .full_name = "Jane Doe",
                    .extract = true},
        OptionsCase{
            .name = "Grouped", .args = {"-ti"}, .ok = true, .extract = true, .ignore_dots = true},
        OptionsCase{.name = "DashOi",
                    .args = {"-oi", "-t"},
                    .ok = true,
                    .extract = true,
                    .ignore_dots = true},
        OptionsCase{
            .name = "NoOps",
            .args = {"-odi", "-odb", "-oem", "-oep", "-om", "-v", "-N", "never", "-U", "a@x"},
            .ok = true,
            .recipients = {"a@x"}},
        OptionsCase{
            .name = "BigC", .args = {"-C", "/etc/e.conf"}, .ok = true, .config = "/etc/e.conf"},
        OptionsCase{.name = "SmallC", .args = {"-c/x.conf"}, .ok = true, .config = "/x.conf"},
        OptionsCase{.name = "SmtpMode", .args = {"-bs"}, .ok = true, .mode = Mode::Smtp},
        OptionsCase{.name = "ListQueue", .args = {"-bp"}, .ok = true, .mode = Mode::ListQueue},
        OptionsCase{
            .name = "NewAliasesMode", .args = {"-bi"}, .ok = true, .mode = Mode::NewAliases},
        OptionsCase{.name = "NewAliasesI", .args = {"-I"}, .ok = true, .mode = Mode::NewAliases},
        OptionsCase{.name = "CalledMailq",
                    .args = {"-C", "/x.conf"},
                    .ok = true,
                    .mode = Mode::ListQueue,
                    .config = "/x.conf",
                    .program = "/usr/bin/mailq"},
        OptionsCase{.name = "CalledNewaliases",
                    .args = {},
                    .ok = true,
                    .mode = Mode::NewAliases,
                    .program = "newaliases"},
        OptionsCase{.name = "CalledSendmailByPath",
                    .args = {"a@x"},
                    .ok = true,
                    .recipients = {"a@x"},
                    .program = "/usr/sbin/sendmail"},
        OptionsCase{.name = "CalledOddNameIsSendmail",
                    .args = {"a@x"},
                    .ok = true,
                    .recipients = {"a@x"},
                    .program = "/opt/mailq/estafette-sendmail"},
        OptionsCase{.name = "RunQueue", .args = {"-q"}, .ok = true, .mode = Mode::Flush},
        OptionsCase{.name = "RunQueueInterval",
                    .args = {"-q30m", "-C", "/x.conf"},
                    .ok = true,
                    .mode = Mode::Flush,
                    .config = "/x.conf"},
        OptionsCase{.name = "RunQueueSite",
                    .args = {"-qRexample.org"},
                    .ok = true,
                    .mode = Mode::Flush,
                    .flush_target = "example.org"},
        OptionsCase{.name = "RunQueueId",
                    .args = {"-qI0MWTF7F4S-00HXU-0000TDKU"},
                    .ok = true,
                    .mode = Mode::Flush,
                    .flush_target = "0MWTF7F4S-00HXU-0000TDKU"},
        OptionsCase{.name = "RunQueueBadForm", .args = {"-qX"}, .ok = false, .error = "-qX"},
        OptionsCase{
            .name = "SmtpModeSeparate", .args = {"-b", "s"}, .ok = true, .mode = Mode::Smtp},
        OptionsCase{
            .name = "DeliverMode", .args = {"-bm", "a@x"}, .ok = true, .recipients = {"a@x"}},
        OptionsCase{.name = "DoubleDash",
                    .args = {"-i", "--", "-odd@x", "-t"},
                    .ok = true,
                    .ignore_dots = true,
                    .recipients = {"-odd@x", "-t"}},
        OptionsCase{.name = "FirstNonOptionEnds",
                    .args = {"a@x", "-t"},
                    .ok = true,
                    .recipients = {"a@x", "-t"}},
        OptionsCase{.name = "MissingArgument",
                    .args = {"-f"},
                    .ok = false,
                    .error = "-f requires an argument"},
        OptionsCase{.name = "Unknown", .args = {"-X"}, .ok = false, .error = "unknown option -X"},
        OptionsCase{.name = "UnsupportedMode",
                    .args = {"-bd"},
                    .ok = false,
                    .error = "-bd is not supported"},
        OptionsCase{
            .name = "EmptyRecipient", .args = {"--", ""}, .ok = false, .error = "empty recipient"}),
    [](const ::testing::TestParamInfo<OptionsCase>& info) { return info.param.name; });

}  // namespace
}  // namespace estafette::sendmail
