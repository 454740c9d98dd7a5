// The daemons' common main(): the start-up failures and their exit statuses (bad options, a
// missing --fd, a bad config with file:line, a failing prepare step), checked in this process
// because they end before logging and signals are set up; the later steps (a failing body or
// privilege drop, SIGTERM/SIGINT/SIGHUP reaching the hooks) in death tests, which run in a
// child process.
#include "lib/daemon/daemon.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lib/base/exit_codes.h"

namespace estafette::daemon {
namespace {

struct Outcome {
  int status;
  std::string err;  // what went to stderr
};

DaemonSpec test_spec() {
  DaemonSpec spec;
  spec.program = "estafette-test";
  spec.log_name = "test";
  spec.usage = "--fd N [--config PATH]";
  return spec;
}

// run() with argv {"prog", words...}; stderr captured.
Outcome run_with(std::vector<std::string> words, const DaemonSpec& spec, const Body& body) {
  words.insert(words.begin(), "prog");
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  ::testing::internal::CaptureStderr();
  int status = run(static_cast<int>(words.size()), argv.data(), spec, body);
  return {status, ::testing::internal::GetCapturedStderr()};
}

int body_not_reached(Context&) {
  ADD_FAILURE() << "the body ran";
  return 99;
}

class ConfigFile {
 public:
  explicit ConfigFile(const std::string& text)
      : path_(std::filesystem::temp_directory_path() /
              ("estafette-daemon-test-" + std::to_string(::getpid()) + ".conf")) {
    std::ofstream(path_) << text;
  }
  ~ConfigFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(DaemonRun, BadOptionPrintsUsageAndExits2) {
  auto r = run_with({"--bogus"}, test_spec(), body_not_reached);
  EXPECT_EQ(r.status, base::kExitBadStart);
  EXPECT_EQ(r.err, "usage: prog --fd N [--config PATH]\n");
  auto spec = test_spec();
  spec.options.fd = false;
  r = run_with({"--fd", "3"}, spec, body_not_reached);
  EXPECT_EQ(r.status, 2);
  r = run_with({"--processes", "2"}, test_spec(), body_not_reached);  // not accepted
  EXPECT_EQ(r.status, 2);
}

TEST(DaemonRun, ModuleNeedsFd) {
  auto spec = test_spec();
  spec.needs_fd = true;
  auto r = run_with({"-c", "x.conf"}, spec, body_not_reached);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "estafette-test: --fd is required (courierd starts this program)\n");
}

TEST(DaemonRun, BadConfigNamesFileAndLine) {
  ConfigFile conf("# comment\nlisten = 127.0.0.1:2525\nMAXHOST = many\n");
  auto r = run_with({"-c", conf.path()}, test_spec(), body_not_reached);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("estafette-test: " + conf.path() + ":3: MAXHOST", 0), 0u) << r.err;
  EXPECT_EQ(r.err.back(), '\n');
  r = run_with({"-c", conf.path() + ".missing"}, test_spec(), body_not_reached);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("estafette-test: " + conf.path() + ".missing", 0), 0u) << r.err;
}

TEST(DaemonRun, PrepareSeesTheConfigAndMayEndTheRun) {
  ConfigFile conf("hostname = prepare.test\n");
  auto spec = test_spec();
  std::string seen_path, seen_host;
  spec.prepare = [&](Startup& s) -> std::optional<int> {
    seen_path = s.config_path;
    seen_host = s.config.hostname;
    return 7;
  };
  auto r = run_with({"-c", conf.path()}, spec, body_not_reached);
  EXPECT_EQ(r.status, 7);
  EXPECT_EQ(seen_path, conf.path());  // absolute (temp_directory_path is)
  EXPECT_EQ(seen_host, "prepare.test");
  EXPECT_EQ(r.err, "");
}

TEST(DaemonRun, ConfigPathIsMadeAbsolute) {
  auto dir = std::filesystem::current_path();
  std::filesystem::current_path(std::filesystem::temp_directory_path());
  ConfigFile conf("hostname = relative.test\n");
  auto spec = test_spec();
  std::string seen;
  spec.prepare = [&](Startup& s) -> std::optional<int> {
    seen = s.config_path;
    return 0;
  };
  auto name = std::filesystem::path(conf.path()).filename().string();
  auto r = run_with({"--config", name}, spec, body_not_reached);
  std::filesystem::current_path(dir);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(seen, conf.path());
  // No -c: the embedded default, and an empty path.
  r = run_with({}, spec, body_not_reached);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(seen, "");
}

