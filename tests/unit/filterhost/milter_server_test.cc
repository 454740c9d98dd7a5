// estafette-filterhost's milter server (filterhost/milter_server.h) with esmtpd's real milter
// client (filters/milter/client.h) on one loop, over a real unix socket, serving the test module
// tests/unit/filters/modules/isolation_probe.so (mail and eom callbacks only): what is negotiated
// (no reply for the phases without a callback), a whole session's verdicts and the module's
// headers, a reject at MAIL, and several sessions at once; no_reply_steps() as a table.
#include "filterhost/milter_server.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "filters/milter/client.h"
#include "filters/module.h"
#include "lib/base/net.h"

#ifndef ESTAFETTE_TEST_BUILDDIR
#error ESTAFETTE_TEST_BUILDDIR is set by tests/local.am
#endif

namespace estafette::filterhost {
namespace {

using namespace std::chrono_literals;
using filters::Family;
using filters::Modification;
using filters::Verdict;

const std::string kProbe =
    std::string(ESTAFETTE_TEST_BUILDDIR) + "/tests/unit/filters/modules/isolation_probe.so";

struct Fixture {
  event::Loop loop;
  std::string path =
      ::testing::TempDir() + "filterhost-test-" + std::to_string(::getpid()) + ".sock";
  std::unique_ptr<Server> server;

  Fixture() {
    auto module = filters::Module::load(kProbe, {"unit"});
    server = std::make_unique<Server>(loop, base::listen_unix(path, 16, 0600), module,
                                      filters::ModuleTimeouts{2s, 5s});
  }
  ~Fixture() {
    server.reset();
    ::unlink(path.c_str());
  }

  std::unique_ptr<milter::Client> client() {
    milter::Options o;
    std::string error;
    EXPECT_TRUE(milter::parse_spec("unix:" + path, o.spec, &error)) << error;
    o.name = "isolated-test";
    o.send_session = true;
    auto c = std::make_unique<milter::Client>(loop, o);
    c->set_session("1.1");
    return c;
  }

  // Runs the loop until `done` is set (or 10 s), looking every 5 ms.
  void run_until(const bool& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done && std::chrono::steady_clock::now() < deadline) {
      auto tick = loop.add_timer(5ms, [this] { loop.stop(); });
      loop.run();
      loop.cancel_timer(tick);
    }
  }

  Verdict call(const std::function<void(filters::Filter::Callback)>& start) {
    Verdict out;
    bool done = false;
    start([&](const Verdict& v) {
      out = v;
      done = true;
    });
    run_until(done);
    EXPECT_TRUE(done);
    return out;
  }
};

TEST(FilterhostMilterServer, NoReplyForPhasesWithoutACallback) {
  estafette_filter all{};
  EXPECT_EQ(no_reply_steps(all), static_cast<std::uint32_t>(
                                     SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
                                     SMFIP_NR_DATA | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY));
  auto module = filters::Module::load(kProbe, {});
  EXPECT_EQ(
      no_reply_steps(module->table()),
      static_cast<std::uint32_t>(SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_RCPT | SMFIP_NR_DATA |
                                 SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY));
}

TEST(FilterhostMilterServer, AWholeSessionThroughTheRealClient) {
  Fixture f;
  auto c = f.client();
  const filters::Macros macros = {{"{client_addr}", "192.0.2.7"}};
  auto v = f.call([&](auto done) {
    c->connect(macros, "client.test", Family::Inet, 40000, "192.0.2.7", done);
  });
  EXPECT_EQ(v.action, Verdict::Action::Continue) << v.text;
  EXPECT_EQ(c->negotiated_protocol() & SMFIP_HDR_LEADSPC,
            static_cast<std::uint32_t>(SMFIP_HDR_LEADSPC));
  EXPECT_NE(c->negotiated_protocol() & SMFIP_NR_HELO, 0u);
  EXPECT_EQ(c->negotiated_protocol() & SMFIP_NR_MAIL, 0u);
  EXPECT_EQ(f.call([&](auto done) { c->helo({}, "client.test", done); }).action,
            Verdict::Action::Continue);
  EXPECT_EQ(f.call([&](auto done) { c->mail({}, "<s@example.test>", {"SIZE=10"}, done); }).action,
            Verdict::Action::Continue);
  EXPECT_EQ(f.call([&](auto done) { c->rcpt({}, "<r@example.test>", {}, done); }).action,
            Verdict::Action::Continue);
  EXPECT_EQ(f.call([&](auto done) { c->data({}, done); }).action, Verdict::Action::Continue);
  EXPECT_EQ(f.call([&](auto done) { c->header("Subject", " hi", done); }).action,
            Verdict::Action::Continue);
  EXPECT_EQ(f.call([&](auto done) { c->eoh({}, done); }).action, Verdict::Action::Continue);
  const std::string body(200000, 'b');  // several chunks
  EXPECT_EQ(f.call([&](auto done) { c->body(body, done); }).action, Verdict::Action::Continue);
  std::vector<Modification> mods;
  bool done = false;
  Verdict eom;
  c->eom({}, [&](const Verdict& v, std::vector<Modification> m) {
    eom = v;
    mods = std::move(m);
    done = true;
  });
  f.run_until(done);
  ASSERT_TRUE(done);
  EXPECT_EQ(eom.action, Verdict::Action::Continue) << eom.text;
  ASSERT_EQ(mods.size(), 2u);
  EXPECT_EQ(mods[0].kind, Modification::Kind::AddHeader);
  EXPECT_EQ(mods[0].name, "X-Isolation-Probe");
  EXPECT_EQ(mods[0].value, " unit from=<s@example.test> client=192.0.2.7");
  EXPECT_EQ(mods[1].name, "X-Isolation-Probe-Pid");
  EXPECT_EQ(mods[1].value, " " + std::to_string(::getpid()));
  EXPECT_EQ(f.server->sessions(), 1u);
  c->quit();
  c.reset();
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    auto tick = f.loop.add_timer(5ms, [&] { f.loop.stop(); });
    f.loop.run();
    f.loop.cancel_timer(tick);
    gone = f.server->sessions() == 0;
  }
  EXPECT_TRUE(gone) << "the server kept the session after QUIT";
}

TEST(FilterhostMilterServer, SessionsAtOnceAndDrain) {
  Fixture f;
  std::vector<std::unique_ptr<milter::Client>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(f.client());
    auto& c = clients.back();
    EXPECT_EQ(f.call([&](auto done) { c->connect({}, "h", Family::Unknown, 0, "", done); }).action,
              Verdict::Action::Continue);
  }
  EXPECT_EQ(f.server->sessions(), 5u);
  bool drained = false;
  f.server->drain([&] { drained = true; });
  // Open sessions go on after drain(); new connections are refused.
  EXPECT_EQ(f.call([&](auto done) { clients[2]->mail({}, "<a@b>", {}, done); }).action,
            Verdict::Action::Continue);
  auto late = f.client();
  EXPECT_EQ(f.call([&](auto done) { late->connect({}, "h", Family::Unknown, 0, "", done); }).action,
            Verdict::Action::Failed);
  for (auto& c : clients) c->quit();
  f.run_until(drained);
  EXPECT_TRUE(drained);
}

}  // namespace
}  // namespace estafette::filterhost
