// The Supervisor's start and reload (replace) with real child processes: shell scripts named
// like the daemons (ESTAFETTE_LIBEXEC points program_path at them) that speak the readiness
// protocol and log what they are told to a shared journal. Checked: a start is reported once
// every child is ready, or with the first child's own error; a reload starts the new esmtpd
// processes before the old ones are drained and the new courierd only after the old one has
// exited; a reload whose new esmtpd fails withdraws it and leaves the old ones alone.
#include "supervisor/supervisor.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace estafette::supervisor {
namespace {

using namespace std::chrono_literals;

// A daemon: logs "start NAME MODE PID", says ready (or fails in mode "fail"), logs
// "drain NAME MODE PID" on SIGUSR2 and exits, exits on SIGTERM.
constexpr const char* kScript = R"(#!/bin/bash
name=$(basename "$0"); mode=ok; fd=
while [ $# -gt 0 ]; do
  case "$1" in --mode) mode=$2; shift ;; --ready-fd) fd=$2; shift ;; esac
  shift
done
echo "start $name $mode $$" >> "$JOURNAL"
if [ "$mode" = fail ]; then echo "error $name cannot start: bad thing" >&$fd; exit 1; fi
trap 'echo "drain $name $mode $$" >> "$JOURNAL"; exit 0' USR2
trap 'exit 0' TERM
sleep 0.2
echo ready >&$fd
exec {fd}>&-
while :; do sleep 0.05; done
)";

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("estafette-supervisor-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    for (const char* name : {"estafette-courierd", "estafette-esmtpd"}) {
      auto path = dir_ / name;
      std::ofstream(path) << kScript;
      ::chmod(path.c_str(), 0755);
    }
    journal_ = (dir_ / "journal").string();
    ::setenv("ESTAFETTE_LIBEXEC", dir_.c_str(), 1);
    ::setenv("JOURNAL", journal_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("ESTAFETTE_LIBEXEC");
    ::unsetenv("JOURNAL");
    std::filesystem::remove_all(dir_);
  }

  static std::vector<Program> programs(const std::string& mode, std::size_t esmtpd_copies = 2) {
    Program courierd;
    courierd.name = "estafette-courierd";
    courierd.args = {"--mode", mode};
    courierd.drain_signal = SIGUSR2;
    Program esmtpd;
    esmtpd.name = "estafette-esmtpd";
    esmtpd.args = {"--mode", mode};
    esmtpd.copies = esmtpd_copies;
    esmtpd.overlap = true;
    esmtpd.drain_signal = SIGUSR2;
    return {courierd, esmtpd};
  }

  std::vector<std::string> journal() const {
    std::ifstream in(journal_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  // The index of the first journal line starting with `prefix`, or -1.
  int at(const std::string& prefix) const {
    auto lines = journal();
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (lines[i].starts_with(prefix)) return static_cast<int>(i);
    return -1;
  }
  int count(const std::string& prefix) const {
    int n = 0;
    for (const auto& l : journal()) n += l.starts_with(prefix);
    return n;
  }

  // Runs the loop until `done` is set, for at most 20 s.
  static void run_until(event::Loop& loop, const bool& done) {
    bool late = false;
    auto guard = loop.add_timer(20s, [&] { late = true; });
    while (!done && !late) {
      auto tick = loop.add_timer(20ms, [&loop] { loop.stop(); });
      loop.run();
      loop.cancel_timer(tick);
    }
    loop.cancel_timer(guard);
  }

  std::filesystem::path dir_;
  std::string journal_;
};

TEST_F(SupervisorTest, StartReportsReadyThenReloadOverlapsEsmtpdAndSequencesCourierd) {
  event::Loop loop;
  Supervisor supervisor(loop, "", (dir_ / "children").string());
  bool done = false, ok = false;
  std::string error;
  supervisor.start(programs("ok"), [&](bool o, const std::string& e) {
    done = true;
    ok = o;
    error = e;
  });
  run_until(loop, done);
  ASSERT_TRUE(done);
  EXPECT_TRUE(ok) << error;
  EXPECT_EQ(count("start estafette-esmtpd ok"), 2);

  done = false;
  ASSERT_TRUE(supervisor.replace(programs("new"), [&](bool o, const std::string& e) {
    done = true;
    ok = o;
    error = e;
  }));
  EXPECT_FALSE(supervisor.replace(programs("new"), {}));  // one at a time
  run_until(loop, done);
  ASSERT_TRUE(done);
  EXPECT_TRUE(ok) << error;
  // The new esmtpd processes ran before the old ones were told to drain...
  ASSERT_GE(at("drain estafette-esmtpd ok"), 0);
  EXPECT_LT(at("start estafette-esmtpd new"), at("drain estafette-esmtpd ok"));
  EXPECT_EQ(count("start estafette-esmtpd new"), 2);
  // ...and the new courierd started only after the old one drained.
  ASSERT_GE(at("drain estafette-courierd ok"), 0);
  EXPECT_GT(at("start estafette-courierd new"), at("drain estafette-courierd ok"));
  EXPECT_EQ(count("drain estafette-esmtpd new") + count("drain estafette-courierd new"), 0);

  supervisor.stop();
  loop.add_timer(15s, [&] { loop.stop(); });
  loop.run();  // stop() stops the loop once every child has exited
}

TEST_F(SupervisorTest, AFailedReloadWithdrawsTheNewEsmtpdAndKeepsTheOld) {
  event::Loop loop;
  Supervisor supervisor(loop, "", "");
  bool done = false, ok = false;
  std::string error;
  auto outcome = [&](bool o, const std::string& e) {
    done = true;
    ok = o;
    error = e;
  };
  supervisor.start(programs("ok"), outcome);
  run_until(loop, done);
  ASSERT_TRUE(ok) << error;
  done = false;
  ASSERT_TRUE(supervisor.replace(programs("fail"), outcome));
  run_until(loop, done);
  ASSERT_TRUE(done);
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find("estafette-esmtpd"), std::string::npos) << error;
  EXPECT_NE(error.find("cannot start: bad thing (exited with status 1)"), std::string::npos)
      << error;
  EXPECT_EQ(count("drain "), 0);  // nobody was drained: the old daemons serve on
  EXPECT_EQ(count("start estafette-courierd fail"), 0);
  supervisor.stop();
  loop.add_timer(15s, [&] { loop.stop(); });
  loop.run();
}

TEST_F(SupervisorTest, AStartFailsWithTheDaemonsOwnError) {
  event::Loop loop;
  Supervisor supervisor(loop, "", "");
  bool done = false, ok = true;
  std::string error;
  supervisor.start(programs("fail", 1), [&](bool o, const std::string& e) {
    done = true;
    ok = o;
    error = e;
  });
  run_until(loop, done);
  ASSERT_TRUE(done);
  EXPECT_FALSE(ok);
  // Both fail; whichever the Supervisor heard of first is named, with its own words.
  EXPECT_TRUE(error.starts_with("estafette-courierd: estafette-courierd cannot start") ||
              error.starts_with("estafette-esmtpd: estafette-esmtpd cannot start"))
      << error;
  EXPECT_TRUE(error.ends_with("bad thing (exited with status 1)")) << error;
  supervisor.stop();
  loop.add_timer(15s, [&] { loop.stop(); });
  loop.run();
}

}  // namespace
}  // namespace estafette::supervisor
