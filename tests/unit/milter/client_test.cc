// Milter client tests. Protocol conformance is shown against real milters started here once per
// test binary run: tests/milter/test_milter (libmilter, built by make check; twice: plain and
// with -n, which negotiates no-reply headers, leading spaces and a macro list) and opendkim
// signing for example.test with a key made by opendkim-genkey (the signature is verified with
// python3-dkim by tests/milter/dkim_verify.py), and tests/milter/sparse_milter (libmilter, only
// MAIL FROM and end-of-message registered: it asks to skip every other stage). Error cases
// (refused, silent, garbage, closing, progress) use a fake milter on the test's own loop.
#include "filters/milter/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "filters/chain.h"
#include "lib/base/net.h"
#include "tests/unit/test_servers.h"

#ifndef ESTAFETTE_TEST_BUILDDIR
#error ESTAFETTE_TEST_BUILDDIR is set by tests/local.am
#endif

namespace estafette::milter {
namespace {

using namespace std::chrono_literals;
using estafette::testing::free_port;
using estafette::testing::wait_tcp;
using namespace std::string_literals;
using filters::Chain;
using filters::DefaultAction;
using filters::Family;
using filters::Macros;
using filters::Modification;
using filters::Verdict;
using Action = Verdict::Action;
using Kind = Modification::Kind;

// ---------------------------------------------------------------------------------------------
// Helpers

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int shell(const std::string& command) {
  return std::system(command.c_str());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The real milters, started on first use and stopped once at the end of the run (stopping a
// libmilter filter takes about 5 s: it notices SIGTERM at its next poll timeout).
class Milters {
 public:
  // Test-only: one set of milter processes per binary run, started by the first test using it.
  static Milters& get() {
    auto& s = slot();
    if (!s) s.emplace();
    return *s;
  }
  static void stop_if_started() {
    if (auto& s = slot()) s->stop();
  }
  Milters() { start(); }

  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  int test_port() const { return test_port_; }
  int negotiating_port() const { return negotiating_port_; }
  int dkim_port() const { return dkim_port_; }
  int sparse_port() const { return sparse_port_; }
  const std::string& dir() const { return dir_; }

  void stop() {
    if (!started_) return;
    started_ = false;
    for (pid_t p : pids_) ::kill(p, SIGTERM);
    for (pid_t p : pids_) ::waitpid(p, nullptr, 0);
    pids_.clear();
    if (!dir_.empty() && ::getenv("ESTAFETTE_KEEP_MILTER_DIR") == nullptr)
      shell("rm -rf '" + dir_ + "'");
  }

 private:
  static std::optional<Milters>& slot() {
    static std::optional<Milters> s;
    return s;
  }

  void start() {
    started_ = true;
    char tmpl[] = "/tmp/estafette-milter-test.XXXXXX";
    if (!::mkdtemp(tmpl)) {
      why_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    std::string milter = ESTAFETTE_TEST_BUILDDIR "/tests/milter/test_milter";
    std::string sparse = ESTAFETTE_TEST_BUILDDIR "/tests/milter/sparse_milter";
    for (const std::string& program : {milter, sparse}) {
      if (::access(program.c_str(), X_OK) != 0) {
        why_ = program + " not built";
        return;
      }
    }
    test_port_ = free_port();
    pids_.push_back(spawn({milter, "inet:" + std::to_string(test_port_) + "@127.0.0.1"},
                          dir_ + "/test_milter.log"));
    negotiating_port_ = free_port();
    pids_.push_back(
        spawn({milter, "-n", "inet:" + std::to_string(negotiating_port_) + "@127.0.0.1"},
              dir_ + "/test_milter_n.log"));
    sparse_port_ = free_port();
    pids_.push_back(spawn({sparse, "inet:" + std::to_string(sparse_port_) + "@127.0.0.1"},
                          dir_ + "/sparse_milter.log"));
    // opendkim, signing for example.test with a fresh key.
    if (shell("opendkim-genkey -D " + dir_ + " -d example.test -s test") != 0) {
      why_ = "opendkim-genkey failed";
      return;
    }
    dkim_port_ = free_port();
    std::ofstream(dir_ + "/opendkim.conf")
        << "Syslog no\nSocket inet:" << dkim_port_ << "@127.0.0.1\nMode s\nDomain example.test\n"
        << "Selector test\nKeyFile " << dir_ << "/test.private\nCanonicalization relaxed/simple\n"
        << "UserID root\nRequireSafeKeys false\nInternalHosts 127.0.0.1\n";
    pids_.push_back(
        spawn({"/usr/sbin/opendkim", "-f", "-x", dir_ + "/opendkim.conf"}, dir_ + "/opendkim.log"));
    for (int port : {test_port_, negotiating_port_, dkim_port_, sparse_port_}) {
      if (!wait_tcp(port, 10s)) {
        why_ = "a milter does not listen on " + std::to_string(port) + " (logs in " + dir_ + ")";
        return;
      }
    }
    ok_ = true;
  }

  bool started_ = false;
  bool ok_ = false;
  std::string why_;
  std::string dir_;
  int test_port_ = 0;
  int negotiating_port_ = 0;
  int dkim_port_ = 0;
  int sparse_port_ = 0;
  std::vector<pid_t> pids_;
};

class StopMilters : public ::testing::Environment {
 public:
  void TearDown() override { Milters::stop_if_started(); }
};
const ::testing::Environment* const kStopMilters =
    ::testing::AddGlobalTestEnvironment(new StopMilters);

Options options_for(int port, std::string name = "test") {
  Options o;
  std::string error;
  EXPECT_TRUE(parse_spec("inet:" + std::to_string(port) + "@127.0.0.1", o.spec, &error)) << error;
  o.name = std::move(name);
  o.connect_timeout = 5s;
  o.command_timeout = 10s;
  o.content_timeout = 10s;
  return o;
}

// Runs the loop until the call's callback (or a 20 s guard) and returns what it answered.
struct Result {
  Verdict verdict{Action::Failed, "no answer (test guard)", {}};
  std::vector<Modification> mods;
  bool answered = false;
};

template <typename Start>
Result wait_for(event::Loop& loop, Start start) {
  Result r;
  start([&r, &loop](const Verdict& v) {
    r.verdict = v;
    r.answered = true;
    loop.stop();
  });
  auto guard = loop.add_timer(20s, [&loop] { loop.stop(); });
  if (!r.answered) loop.run();
  loop.cancel_timer(guard);
  return r;
}

template <typename Start>
Result wait_eom(event::Loop& loop, Start start) {
  Result r;
  start([&r, &loop](const Verdict& v, std::vector<Modification> mods) {
    r.verdict = v;
    r.mods = std::move(mods);
    r.answered = true;
    loop.stop();
  });
  auto guard = loop.add_timer(20s, [&loop] { loop.stop(); });
  if (!r.answered) loop.run();
  loop.cancel_timer(guard);
  return r;
}

const Modification* find_header(const std::vector<Modification>& mods, const std::string& name) {
  for (const Modification& m : mods)
    if ((m.kind == Kind::AddHeader || m.kind == Kind::InsertHeader) && m.name == name) return &m;
  return nullptr;
}

const Macros kConnectMacros = {{"j", "mx.test"},
                               {"{client_addr}", "127.0.0.1"},
                               {"{client_name}", "client.test"},
                               {"{daemon_name}", "estafette"},
                               {"{client_port}", "40000"}};

class MilterRealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A milter that does not start is a failure: scripts/install-deps installs opendkim.
    ASSERT_TRUE(Milters::get().ok()) << Milters::get().why();
  }
  event::Loop loop_;
};

// Connect + HELO against a client, expecting Continue.
void open_session(event::Loop& loop, Client& c) {
  auto r = wait_for(loop, [&](auto done) {
    c.connect(kConnectMacros, "client.test", Family::Inet, 40000, "127.0.0.1", done);
  });
  ASSERT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
  r = wait_for(loop, [&](auto done) { c.helo({}, "helo.client.test", done); });
  ASSERT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
}

void expect_continue(const Result& r) {
  EXPECT_EQ(r.verdict.action, Action::Continue)
      << to_string(r.verdict.action) << " " << r.verdict.text;
}

// Sends headers, EOH and body; returns the EOM result.
Result send_message(event::Loop& loop, Client& c,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    const std::string& body) {
  expect_continue(wait_for(loop, [&](auto done) { c.data({{"i", "QID1"}}, done); }));
  for (const auto& header : headers)
    expect_continue(
        wait_for(loop, [&](auto done) { c.header(header.first, header.second, done); }));
  expect_continue(wait_for(loop, [&](auto done) { c.eoh({{"{eoh_macro}", "E"}}, done); }));
  expect_continue(wait_for(loop, [&](auto done) { c.body(body, done); }));
  return wait_eom(loop, [&](auto done) { c.eom({{"{eom_macro}", "M"}}, done); });
}

// ---------------------------------------------------------------------------------------------
// parse_spec

struct SpecCase {
  std::string text;
  bool ok;
  Spec::Kind kind = Spec::Kind::Inet;
  std::string host;
  std::uint16_t port = 0;
  std::string path;
};

TEST(MilterSpec, Table) {
  const std::vector<SpecCase> cases = {
      {"inet:8891@127.0.0.1", true, Spec::Kind::Inet, "127.0.0.1", 8891, ""},
      {"inet6:8891@::1", true, Spec::Kind::Inet6, "::1", 8891, ""},
      {"inet6:25@[::1]", true, Spec::Kind::Inet6, "::1", 25, ""},
      {"unix:/run/milter.sock", true, Spec::Kind::Unix, "", 0, "/run/milter.sock"},
      {"local:/run/m", true, Spec::Kind::Unix, "", 0, "/run/m"},
      {"inet:8891", false, Spec::Kind::Inet, "", 0, ""},
      {"inet:@127.0.0.1", false, Spec::Kind::Inet, "", 0, ""},
      {"inet:0@127.0.0.1", false, Spec::Kind::Inet, "", 0, ""},
      {"inet:65536@127.0.0.1", false, Spec::Kind::Inet, "", 0, ""},
      {"inet:88x@127.0.0.1", false, Spec::Kind::Inet, "", 0, ""},
      {"inet:8891@localhost", false, Spec::Kind::Inet, "", 0, ""},
      {"inet:8891@::1", false, Spec::Kind::Inet, "", 0, ""},
      {"inet6:8891@127.0.0.1", false, Spec::Kind::Inet, "", 0, ""},
      {"unix:", false, Spec::Kind::Inet, "", 0, ""},
      {"unix:/" + std::string(200, 'x'), false, Spec::Kind::Inet, "", 0, ""},
      {"tcp:1@127.0.0.1", false, Spec::Kind::Inet, "", 0, ""},
      {"127.0.0.1:8891", false, Spec::Kind::Inet, "", 0, ""},
      {"", false, Spec::Kind::Inet, "", 0, ""},
  };
  for (const SpecCase& c : cases) {
    Spec spec;
    std::string error;
    bool ok = parse_spec(c.text, spec, &error);
    EXPECT_EQ(ok, c.ok) << c.text;
    if (!ok) {
      EXPECT_FALSE(error.empty()) << c.text;
      continue;
    }
    EXPECT_EQ(spec.kind, c.kind) << c.text;
    EXPECT_EQ(spec.host, c.host) << c.text;
    EXPECT_EQ(spec.port, c.port) << c.text;
    EXPECT_EQ(spec.path, c.path) << c.text;
  }
  DefaultAction a;
  EXPECT_TRUE(parse_default_action("accept", a));
  EXPECT_EQ(a, DefaultAction::Accept);
  EXPECT_TRUE(parse_default_action("reject", a));
  EXPECT_EQ(a, DefaultAction::Reject);
  EXPECT_TRUE(parse_default_action("tempfail", a));
  EXPECT_EQ(a, DefaultAction::Tempfail);
  EXPECT_FALSE(parse_default_action("quarantine", a));
}

// ---------------------------------------------------------------------------------------------
// Real milters

TEST_F(MilterRealTest, FullTransactionAgainstLibmilter) {
  Client c(loop_, options_for(Milters::get().test_port()));
  open_session(loop_, c);
  EXPECT_EQ(c.negotiated_actions() & SMFIF_ADDHDRS, static_cast<unsigned>(SMFIF_ADDHDRS));

  // Message 1: recipients (one rewritten, one refused), body replaced, macros echoed.
  expect_continue(wait_for(loop_, [&](auto done) {
    c.mail({{"{mail_addr}", "sender@example.test"}}, "<sender@example.test>", {"SIZE=100"}, done);
  }));
  expect_continue(wait_for(loop_, [&](auto done) {
    c.rcpt({{"{rcpt_addr}", "user@example.test"}}, "<user@example.test>", {}, done);
  }));
  auto r = wait_for(loop_, [&](auto done) { c.rcpt({}, "<tempfail@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::ReplyCode);
  EXPECT_EQ(r.verdict.text, "451 4.7.1 Try that one later");
  EXPECT_EQ(r.verdict.filter, "test");
  expect_continue(wait_for(loop_, [&](auto done) {
    c.rcpt({{"{rcpt_addr}", "rewrite@example.test"}}, "<rewrite@example.test>", {}, done);
  }));
  std::string body;
  for (int i = 0; body.size() < 200000; ++i) body += "line " + std::to_string(i) + "\r\n";
  r = send_message(
      loop_, c,
      {{"From", " <sender@example.test>"}, {"To", " <user@example.test>"}, {"Subject", " replace"}},
      body);
  ASSERT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
  const Modification* added = find_header(r.mods, "X-Test-Milter");
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(added->kind, Kind::AddHeader);
  EXPECT_EQ(added->value, " ok");
  const Modification* macros = find_header(r.mods, "X-Test-Macros");
  ASSERT_NE(macros, nullptr);
  EXPECT_EQ(macros->value,
            " host=client.test conn:j=mx.test conn:{client_addr}=127.0.0.1"
            " conn:{client_name}=client.test conn:{daemon_name}=estafette helo=helo.client.test"
            " mail:{mail_addr}=sender@example.test args=SIZE=100"
            " rcpt:{rcpt_addr}=user@example.test rcpt:{rcpt_addr}=rewrite@example.test"
            " data:i=QID1 eoh:{eoh_macro}=E eom:{eom_macro}=M");
  const Modification* counted = find_header(r.mods, "X-Test-Body");
  ASSERT_NE(counted, nullptr);
  std::size_t chunks = (body.size() + kChunkSize - 1) / kChunkSize;
  EXPECT_EQ(counted->value, " " + std::to_string(body.size()) + " " + std::to_string(chunks));
  const Modification* first = find_header(r.mods, "X-Test-First");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->kind, Kind::InsertHeader);
  EXPECT_EQ(first->index, 0u);
  std::vector<std::pair<Kind, std::string>> rest;
  for (const Modification& m : r.mods) {
    if (m.kind == Kind::DelRcpt || m.kind == Kind::AddRcpt) rest.emplace_back(m.kind, m.address);
    if (m.kind == Kind::ReplaceBody) rest.emplace_back(m.kind, m.body);
  }
  EXPECT_EQ(rest,
            (std::vector<std::pair<Kind, std::string>>{{Kind::DelRcpt, "<rewrite@example.test>"},
                                                       {Kind::AddRcpt, "<rewritten@example.test>"},
                                                       {Kind::ReplaceBody, "replaced body\r\n"}}));

  // Message 2: the sender is refused at MAIL; the transaction is aborted.
  r = wait_for(loop_, [&](auto done) { c.mail({}, "<reject@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::ReplyCode);
  EXPECT_EQ(r.verdict.text, "550 5.7.1 Rejected by test milter");
  c.abort();

  // Message 3 on the same connection: change from, change a header, quarantine not asked.
  expect_continue(
      wait_for(loop_, [&](auto done) { c.mail({}, "<chgfrom@example.test>", {}, done); }));
  expect_continue(wait_for(loop_, [&](auto done) { c.rcpt({}, "<user@example.test>", {}, done); }));
  r = send_message(loop_, c, {{"Subject", " change"}}, "hi\r\n");
  ASSERT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
  bool chgfrom = false, chghdr = false;
  for (const Modification& m : r.mods) {
    if (m.kind == Kind::ChangeFrom && m.address == "<changed@example.test>") chgfrom = true;
    if (m.kind == Kind::ChangeHeader && m.name == "Subject" && m.index == 1 &&
        m.value == " changed")
      chghdr = true;
  }
  EXPECT_TRUE(chgfrom);
  EXPECT_TRUE(chghdr);

  // Message 4: quarantine.
  expect_continue(wait_for(loop_, [&](auto done) { c.mail({}, "<a@example.test>", {}, done); }));
  expect_continue(wait_for(loop_, [&](auto done) { c.rcpt({}, "<user@example.test>", {}, done); }));
  r = send_message(loop_, c, {{"Subject", " quarantine"}}, "");
  ASSERT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
  bool quarantined = false;
  for (const Modification& m : r.mods)
    if (m.kind == Kind::Quarantine && m.text == "test quarantine") quarantined = true;
  EXPECT_TRUE(quarantined);
  c.quit();
  EXPECT_FALSE(c.failed());
}

// Every command with a reply is timed into the metrics.
TEST_F(MilterRealTest, CommandsAreTimedIntoTheMetrics) {
  auto writer = metrics::Writer::anonymous("estafette-esmtpd");
  Options o = options_for(Milters::get().test_port());
  o.metrics = writer.get();
  Client c(loop_, o);
  open_session(loop_, c);
  expect_continue(wait_for(loop_, [&](auto done) {
    c.mail({{"{mail_addr}", "sender@example.test"}}, "<sender@example.test>", {}, done);
  }));
  expect_continue(wait_for(loop_, [&](auto done) { c.rcpt({}, "<user@example.test>", {}, done); }));
  std::string why;
  auto s = metrics::parse(writer->bytes(), why);
  ASSERT_TRUE(s) << why;
  const auto& f = metrics::family(metrics::Metric::MilterSeconds);
  const std::size_t first = metrics::cell_slot(metrics::Metric::MilterSeconds, 0, 0);
  std::uint64_t count = 0;
  for (std::size_t b = 0; b <= f.buckets.size(); ++b) count += s->counters[first + b];
  EXPECT_GE(count, 2u);  // MAIL and RCPT at least (connect and HELO as the milter asked)
  c.quit();
}

TEST_F(MilterRealTest, ProgressFromLibmilterExtendsTheTimeout) {
  Options o = options_for(Milters::get().test_port());
  o.content_timeout = 500ms;  // the milter takes 800 ms at eom, sending progress every 200 ms
  Client c(loop_, o);
  open_session(loop_, c);
  expect_continue(wait_for(loop_, [&](auto done) { c.mail({}, "<a@example.test>", {}, done); }));
  expect_continue(wait_for(loop_, [&](auto done) { c.rcpt({}, "<user@example.test>", {}, done); }));
  auto start = std::chrono::steady_clock::now();
  auto r = send_message(loop_, c, {{"Subject", " slow"}}, "x\r\n");
  EXPECT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
  EXPECT_GE(std::chrono::steady_clock::now() - start, 750ms);
  EXPECT_NE(find_header(r.mods, "X-Test-Milter"), nullptr);
}

TEST_F(MilterRealTest, NegotiatedNoReplyLeadingSpaceAndMacroList) {
  Client c(loop_, options_for(Milters::get().negotiating_port()));
  open_session(loop_, c);
  EXPECT_EQ(c.negotiated_protocol() & (SMFIP_NR_HDR | SMFIP_HDR_LEADSPC),
            static_cast<unsigned>(SMFIP_NR_HDR | SMFIP_HDR_LEADSPC));
  expect_continue(wait_for(loop_, [&](auto done) {
    c.mail({{"{mail_addr}", "a@example.test"}}, "<a@example.test>", {}, done);
  }));
  expect_continue(wait_for(loop_, [&](auto done) { c.rcpt({}, "<user@example.test>", {}, done); }));
  auto r = send_message(loop_, c, {{"Subject", " hello"}}, "x\r\n");
  ASSERT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
  // HDR_LEADSPC: the header went out with its space, and values come back verbatim.
  const Modification* counted = find_header(r.mods, "X-Test-Body");
  ASSERT_NE(counted, nullptr);
  EXPECT_EQ(counted->value, "3 1 leadspc");
  const Modification* added = find_header(r.mods, "X-Test-Milter");
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(added->value, "ok");
  // The macro list for the connect stage kept only j and {client_addr}.
  const Modification* macros = find_header(r.mods, "X-Test-Macros");
  ASSERT_NE(macros, nullptr);
  EXPECT_NE(macros->value.find("conn:j=mx.test conn:{client_addr}=127.0.0.1 conn:{client_name}=-"
                               " conn:{daemon_name}=-"),
            std::string::npos)
      << macros->value;
  c.quit();
}

std::string crlf(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) out += '\r';
    out += in[i];
  }
  return out;
}

// Applies header modifications the simple way (insert at 0 or append) to build the message.
std::string apply_headers(const std::vector<Modification>& mods,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const std::string& body) {
  std::vector<std::string> lines;
  for (const auto& [n, v] : headers) lines.push_back(n + ":" + v + "\r\n");
  for (const Modification& m : mods) {
    std::string line = crlf(m.name + ":" + m.value) + "\r\n";
    if (m.kind == Kind::InsertHeader)
      lines.insert(lines.begin() + std::min<std::size_t>(m.index, lines.size()), line);
    else if (m.kind == Kind::AddHeader)
      lines.push_back(line);
  }
  std::string msg;
  for (const std::string& l : lines) msg += l;
  return msg + "\r\n" + body;
}

bool dkim_verifies(const std::string& message, const std::string& key_txt,
                   const std::string& selector, const std::string& dir) {
  std::string file = dir + "/signed.eml";
  std::ofstream(file, std::ios::binary) << message;
  std::string cmd = "/usr/bin/python3 " ESTAFETTE_TEST_SRCDIR "/tests/milter/dkim_verify.py " +
                    key_txt + " " + selector + " < " + file + " > " + dir + "/dkim_verify.out 2>&1";
  return shell(cmd) == 0;
}

const std::vector<std::pair<std::string, std::string>> kSignedHeaders = {
    {"From", " Sender <sender@example.test>"},
    {"To", " <user@example.test>"},
    {"Subject", " signed by opendkim"},
    {"Date", " Sun, 22 Nov 2026 10:00:00 +0000"},
    {"Message-ID", " <1@example.test>"}};
const std::string kSignedBody = "Hello,\r\n\r\nthis message is signed.\r\n";

void sign_and_check(event::Loop& loop, Client& c, const std::string& key_txt,
                    const std::string& selector) {
  open_session(loop, c);
  expect_continue(
      wait_for(loop, [&](auto done) { c.mail({}, "<sender@example.test>", {}, done); }));
  expect_continue(wait_for(loop, [&](auto done) { c.rcpt({}, "<user@example.test>", {}, done); }));
  auto r = send_message(loop, c, kSignedHeaders, kSignedBody);
  ASSERT_EQ(r.verdict.action == Action::Continue || r.verdict.action == Action::Accept, true)
      << to_string(r.verdict.action) << " " << r.verdict.text;
  const Modification* sig = find_header(r.mods, "DKIM-Signature");
  ASSERT_NE(sig, nullptr);
  EXPECT_NE(sig->value.find("d=example.test"), std::string::npos) << sig->value;
  std::string message = apply_headers(r.mods, kSignedHeaders, kSignedBody);
  EXPECT_TRUE(dkim_verifies(message, key_txt, selector, Milters::get().dir()))
      << read_file(Milters::get().dir() + "/dkim_verify.out") << message;
  c.quit();
}

TEST_F(MilterRealTest, OpendkimSignatureVerifies) {
  Client c(loop_, options_for(Milters::get().dkim_port(), "opendkim"));
  sign_and_check(loop_, c, Milters::get().dir() + "/test.txt", "test");
}

TEST_F(MilterRealTest, SparseMilterSkipsStagesAndRejectsAtEndOfData) {
  Client sparse(loop_, options_for(Milters::get().sparse_port(), "sparse"));
  open_session(loop_, sparse);
  // libmilter asked us to skip what sparse_milter did not register.
  for (std::uint32_t step : {SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NORCPT, SMFIP_NOHDRS, SMFIP_NOEOH,
                             SMFIP_NOBODY, SMFIP_NODATA})
    EXPECT_NE(sparse.negotiated_protocol() & step, 0u) << std::hex << step;
  expect_continue(wait_for(loop_, [&](auto d) { sparse.mail({}, "<a@example.test>", {}, d); }));
  expect_continue(wait_for(loop_, [&](auto d) { sparse.rcpt({}, "<b@example.test>", {}, d); }));
  auto r = send_message(loop_, sparse, {{"Subject", " sparse"}}, "x\r\n");
  ASSERT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
  const Modification* added = find_header(r.mods, "X-Sparse-Milter");
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(added->value, " ok");
  // It decides at MAIL FROM but answers only at end of data.
  expect_continue(
      wait_for(loop_, [&](auto d) { sparse.mail({}, "<reject@example.test>", {}, d); }));
  expect_continue(wait_for(loop_, [&](auto d) { sparse.rcpt({}, "<b@example.test>", {}, d); }));
  r = send_message(loop_, sparse, {{"Subject", " sparse"}}, "x\r\n");
  EXPECT_EQ(r.verdict.action, Action::ReplyCode);
  EXPECT_EQ(r.verdict.text, "550 5.7.1 Rejected by sparse milter");
  EXPECT_TRUE(r.mods.empty());
  sparse.quit();
}

TEST_F(MilterRealTest, ChainCollectsModificationsInOrder) {
  Chain chain(loop_, make_clients(loop_, {options_for(Milters::get().test_port(), "test"),
                                          options_for(Milters::get().dkim_port(), "opendkim")}));
  auto r = wait_for(loop_, [&](auto done) {
    chain.connect(kConnectMacros, "client.test", Family::Inet, 40000, "127.0.0.1", done);
  });
  expect_continue(r);
  expect_continue(wait_for(loop_, [&](auto done) { chain.helo({}, "client.test", done); }));
  r = wait_for(loop_, [&](auto done) { chain.mail({}, "<reject@example.test>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::ReplyCode);
  EXPECT_EQ(r.verdict.filter, "test");
  chain.abort();
  expect_continue(
      wait_for(loop_, [&](auto done) { chain.mail({}, "<sender@example.test>", {}, done); }));
  expect_continue(
      wait_for(loop_, [&](auto done) { chain.rcpt({}, "<user@example.test>", {}, done); }));
  expect_continue(wait_for(loop_, [&](auto done) { chain.data({}, done); }));
  // As esmtpd's message pass gives them: all fields in one call (one SMFIC_HEADER each).
  expect_continue(wait_for(loop_, [&](auto done) { chain.headers(kSignedHeaders, done); }));
  expect_continue(wait_for(loop_, [&](auto done) { chain.eoh({}, done); }));
  expect_continue(wait_for(loop_, [&](auto done) { chain.body(kSignedBody, done); }));
  r = wait_eom(loop_, [&](auto done) { chain.eom({}, done); });
  ASSERT_EQ(r.verdict.action, Action::Continue) << r.verdict.text;
  std::vector<std::string> names;
  for (const Modification& m : r.mods)
    if (m.kind == Kind::AddHeader || m.kind == Kind::InsertHeader) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"X-Test-Milter", "X-Test-Macros", "X-Test-Body",
                                             "X-Test-First", "DKIM-Signature"}));
  chain.quit();
}

// ---------------------------------------------------------------------------------------------
// Failures, against a fake milter on the test's loop

// Accepts one connection and answers each MTA command (not macros) with what `script` returns;
// "close" closes the connection, "" answers nothing.
class FakeMilter final {
 public:
  using Script = std::function<std::string(char command, FakeMilter& self)>;
  FakeMilter(event::Loop& loop, Script script) : loop_(loop), script_(std::move(script)) {
    listen_ = base::listen_tcp("127.0.0.1", 0);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    loop_.add_fd(listen_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
  }
  ~FakeMilter() {
    loop_.remove_fd(listen_.get());
    if (conn_) loop_.remove_fd(conn_.get());
    for (auto t : timers_) loop_.cancel_timer(t);
  }
  int port() const { return port_; }
  void send(const std::string& bytes) {
    if (conn_) (void)::send(conn_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  void later(std::chrono::milliseconds delay, std::string bytes) {
    timers_.push_back(loop_.add_timer(delay, [this, bytes] { send(bytes); }));
  }
  void close() {
    if (!conn_) return;
    loop_.remove_fd(conn_.get());
    conn_.reset();
  }

 private:
  void on_accept() {
    base::UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd || conn_) return;
    conn_ = std::move(fd);
    loop_.add_fd(conn_.get(), EPOLLIN, [this](std::uint32_t) { on_read(); });
  }
  void on_read() {
    char buf[70000];
    ssize_t n = ::recv(conn_.get(), buf, sizeof buf, 0);
    if (n <= 0) {
      close();
      return;
    }
    in_.append(buf, static_cast<std::size_t>(n));
    while (in_.size() >= 5) {
      std::uint32_t len = (std::uint32_t(std::uint8_t(in_[0])) << 24) |
                          (std::uint32_t(std::uint8_t(in_[1])) << 16) |
                          (std::uint32_t(std::uint8_t(in_[2])) << 8) | std::uint8_t(in_[3]);
      if (in_.size() < 4 + len) return;
      char command = in_[4];
      in_.erase(0, 4 + len);
      if (command == SMFIC_MACRO) continue;
      std::string answer = script_(command, *this);
      if (answer == "close") {
        close();
        return;
      }
      send(answer);
    }
  }

  event::Loop& loop_;
  Script script_;
  base::UniqueFd listen_;
  base::UniqueFd conn_;
  int port_ = 0;
  std::string in_;
  std::vector<event::TimerId> timers_;
};

std::string reply(char c, const std::string& data = "") {
  std::uint32_t len = static_cast<std::uint32_t>(data.size() + 1);
  std::string out = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                     static_cast<char>(len >> 8), static_cast<char>(len)};
  return out + c + data;
}

std::string optneg_reply(std::uint32_t protocol = 0) {
  std::string d;
  for (std::uint32_t v : {6u, 0u, protocol})
    d += {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
  return reply('O', d);
}

// A well-behaved fake: negotiates, then continues everything.
std::string polite(char command, FakeMilter&) {
  if (command == SMFIC_OPTNEG) return optneg_reply();
  if (command == SMFIC_ABORT || command == SMFIC_QUIT) return "";
  return reply('c');
}

Options fast(int port) {
  Options o = options_for(port, "fake");
  o.connect_timeout = 300ms;
  o.command_timeout = 300ms;
  o.content_timeout = 300ms;
  return o;
}

Result connect_only(event::Loop& loop, Client& c) {
  return wait_for(loop, [&](auto done) {
    c.connect({}, "client.test", Family::Inet, 40000, "127.0.0.1", done);
  });
}

TEST(MilterFailure, RefusedFailsQuickly) {
  event::Loop loop;
  Client c(loop, fast(free_port()));
  auto start = std::chrono::steady_clock::now();
  auto r = connect_only(loop, c);
  EXPECT_EQ(r.verdict.action, Action::Failed);
  EXPECT_EQ(r.verdict.text, "milter fake: connect: Connection refused");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms);
  // Every later call fails too.
  r = wait_for(loop, [&](auto done) { c.helo({}, "x", done); });
  EXPECT_EQ(r.verdict.action, Action::Failed);
}

TEST(MilterFailure, UnixSocketRefused) {
  event::Loop loop;
  Options o = fast(free_port());
  std::string error;
  ASSERT_TRUE(parse_spec("unix:/nonexistent/milter.sock", o.spec, &error));
  Client c(loop, o);
  EXPECT_EQ(connect_only(loop, c).verdict.action, Action::Failed);
}

TEST(MilterFailure, SilentMilterTimesOut) {
  event::Loop loop;
  // Listening but never accepting: the kernel completes the connection, nobody answers.
  base::UniqueFd listener = base::listen_tcp("127.0.0.1", 0);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  Client c(loop, fast(ntohs(a.sin_port)));
  auto start = std::chrono::steady_clock::now();
  auto r = connect_only(loop, c);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.verdict.action, Action::Failed);
  // The reason names the phase and the limit that ran out.
  EXPECT_EQ(r.verdict.text,
            "milter fake: timeout: no reply to connect within 300ms (milter_command_timeout)");
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 2s);
}

TEST(MilterFailure, GarbageFails) {
  for (std::string garbage :
       {"\0\0\0\x05Zabcd"s, "\0\0\0\0"s, "\x7f\xff\xff\xffO"s, reply('c', "extra")}) {
    event::Loop loop;
    FakeMilter fake(loop, [&](char, FakeMilter&) { return garbage; });
    Client c(loop, fast(fake.port()));
    auto r = connect_only(loop, c);
    EXPECT_EQ(r.verdict.action, Action::Failed);
    EXPECT_TRUE(r.verdict.text.starts_with("milter fake: bad reply: malformed: "))
        << r.verdict.text;
  }
}

TEST(MilterFailure, UnexpectedRepliesFail) {
  struct Case {
    std::string name;
    FakeMilter::Script script;
  };
  const std::vector<Case> cases = {
      {"continue_instead_of_optneg", [](char, FakeMilter&) { return reply('c'); }},
      {"version_1",
       [](char c, FakeMilter&) {
         return c == SMFIC_OPTNEG ? reply('O', std::string(4, '\0') + std::string(3, '\0') + "\1" +
                                                   std::string(4, '\0'))
                                  : reply('c');
       }},
      {"modification_at_connect",
       [](char c, FakeMilter&) {
         return c == SMFIC_OPTNEG ? optneg_reply() : reply('h', "X\0y\0"s) + reply('c');
       }},
      {"two_replies",
       [](char c, FakeMilter&) {
         return c == SMFIC_OPTNEG ? optneg_reply() : reply('c') + reply('c');
       }},
      {"unoffered_protocol_bit",
       [](char c, FakeMilter&) {
         return c == SMFIC_OPTNEG ? optneg_reply(SMFIP_RCPT_REJ) : reply('c');
       }},
  };
  for (const Case& k : cases) {
    event::Loop loop;
    FakeMilter fake(loop, k.script);
    Client c(loop, fast(fake.port()));
    auto r = connect_only(loop, c);
    if (r.verdict.action == Action::Continue) {
      // The extra reply arrives after the answer; the next call sees the failure.
      r = wait_for(loop, [&](auto done) { c.helo({}, "x", done); });
    }
    EXPECT_EQ(r.verdict.action, Action::Failed) << k.name;
  }
}

TEST(MilterFailure, ClosingMidTransactionFails) {
  event::Loop loop;
  FakeMilter fake(loop, [](char command, FakeMilter& self) -> std::string {
    if (command == SMFIC_RCPT) return "close";
    return polite(command, self);
  });
  Client c(loop, fast(fake.port()));
  expect_continue(connect_only(loop, c));
  expect_continue(wait_for(loop, [&](auto done) { c.mail({}, "<a@b>", {}, done); }));
  auto r = wait_for(loop, [&](auto done) { c.rcpt({}, "<c@d>", {}, done); });
  EXPECT_EQ(r.verdict.action, Action::Failed);
  EXPECT_EQ(r.verdict.text, "milter fake: closed: the milter closed the connection");
  EXPECT_TRUE(c.failed());
}

TEST(MilterFailure, ProgressExtendsTheTimeout) {
  for (bool progress : {true, false}) {
    event::Loop loop;
    FakeMilter fake(loop, [progress](char command, FakeMilter& self) -> std::string {
      if (command != SMFIC_BODYEOB) return polite(command, self);
      // Answers after 3 s; with progress every 200 ms the 1 s timeout never fires (wide margins:
      // a loaded machine delays timers by hundreds of ms).
      for (int i = 1; progress && i <= 14; ++i)
        self.later(std::chrono::milliseconds(200 * i), reply('p'));
      self.later(3000ms, reply('c'));
      return "";
    });
    Options options = fast(fake.port());
    options.content_timeout = options.command_timeout = 1000ms;
    Client c(loop, options);
    expect_continue(connect_only(loop, c));
    expect_continue(wait_for(loop, [&](auto done) { c.mail({}, "<a@b>", {}, done); }));
    auto r = wait_eom(loop, [&](auto done) { c.eom({}, done); });
    if (progress) {
      expect_continue(r);
    } else {
      EXPECT_EQ(r.verdict.action, Action::Failed);
      EXPECT_EQ(r.verdict.text,
                "milter fake: timeout: no reply to eom within 1s (milter_content_timeout)");
    }
  }
}

TEST(MilterFailure, DestroyingTheClientCancels) {
  event::Loop loop;
  base::UniqueFd listener = base::listen_tcp("127.0.0.1", 0);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  bool called = false;
  {
    Client c(loop, fast(ntohs(a.sin_port)));
    c.connect({}, "h", Family::Inet, 1, "127.0.0.1", [&](const Verdict&) { called = true; });
  }
  {
    Client refused(loop, fast(free_port()));  // its failure is posted: must not run either
    refused.connect({}, "h", Family::Inet, 1, "127.0.0.1", [&](const Verdict&) { called = true; });
  }
  loop.add_timer(600ms, [&] { loop.stop(); });
  loop.run();
  EXPECT_FALSE(called);
}

TEST(MilterFailure, ChainDefaultActions) {
  for (DefaultAction action :
       {DefaultAction::Accept, DefaultAction::Tempfail, DefaultAction::Reject}) {
    event::Loop loop;
    FakeMilter fake(loop, polite);
    Options dead = fast(free_port());
    dead.name = "dead";
    dead.default_action = action;
    Chain chain(loop, make_clients(loop, {dead, fast(fake.port())}));
    auto r = wait_for(loop, [&](auto done) {
      chain.connect({}, "client.test", Family::Inet, 1, "127.0.0.1", done);
    });
    switch (action) {
      case DefaultAction::Accept:
        expect_continue(r);
        // The dead milter is skipped from now on; the live one still answers.
        expect_continue(wait_for(loop, [&](auto done) { chain.helo({}, "x", done); }));
        break;
      case DefaultAction::Tempfail:
        EXPECT_EQ(r.verdict.action, Action::Tempfail);
        EXPECT_EQ(r.verdict.filter, "dead");
        break;
      case DefaultAction::Reject:
        EXPECT_EQ(r.verdict.action, Action::Reject);
        break;
    }
  }
}

TEST(MilterClient, SkipStopsTheBodyAndNoReplyFlagsAreHonoured) {
  event::Loop loop;
  int bodies = 0;
  std::string seen;
  FakeMilter fake(loop, [&](char command, FakeMilter&) -> std::string {
    seen += command;
    if (command == SMFIC_OPTNEG)
      return optneg_reply(SMFIP_SKIP | SMFIP_NOHELO | SMFIP_NR_MAIL | SMFIP_NODATA);
    if (command == SMFIC_BODY) return ++bodies == 1 ? reply('s') : reply('c');
    if (command == SMFIC_MAIL || command == SMFIC_ABORT || command == SMFIC_QUIT) return "";
    return reply('c');
  });
  Client c(loop, fast(fake.port()));
  expect_continue(connect_only(loop, c));
  expect_continue(wait_for(loop, [&](auto done) { c.helo({}, "x", done); }));
  expect_continue(wait_for(loop, [&](auto done) { c.mail({}, "<a@b>", {}, done); }));
  expect_continue(wait_for(loop, [&](auto done) { c.data({}, done); }));
  const std::string big(200000, 'x');  // the caller keeps body bytes until the callback
  expect_continue(wait_for(loop, [&](auto done) { c.body(big, done); }));
  expect_continue(wait_for(loop, [&](auto done) { c.body("more", done); }));
  auto r = wait_eom(loop, [&](auto done) { c.eom({}, done); });
  expect_continue(r);
  EXPECT_EQ(bodies, 1);
  EXPECT_EQ(seen, "OCMBE");  // no HELO, no DATA; one body chunk, then SKIP
}

}  // namespace
}  // namespace estafette::milter
