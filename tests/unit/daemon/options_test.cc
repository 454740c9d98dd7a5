// The daemons' shared command line: -c/--config, --fd, and --processes and -f where they are
// accepted.
#include "lib/daemon/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::daemon {
namespace {

std::optional<DaemonArgs> parse(std::vector<std::string> words, bool takes_processes,
                                bool takes_fd = true, bool takes_foreground = false) {
  words.insert(words.begin(), "prog");
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  ::testing::internal::CaptureStderr();  // usage text on errors
  auto args = parse_daemon_args(static_cast<int>(words.size()), argv.data(), "usage",
                                {takes_fd, takes_processes, takes_foreground});
  ::testing::internal::GetCapturedStderr();
  return args;
}

struct CliCase {
  std::vector<std::string> words;
  bool takes_processes;
  bool ok;
  std::string config;
  int fd;
  std::size_t processes;
  int submit_fd = -1;
};
class DaemonArgsTable : public ::testing::TestWithParam<CliCase> {};
TEST_P(DaemonArgsTable, Parses) {
  const auto& p = GetParam();
  auto args = parse(p.words, p.takes_processes);
  ASSERT_EQ(args.has_value(), p.ok);
  if (!p.ok) return;
  EXPECT_EQ(args->config_path, p.config);
  EXPECT_EQ(args->fd, p.fd);
  EXPECT_EQ(args->processes, p.processes);
  EXPECT_EQ(args->submit_fd, p.submit_fd);
}
INSTANTIATE_TEST_SUITE_P(
    Table, DaemonArgsTable,
    ::testing::Values(CliCase{{}, false, true, "", -1, 1},
                      CliCase{{"-c", "a.conf"}, false, true, "a.conf", -1, 1},
                      CliCase{{"--config", "b", "--fd", "5"}, false, true, "b", 5, 1},
                      CliCase{{"-c", "a", "--processes", "2"}, true, true, "a", -1, 2},
                      CliCase{{"--processes", "2"}, false, false, "", -1, 1},
                      CliCase{{"--processes", "0"}, true, false, "", -1, 1},
                      CliCase{{"--processes", "2x"}, true, false, "", -1, 1},
                      CliCase{{"--processes"}, true, false, "", -1, 1},
                      CliCase{{"--fd", "-1"}, false, false, "", -1, 1},
                      CliCase{{"-x"}, false, false, "", -1, 1},
                      CliCase{{"--processes", "2", "--submit-fd", "3"}, true, true, "", -1, 2, 3},
                      CliCase{{"--submit-fd", "3"}, false, false, "", -1, 1},
                      CliCase{{"--submit-fd", "x"}, true, false, "", -1, 1},
                      CliCase{{"--submit-fd"}, true, false, "", -1, 1}));

// estafetted: -f and -c only.
TEST(DaemonArgs, Foreground) {
  auto args = parse({"-f", "-c", "x.conf"}, false, false, true);
  ASSERT_TRUE(args);
  EXPECT_TRUE(args->foreground);
  EXPECT_EQ(args->config_path, "x.conf");
  EXPECT_FALSE(parse({"-f"}, false, true, false));         // not accepted
  EXPECT_FALSE(parse({"--fd", "3"}, false, false, true));  // estafetted takes no --fd
  EXPECT_FALSE(parse({"-c"}, false, false, true));         // -c needs its value
  EXPECT_FALSE(parse({"-c", "a"}, false, false, true)->foreground);
}

}  // namespace
}  // namespace estafette::daemon

namespace estafette::daemon {
namespace {

// --ready-fd (every daemon) and --listen-fds (esmtpd, from estafetted).
TEST(DaemonArgs, ReadyFdAndListenFds) {
  auto args = parse({"--ready-fd", "7", "--listen-fds", "3,4,9"}, true);
  ASSERT_TRUE(args);
  EXPECT_EQ(args->ready_fd, 7);
  EXPECT_EQ(args->listen_fds, (std::vector<int>{3, 4, 9}));
  EXPECT_EQ(parse({"--ready-fd", "4"}, false, false)->ready_fd, 4);  // any daemon takes it
  EXPECT_EQ(parse({"--listen-fds", "5"}, true)->listen_fds, (std::vector<int>{5}));
  for (const char* bad : {"", "3,", ",3", "3,,4", "x", "3;4", "-1", "70000"})
    EXPECT_FALSE(parse({"--listen-fds", bad}, true)) << bad;
  EXPECT_FALSE(parse({"--listen-fds", "3"}, false));  // only where --processes is accepted
  EXPECT_FALSE(parse({"--ready-fd", "x"}, false));
  EXPECT_FALSE(parse({"--ready-fd"}, false));
  std::string many = "3";
  for (int i = 0; i < 256; ++i) many += ",3";
  EXPECT_FALSE(parse({"--listen-fds", many}, true));  // 257 fds: more than any config has
}

}  // namespace
}  // namespace estafette::daemon