TEST(DaemonRun, PrepareFailureExits2WithTheReason) {
  auto spec = test_spec();
  spec.prepare = [](Startup&) -> std::optional<int> {
    throw std::runtime_error("cannot create /nowhere: Permission denied");
  };
  auto r = run_with({}, spec, body_not_reached);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "estafette-test: cannot create /nowhere: Permission denied\n");
}

// From here the steps after logging and signals: each in a child process.
using DaemonRunDeathTest = ::testing::Test;

int run_in_child(std::vector<std::string> words, const DaemonSpec& spec, const Body& body) {
  words.insert(words.begin(), "prog");
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  return run(static_cast<int>(words.size()), argv.data(), spec, body);
}

TEST_F(DaemonRunDeathTest, BodyExceptionExits1WithTheReason) {
  EXPECT_EXIT(std::exit(run_in_child({}, test_spec(),
                                     [](Context&) -> int { throw std::runtime_error("boom"); })),
              ::testing::ExitedWithCode(1), "estafette-test: boom");
}

TEST_F(DaemonRunDeathTest, AsRootFailureExits1BeforeTheBody) {
  auto spec = test_spec();
  spec.as_root = [](Startup&) { throw std::runtime_error("bind 127.0.0.1:25: in use"); };
  EXPECT_EXIT(std::exit(run_in_child({}, spec, body_not_reached)), ::testing::ExitedWithCode(1),
              "estafette-test: bind 127.0.0.1:25: in use");
}

TEST_F(DaemonRunDeathTest, MissingUserExits1) {
  ConfigFile conf("user = no-such-user-estafette\n");
  auto spec = test_spec();
  spec.privileges = Privileges::Drop;
  EXPECT_EXIT(std::exit(run_in_child({"-c", conf.path()}, spec, body_not_reached)),
              ::testing::ExitedWithCode(1), "user 'no-such-user-estafette'.*no such user");
  // Keep: the user is not looked up at all.
  spec.privileges = Privileges::Keep;
  EXPECT_EXIT(std::exit(run_in_child({"-c", conf.path()}, spec, [](Context&) { return 4; })),
              ::testing::ExitedWithCode(4), "");
}

TEST_F(DaemonRunDeathTest, SigtermStopsTheLoopByDefault) {
  EXPECT_EXIT(std::exit(run_in_child({}, test_spec(),
                                     [](Context& ctx) {
                                       ::kill(::getpid(), SIGTERM);  // taken on the loop
                                       return ctx.run();
                                     })),
              ::testing::ExitedWithCode(0), "");
}

TEST_F(DaemonRunDeathTest, StopAndReloadHooks) {
  auto spec = test_spec();
  spec.reload = true;
  EXPECT_EXIT(std::exit(run_in_child({}, spec,
                                     [](Context& ctx) {
                                       int reloads = 0;
                                       bool stopped = false;
                                       ctx.on_reload([&] {
                                         ++reloads;
                                         ::kill(::getpid(), SIGINT);
                                       });
                                       ctx.on_stop([&] {
                                         stopped = true;
                                         ctx.loop.stop();
                                       });
                                       ::kill(::getpid(), SIGHUP);
                                       ctx.run();
                                       return reloads == 1 && stopped ? 0 : 5;
                                     })),
              ::testing::ExitedWithCode(0), "");
}

TEST_F(DaemonRunDeathTest, WithoutReloadSighupKeepsItsDefault) {
  // A daemon without a reload hook keeps SIGHUP's default action. The default, whatever this
  // process inherited (under nohup SIGHUP comes ignored, and the child would wait for ever).
  EXPECT_EXIT((::signal(SIGHUP, SIG_DFL),
               std::exit(run_in_child({}, test_spec(),
                                      [](Context& ctx) {
                                        sigset_t hup;  // blocked by a loop of an earlier test?
                                        sigemptyset(&hup);
                                        sigaddset(&hup, SIGHUP);
                                        ::sigprocmask(SIG_UNBLOCK, &hup, nullptr);
                                        ::kill(::getpid(), SIGHUP);
                                        return ctx.run();
                                      }))),
              ::testing::KilledBySignal(SIGHUP), "");
}

TEST_F(DaemonRunDeathTest, SigpipeIsIgnored) {
  EXPECT_EXIT(std::exit(run_in_child({}, test_spec(),
                                     [](Context&) {
                                       int p[2];
                                       if (::pipe(p) != 0) return 6;
                                       ::close(p[0]);
                                       // EPIPE instead of death by SIGPIPE.
                                       return ::write(p[1], "x", 1) < 0 && errno == EPIPE ? 0 : 5;
                                     })),
              ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace estafette::daemon
