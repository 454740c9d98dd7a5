// In-process filter modules (filters/module.h), driven on an event::Loop as esmtpd's pipeline
// drives any filters::Filter. The modules are the real example filters built by make check
// (filters/examples/native_example.so, sample_milter.so) and test modules
// (tests/unit/filters/modules/): a future ABI version, a missing init symbol, and a libmilter
// filter that blocks 300 ms. The key test runs the same sample_milter.c as an external milter
// (Debian's libmilter, through milter::Client) and in-process (through Module) and compares.
#include "filters/module.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "filters/milter/client.h"
#include "tests/unit/test_servers.h"

#ifndef ESTAFETTE_TEST_BUILDDIR
#error ESTAFETTE_TEST_BUILDDIR is set by tests/local.am
#endif

namespace estafette::filters {
namespace {

using namespace std::chrono_literals;
using estafette::testing::free_port;
using estafette::testing::wait_tcp;
using Action = Verdict::Action;
using Kind = Modification::Kind;

const std::string kBuild = ESTAFETTE_TEST_BUILDDIR;
const std::string kNativeExample = kBuild + "/filters/examples/native_example.so";
const std::string kSampleModule = kBuild + "/filters/examples/sample_milter.so";
const std::string kSampleMilter = kBuild + "/filters/examples/sample_milter";
const std::string kBadAbi = kBuild + "/tests/unit/filters/modules/bad_abi.so";
const std::string kNoInit = kBuild + "/tests/unit/filters/modules/no_init.so";
const std::string kSlow = kBuild + "/tests/unit/filters/modules/slow_milter.so";
const std::string kSendmailSample = kBuild + "/tests/unit/filters/modules/sendmail_sample.so";
const std::string kModernModule = kBuild + "/tests/unit/filters/modules/modern_milter.so";
const std::string kModernMilter = kBuild + "/tests/unit/filters/modules/modern_milter";

using Clock = std::chrono::steady_clock;

struct Result {
  Verdict verdict{Action::Failed, "no answer (test guard)", {}};
  std::vector<Modification> mods;
  bool answered = false;
  bool answered_inside_call = false;
  Clock::duration took{};
};

// Starts a call, checks its callback did not run inside it, runs the loop until it answers.
template <typename Start>
Result wait_for(event::Loop& loop, Start start) {
  Result r;
  auto t0 = Clock::now();
  start([&r, &loop, t0](const Verdict& v) {
    r.verdict = v;
    r.answered = true;
    r.took = Clock::now() - t0;
    loop.stop();
  });
  r.answered_inside_call = r.answered;
  auto guard = loop.add_timer(10s, [&loop] { loop.stop(); });
  if (!r.answered) loop.run();
  loop.cancel_timer(guard);
  return r;
}

template <typename Start>
Result wait_eom(event::Loop& loop, Start start) {
  Result r;
  auto t0 = Clock::now();
  start([&r, &loop, t0](const Verdict& v, std::vector<Modification> mods) {
    r.verdict = v;
    r.mods = std::move(mods);
    r.answered = true;
    r.took = Clock::now() - t0;
    loop.stop();
  });
  r.answered_inside_call = r.answered;
  auto guard = loop.add_timer(10s, [&loop] { loop.stop(); });
  if (!r.answered) loop.run();
  loop.cancel_timer(guard);
  return r;
}

void run_for(event::Loop& loop, std::chrono::milliseconds ms) {
  auto t = loop.add_timer(ms, [&loop] { loop.stop(); });
  loop.run();
  loop.cancel_timer(t);
}

const Macros kConnectMacros = {{"j", "mx.estafette.test"},       {"{client_addr}", "127.0.0.1"},
                               {"{client_name}", "client.test"}, {"{client_port}", "40000"},
                               {"{client_resolve}", "OK"},       {"{estafette_dnsbl_score}", "0"},
                               {"{estafette_dnsbl_listed}", ""}, {"{estafette_ident}", "-"}};

Modification header_mod(Kind kind, std::string name, std::string value, std::uint32_t index = 0) {
  Modification m;
  m.kind = kind;
  m.name = std::move(name);
  m.value = std::move(value);
  m.index = index;
  return m;
}
Modification rcpt_mod(Kind kind, std::string address) {
  Modification m;
  m.kind = kind;
  m.address = std::move(address);
  return m;
}

}  // namespace
}  // namespace estafette::filters

namespace estafette::filters {
void PrintTo(const Modification& m, std::ostream* os) {
  *os << "{kind " << static_cast<int>(m.kind) << " name '" << m.name << "' value '" << m.value
      << "' index " << m.index << " address '" << m.address << "' args '" << m.args << "' body '"
      << m.body << "' text '" << m.text << "'}";
}
}  // namespace estafette::filters

namespace estafette::filters {
namespace {

std::string describe(const Verdict& v) {
  return std::string(to_string(v.action)) + " " + v.text;
}

void open_session(event::Loop& loop, Filter& f) {
  auto r = wait_for(loop, [&](auto done) {
    f.connect(kConnectMacros, "client.test", Family::Inet, 40000, "127.0.0.1", done);
  });
  ASSERT_EQ(r.verdict.action, Action::Continue) << describe(r.verdict);
  EXPECT_FALSE(r.answered_inside_call);
  r = wait_for(loop, [&](auto done) { f.helo({}, "helo.client.test", done); });
  ASSERT_EQ(r.verdict.action, Action::Continue) << describe(r.verdict);
}

// The rest of a message after MAIL: recipients, DATA, headers, EOH, body; returns EOM's result.
Result message(event::Loop& loop, Filter& f, const std::vector<std::string>& rcpts,
               const std::vector<std::pair<std::string, std::string>>& headers,
               const std::string& body) {
  auto cont = [](const Result& r) {
    EXPECT_EQ(r.verdict.action, Action::Continue) << describe(r.verdict);
    EXPECT_FALSE(r.answered_inside_call);
  };
  for (const std::string& to : rcpts)
    cont(wait_for(loop, [&](auto done) { f.rcpt({{"{rcpt_addr}", to}}, to, {}, done); }));
  cont(wait_for(loop, [&](auto done) { f.data({{"i", "QID7"}}, done); }));
  for (const auto& header : headers)
    cont(wait_for(loop, [&](auto done) { f.header(header.first, header.second, done); }));
  cont(wait_for(loop, [&](auto done) { f.eoh({}, done); }));
  cont(wait_for(loop, [&](auto done) { f.body(body, done); }));
  return wait_eom(loop, [&](auto done) { f.eom({{"i", "QID7"}}, done); });
}

// ---------------------------------------------------------------------------------------------
// Loading

std::string load_error(const std::string& path) {
  try {
    Module::load(path, {});
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "loaded";
}

TEST(FilterModule, WrongAbiVersionRefused) {
  EXPECT_EQ(load_error(kBadAbi), "module " + kBadAbi + ": ABI version 2, this esmtpd speaks 1");
}

TEST(FilterModule, MissingSymbolRefused) {
  EXPECT_EQ(load_error(kNoInit), "module " + kNoInit +
                                     ": no symbol estafette_filter_init (not an Estafette "
                                     "filter module)");
}

TEST(FilterModule, MissingFileRefused) {
  std::string e = load_error(kBuild + "/no/such/module.so");
  EXPECT_EQ(e.rfind("module " + kBuild + "/no/such/module.so: cannot load: ", 0), 0u) << e;
}

// ---------------------------------------------------------------------------------------------
// Native ABI

TEST(FilterModule, NativeExamplePendingAndTimer) {
  auto module = Module::load(kNativeExample, {});
  EXPECT_EQ(module->name(), "native-example");
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  EXPECT_EQ(f->name(), "native-example");
  open_session(loop, *f);

  auto r = wait_for(loop, [&](auto done) { f->mail({}, "<reject@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::ReplyCode);
  EXPECT_EQ(r.verdict.text, "550 5.7.1 rejected by native example");
  EXPECT_EQ(r.verdict.filter, "native-example");
  EXPECT_FALSE(r.answered_inside_call);
  f->abort();

  for (int n = 1; n <= 2; ++n) {
    r = wait_for(loop, [&](auto done) { f->mail({}, "<a@example.test>", {"SIZE=1"}, done); });
    EXPECT_EQ(r.verdict.action, Action::Continue);
    r = message(loop, *f, {"<b@example.test>"}, {{"Subject", " hi"}}, "body\r\n");
    ASSERT_EQ(r.verdict.action, Action::Continue) << describe(r.verdict);
    EXPECT_FALSE(r.answered_inside_call);
    EXPECT_GE(r.took, 10ms);  // PENDING, answered by the module's 10 ms timer
    ASSERT_EQ(r.mods.size(), 1u);
    EXPECT_EQ(r.mods[0],
              header_mod(Kind::AddHeader, "X-Estafette-Native", " 127.0.0.1 " + std::to_string(n)));
  }
  f->quit();
}

TEST(FilterModule, NativeCancelDuringPending) {
  auto module = Module::load(kNativeExample, {});
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  open_session(loop, *f);
  wait_for(loop, [&](auto done) { f->mail({}, "<a@example.test>", {}, done); });
  bool called = false;
  f->eom({}, [&](const Verdict&, std::vector<Modification>) { called = true; });
  f.reset();  // the module's 10 ms timer is removed with the session
  run_for(loop, 50ms);
  EXPECT_FALSE(called);
}

// ---------------------------------------------------------------------------------------------
// libmilter API through the shim

TEST(FilterModule, SampleMilterInProcess) {
  auto module = Module::load(kSampleModule, {});
  EXPECT_EQ(module->name(), "estafette-sample");
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  open_session(loop, *f);

  auto r = wait_for(loop, [&](auto done) { f->mail({}, "<reject@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::ReplyCode);
  EXPECT_EQ(r.verdict.text, "550 5.7.1 sender rejected by sample");
  EXPECT_FALSE(r.answered_inside_call);
  f->abort();

  r = wait_for(loop, [&](auto done) { f->mail({}, "<ok@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::Continue);
  r = message(loop, *f, {"<old@estafette.test>", "<keep@estafette.test>"}, {{"Subject", " hello"}},
              "hello\r\n");
  ASSERT_EQ(r.verdict.action, Action::Continue) << describe(r.verdict);
  std::vector<Modification> want = {
      header_mod(Kind::AddHeader, "X-Estafette-Sample", " ok"),
      header_mod(Kind::AddHeader, "X-Estafette-Sample-Client", " 127.0.0.1 QID7"),
      rcpt_mod(Kind::DelRcpt, "<old@estafette.test>"),
      rcpt_mod(Kind::AddRcpt, "<new@estafette.test>"),
  };
  EXPECT_EQ(r.mods, want);

  // The next message has no rewrite.
  wait_for(loop, [&](auto done) { f->mail({}, "<ok@example.test>", {}, done); });
  r = message(loop, *f, {"<keep@estafette.test>"}, {}, "x\r\n");
  ASSERT_EQ(r.mods.size(), 2u);
  EXPECT_EQ(r.mods[0], header_mod(Kind::AddHeader, "X-Estafette-Sample", " ok"));
}

std::string temp_log() {
  char path[] = "/tmp/estafette-module-test.XXXXXX";
  int fd = ::mkstemp(path);
  if (fd >= 0) ::close(fd);
  return path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FilterModule, SlowLibmilterCallbackDoesNotBlockTheLoop) {
  std::string log = temp_log();
  auto module = Module::load(kSlow, {"-l", log});
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  open_session(loop, *f);
  std::optional<Clock::duration> timer_at;
  auto t0 = Clock::now();
  loop.add_timer(50ms, [&] { timer_at = Clock::now() - t0; });
  auto r = wait_for(loop, [&](auto done) { f->mail({}, "<slow@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::Continue) << describe(r.verdict);
  EXPECT_GE(r.took, 300ms);
  ASSERT_TRUE(timer_at.has_value()) << "the loop's timer did not fire while the filter slept";
  EXPECT_LT(*timer_at, 250ms);
  f.reset();
  module.reset();  // joins the shim's workers: xxfi_close has run
  EXPECT_EQ(slurp(log), "envfrom\nenvfrom-done\nclose\n");
  ::unlink(log.c_str());
}

TEST(FilterModule, NoAnswerInTimeFailsTheCallAndTheSession) {
  std::string log = temp_log();
  auto module = Module::load(kSlow, {"-l", log});
  event::Loop loop;
  // The slow callback takes 300 ms; the module is given 100 ms (milter_command_timeout).
  auto f = module->open(loop, DefaultAction::Tempfail, ModuleTimeouts{100ms, 100ms});
  open_session(loop, *f);
  auto r = wait_for(loop, [&](auto done) { f->mail({}, "<slow@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::Failed) << describe(r.verdict);
  EXPECT_EQ(r.verdict.text,
            "module slow: never resumed: mail still pending after 100ms (milter_command_timeout)");
  EXPECT_GE(r.took, 100ms);
  EXPECT_LT(r.took, 280ms);
  // The late answer finds nothing pending; later calls fail at once.
  run_for(loop, 300ms);
  r = wait_for(loop, [&](auto done) { f->rcpt({}, "<b@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::Failed);
  EXPECT_LT(r.took, 50ms);
  f.reset();
  module.reset();
  ::unlink(log.c_str());
}

TEST(FilterModule, DestroyingMidCallCancels) {
  std::string log = temp_log();
  auto module = Module::load(kSlow, {"-l", log});
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  open_session(loop, *f);
  bool called = false;
  f->mail({}, "<slow@example.test>", {}, [&](const Verdict&) { called = true; });
  loop.add_timer(50ms, [&] { f.reset(); });  // while the worker sleeps in xxfi_envfrom
  run_for(loop, 600ms);
  EXPECT_FALSE(called);
  EXPECT_EQ(f, nullptr);
  module.reset();
  // The filter finished its call and got xxfi_close; nothing else ran.
  EXPECT_EQ(slurp(log), "envfrom\nenvfrom-done\nclose\n");
  ::unlink(log.c_str());
}

TEST(FilterModule, InvalidStatusFails) {
  auto module = Module::load(kSlow, {});
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Reject);
  EXPECT_EQ(f->default_action(), DefaultAction::Reject);
  open_session(loop, *f);
  auto r = wait_for(loop, [&](auto done) { f->mail({}, "<bad@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::Failed);
  EXPECT_EQ(r.verdict.text, "module slow: invalid status 100");
}

TEST(FilterModule, HeaderLeadingSpace) {
  for (bool leadspc : {false, true}) {
    std::vector<std::string> args;
    if (leadspc) args.push_back("-s");
    auto module = Module::load(kSlow, args);
    event::Loop loop;
    auto f = module->open(loop, DefaultAction::Tempfail);
    open_session(loop, *f);
    wait_for(loop, [&](auto done) { f->mail({}, "<a@example.test>", {}, done); });
    auto r = message(loop, *f, {"<b@example.test>"}, {{"Subject", "  two"}}, "x\r\n");
    ASSERT_EQ(r.mods.size(), 1u);
    // Without SMFIP_HDR_LEADSPC the filter sees "two" and the host writes " two"; with it the
    // filter sees and gives back the value as it is.
    EXPECT_EQ(r.mods[0].value, leadspc ? "  two" : " two") << leadspc;
  }
}

TEST(FilterModule, SameModuleTwiceRefused) {
  auto module = Module::load(kSlow, {});
  std::string e = load_error(kSlow);
  EXPECT_EQ(e, "module " + kSlow + ": estafette_filter_init refused to load");
}

// ---------------------------------------------------------------------------------------------
// The same sample_milter.c as an external milter (Debian's libmilter) and in-process.

// One run of the script: every verdict in order, and the end-of-message modifications.
struct Transcript {
  std::vector<std::string> verdicts;
  std::vector<Modification> mods;
};

Transcript script(event::Loop& loop, Filter& f) {
  Transcript t;
  auto note = [&](const Result& r) { t.verdicts.push_back(describe(r.verdict)); };
  note(wait_for(loop, [&](auto done) {
    f.connect(kConnectMacros, "client.test", Family::Inet, 40000, "127.0.0.1", done);
  }));
  note(wait_for(loop, [&](auto done) { f.helo({}, "helo.client.test", done); }));
  note(wait_for(loop, [&](auto done) {
    f.mail({{"{mail_addr}", "reject@example.test"}}, "<reject@example.test>", {}, done);
  }));
  f.abort();
  note(wait_for(loop, [&](auto done) {
    f.mail({{"{mail_addr}", "sender@example.test"}}, "<sender@example.test>", {"SIZE=100"}, done);
  }));
  for (std::string to : {"<old@estafette.test>", "<keep@estafette.test>"})
    note(wait_for(loop, [&](auto done) { f.rcpt({{"{rcpt_addr}", to}}, to, {}, done); }));
  note(wait_for(loop, [&](auto done) { f.data({{"i", "QID7"}}, done); }));
  for (const auto& header : std::vector<std::pair<std::string, std::string>>{
           {"From", " <sender@example.test>"}, {"Subject", " same"}})
    note(wait_for(loop, [&](auto done) { f.header(header.first, header.second, done); }));
  note(wait_for(loop, [&](auto done) { f.eoh({}, done); }));
  note(wait_for(loop, [&](auto done) { f.body("same body\r\n", done); }));
  Result r = wait_eom(loop, [&](auto done) { f.eom({{"i", "QID7"}}, done); });
  note(r);
  t.mods = r.mods;
  f.quit();
  return t;
}

TEST(FilterModule, SameMilterExternalAndInProcess) {
  int port = free_port();
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open("/dev/null", O_WRONLY);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::string conn = "inet:" + std::to_string(port) + "@127.0.0.1";
    ::execl(kSampleMilter.c_str(), kSampleMilter.c_str(), "-p", conn.c_str(), nullptr);
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  bool up = wait_tcp(port, std::chrono::seconds(10));

  Transcript external;
  if (up) {
    event::Loop loop;
    milter::Options o;
    std::string error;
    EXPECT_TRUE(milter::parse_spec("inet:" + std::to_string(port) + "@127.0.0.1", o.spec, &error));
    o.name = "sample";
    milter::Client c(loop, o);
    external = script(loop, c);
  }
  ::kill(pid, SIGKILL);  // libmilter takes seconds to notice SIGTERM
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(up) << kSampleMilter << " does not listen on " << port;

  auto module = Module::load(kSampleModule, {});
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  Transcript internal = script(loop, *f);

  std::vector<std::string> want_verdicts(12, "continue ");
  want_verdicts[2] = "replycode 550 5.7.1 sender rejected by sample";
  EXPECT_EQ(internal.verdicts, want_verdicts);
  std::vector<Modification> want_mods = {
      header_mod(Kind::AddHeader, "X-Estafette-Sample", " ok"),
      header_mod(Kind::AddHeader, "X-Estafette-Sample-Client", " 127.0.0.1 QID7"),
      rcpt_mod(Kind::DelRcpt, "<old@estafette.test>"),
      rcpt_mod(Kind::AddRcpt, "<new@estafette.test>"),
  };
  EXPECT_EQ(internal.mods, want_mods);
  EXPECT_EQ(external.verdicts, internal.verdicts);
  EXPECT_EQ(external.mods, internal.mods);
}

// ---------------------------------------------------------------------------------------------
// Libmilter filters written as public milters are (tests/unit/filters/modules/sendmail_sample.c,
// modern_milter.c): built unchanged against the shim (make check builds them with Debian's
// libmilter too), given their arguments, and a main() that exits at load.

std::string temp_dir() {
  char path[] = "/tmp/estafette-module-test.XXXXXX";
  return ::mkdtemp(path) ? path : "";
}

TEST(FilterModule, SendmailSampleRunsWithItsArguments) {
  std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  auto module = Module::load(kSendmailSample, {"-p", "inet:9999@127.0.0.1", "-t", "30", "-a",
                                               "<archive@estafette.test>", "-d", dir});
  EXPECT_EQ(module->name(), "SampleFilter");
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  open_session(loop, *f);
  auto r = wait_for(loop, [&](auto done) { f->mail({}, "<ok@example.test>", {}, done); });
  ASSERT_EQ(r.verdict.action, Action::Continue) << describe(r.verdict);
  r = message(loop, *f, {"<to@estafette.test>"}, {{"Subject", " archived"}}, "body\r\n");
  ASSERT_EQ(r.verdict.action, Action::Continue) << describe(r.verdict);
  ASSERT_EQ(r.mods.size(), 2u);
  // sample.html's order: the recipient at eom, then X-Archived in mlfi_cleanup.
  EXPECT_EQ(r.mods[0], rcpt_mod(Kind::AddRcpt, "<archive@estafette.test>"));
  EXPECT_EQ(r.mods[1].kind, Kind::AddHeader);
  EXPECT_EQ(r.mods[1].name, "X-Archived");
  // The archive file named in the header is in the -d directory, with the message in it.
  std::string file = r.mods[1].value.substr(0, r.mods[1].value.find('@'));
  while (!file.empty() && file.front() == ' ') file.erase(0, 1);
  EXPECT_EQ(file.rfind("msg.", 0), 0u) << r.mods[1].value;
  EXPECT_EQ(slurp(dir + "/" + file), "Subject: archived\r\n\r\nbody\r\n");
  f->quit();
  f.reset();
  module.reset();
  std::system(("rm -rf '" + dir + "'").c_str());
}

// Removes its file when destroyed: at this test process's end, and in a child that ran the
// static destructors it inherited (which a module's exit() in load_in_child must not do).
struct RemovedAtExit {
  std::string path;
  ~RemovedAtExit() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

TEST(FilterModule, MainExitingAtLoadIsReportedFromTheChild) {
  static RemovedAtExit marker{temp_log()};

  // sample.html's main() without -p: exit(EX_USAGE) after a line on stderr. Loaded in a child,
  // this process lives on and gets the status and the line.
  std::string error = Module::load_in_child(kSendmailSample, {}, std::chrono::seconds(10));
  EXPECT_EQ(error.rfind("module " + kSendmailSample + ": exited with status 64 while loading", 0),
            0u)
      << error;
  EXPECT_NE(error.find("Missing required -p argument"), std::string::npos) << error;
  // The child's exit() ran none of this process's exit handlers or static destructors.
  EXPECT_EQ(::access(marker.path.c_str(), F_OK), 0) << "the child removed " << marker.path;
  // With its arguments the same module loads; an ABI refusal keeps load()'s reason.
  EXPECT_EQ(Module::load_in_child(kSendmailSample, {"-p", "inet:9999@127.0.0.1"},
                                  std::chrono::seconds(10)),
            "");
  EXPECT_EQ(Module::load_in_child(kBadAbi, {}, std::chrono::seconds(10)),
            "module " + kBadAbi + ": ABI version 2, this esmtpd speaks 1");
  // A main() that daemonizes (the parent returns from daemon() by exiting 0) is no load either.
  error =
      Module::load_in_child(kModernModule, {"-p", "inet:9999@127.0.0.1"}, std::chrono::seconds(10));
  EXPECT_EQ(error.rfind("module " + kModernModule + ": exited with status 0 while loading", 0), 0u)
      << error;
}

TEST(FilterModule, HangingLoadIsKilledAfterTheTimeout) {
  // slow_milter's -S makes main() sleep (a module that never finishes loading).
  auto t0 = Clock::now();
  std::string error = Module::load_in_child(kSlow, {"-S", "5000"}, std::chrono::milliseconds(300));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(error, "module " + kSlow + ": did not finish loading within 300 ms") << error;
}

// modern_milter.c: <stdbool.h> first, __P prototypes, getopt, smfi_opensocket(true). The same
// source as an external milter (Debian's libmilter) and in-process answers RCPT alike; only the
// shim build adds X-Shim (it tests ESTAFETTE_MILTER_SHIM).
TEST(FilterModule, ModernMilterExternalAndInProcess) {
  auto run = [](event::Loop& loop, Filter& f) {
    std::vector<std::string> verdicts;
    open_session(loop, f);
    auto r = wait_for(loop, [&](auto done) { f.mail({}, "<ok@example.test>", {}, done); });
    verdicts.push_back(describe(r.verdict));
    for (std::string to : {"<spam@estafette.test>", "<ok@estafette.test>"}) {
      r = wait_for(loop, [&](auto done) { f.rcpt({{"{rcpt_addr}", to}}, to, {}, done); });
      verdicts.push_back(describe(r.verdict));
    }
    wait_for(loop, [&](auto done) { f.data({{"i", "QID7"}}, done); });
    wait_for(loop, [&](auto done) { f.eoh({}, done); });
    wait_for(loop, [&](auto done) { f.body("x\r\n", done); });
    Result e = wait_eom(loop, [&](auto done) { f.eom({{"i", "QID7"}}, done); });
    verdicts.push_back(describe(e.verdict));
    f.quit();
    return std::make_pair(verdicts, e.mods);
  };
  int port = free_port();
  std::string conn = "inet:" + std::to_string(port) + "@127.0.0.1";
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open("/dev/null", O_WRONLY);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(kModernMilter.c_str(), kModernMilter.c_str(), "-f", "-p", conn.c_str(), "-r",
            "<spam@estafette.test>", nullptr);
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  bool up = wait_tcp(port, std::chrono::seconds(10));
  std::pair<std::vector<std::string>, std::vector<Modification>> external;
  if (up) {
    event::Loop loop;
    milter::Options o;
    std::string error;
    EXPECT_TRUE(milter::parse_spec(conn, o.spec, &error));
    o.name = "modern";
    milter::Client c(loop, o);
    external = run(loop, c);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(up) << kModernMilter << " does not listen on " << port;

  auto module = Module::load(kModernModule, {"-f", "-p", conn, "-r", "<spam@estafette.test>"});
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  auto internal = run(loop, *f);
  std::vector<std::string> want = {"continue ",
                                   "replycode 550 5.7.1 Recipient refused by "
                                   "modern_milter",
                                   "continue ", "continue "};
  EXPECT_EQ(internal.first, want);
  EXPECT_EQ(external.first, want);
  EXPECT_TRUE(external.second.empty());
  std::vector<Modification> shim = {header_mod(Kind::AddHeader, "X-Shim", " estafette 2")};
  EXPECT_EQ(internal.second, shim);
}

}  // namespace
}  // namespace estafette::filters
