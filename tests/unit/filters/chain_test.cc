// Tests for the filter-neutral parts of filters/: Chain (order, stop, Accept, each default
// action of a failed filter, concatenated modifications, cancellation), filter_message (the
// pass over a whole message), FilterSet and start_errors (config -> filters, the check-config
// errors). A scripted fake Filter stands for any implementation; no milter, no module code.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "filters/chain.h"
#include "filters/filter_set.h"
#include "filters/message_edit.h"
#include "filters/message_pass.h"
#include "filters/start_checks.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"

namespace estafette::filters {
namespace {

using namespace std::chrono_literals;
using Action = Verdict::Action;

// What every fake filter of one test saw: "name:call" in order.
using Log = std::vector<std::string>;

// A Filter that answers each call from a script (by call name; Continue when not scripted),
// later on the loop as the contract requires, and logs the call.
class FakeFilter final : public Filter {
 public:
  FakeFilter(event::Loop& loop, std::string name, Log& log, DefaultAction action)
      : loop_(loop), name_(std::move(name)), log_(log), action_(action) {}

  std::map<std::string, Verdict> answers;                    // call name -> verdict
  std::set<Phase> not_received;                              // receives() answers false
  std::vector<Modification> mods;                            // returned by eom
  std::vector<std::pair<std::string, std::string>> headers;  // as received

  void connect(const Macros&, std::string_view, Family, std::uint16_t, std::string_view,
               Callback done) override {
    answer("connect", std::move(done));
  }
  void helo(const Macros&, std::string_view, Callback done) override {
    answer("helo", std::move(done));
  }
  void mail(const Macros&, std::string_view, const std::vector<std::string>&,
            Callback done) override {
    answer("mail", std::move(done));
  }
  void rcpt(const Macros&, std::string_view, const std::vector<std::string>&,
            Callback done) override {
    answer("rcpt", std::move(done));
  }
  void data(const Macros&, Callback done) override { answer("data", std::move(done)); }
  void header(std::string_view name, std::string_view value, Callback done) override {
    headers.emplace_back(name, value);
    answer("header", std::move(done));
  }
  void eoh(const Macros&, Callback done) override { answer("eoh", std::move(done)); }
  void body(std::string_view bytes, Callback done) override {
    answer("body:" + std::string(bytes), std::move(done));
  }
  void eom(const Macros&, EomCallback done) override {
    Verdict v = verdict_for("eom");
    loop_.post(guard_.wrap([v, m = mods, done = std::move(done)] { done(v, m); }));
  }
  bool receives(Phase phase) const override { return !not_received.contains(phase); }
  void skipped(Phase phase, const Macros& macros) override {
    std::string line = name_ + ":skipped" + std::to_string(static_cast<int>(phase));
    for (const auto& [k, v] : macros) line += " " + k + "=" + v;
    log_.push_back(line);
  }
  void abort() override { log_.push_back(name_ + ":abort"); }
  void quit() override { log_.push_back(name_ + ":quit"); }
  const std::string& name() const override { return name_; }
  DefaultAction default_action() const override { return action_; }

 private:
  Verdict verdict_for(const std::string& call) {
    log_.push_back(name_ + ":" + call);
    auto it = answers.find(call.substr(0, call.find(':')));
    if (it == answers.end()) return {};
    Verdict v = it->second;
    if (v.action != Action::Continue) v.filter = name_;
    return v;
  }
  void answer(const std::string& call, Callback done) {
    Verdict v = verdict_for(call);
    loop_.post(guard_.wrap([v, done = std::move(done)] { done(v); }));
  }

  event::Loop& loop_;
  std::string name_;
  Log& log_;
  DefaultAction action_;
  event::CallbackGuard guard_;
};

struct Answer {
  Verdict verdict{Action::Failed, "no answer (test guard)", {}};
  std::vector<Modification> mods;
  bool answered = false;
  bool inside_call = false;
};

// Starts a call, notes whether it answered inside the call, runs the loop until it answers.
template <typename Start>
Answer wait(event::Loop& loop, Start start) {
  Answer a;
  start([&a, &loop](const Verdict& v, std::vector<Modification> mods) {
    a.verdict = v;
    a.mods = std::move(mods);
    a.answered = true;
    loop.stop();
  });
  a.inside_call = a.answered;
  auto guard = loop.add_timer(5s, [&loop] { loop.stop(); });
  if (!a.answered) loop.run();
  loop.cancel_timer(guard);
  return a;
}

Chain::Callback plain(Chain::EomCallback done) {
  return [done = std::move(done)](const Verdict& v) { done(v, {}); };
}

Modification add_header(std::string name, std::string value) {
  Modification m;
  m.kind = Modification::Kind::AddHeader;
  m.name = std::move(name);
  m.value = std::move(value);
  return m;
}

class FilterChain : public ::testing::Test {
 protected:
  FakeFilter& add(std::string name, DefaultAction action = DefaultAction::Tempfail) {
    auto f = std::make_unique<FakeFilter>(loop_, std::move(name), log_, action);
    FakeFilter& ref = *f;
    pending_.push_back(std::move(f));
    return ref;
  }
  Chain& chain() {
    if (!chain_) chain_ = std::make_unique<Chain>(loop_, std::exchange(pending_, {}));
    return *chain_;
  }
  Answer helo() {
    return wait(loop_, [&](auto done) { chain().helo({}, "client.test", plain(done)); });
  }

  event::Loop loop_;
  Log log_;
  std::vector<std::unique_ptr<Filter>> pending_;
  std::unique_ptr<Chain> chain_;
};

TEST_F(FilterChain, AsksEachFilterInOrderAndAnswersLater) {
  add("a");
  add("b");
  Answer r = helo();
  EXPECT_TRUE(r.answered);
  EXPECT_FALSE(r.inside_call);
  EXPECT_EQ(r.verdict.action, Action::Continue);
  EXPECT_EQ(log_, (Log{"a:helo", "b:helo"}));
  EXPECT_EQ(chain().size(), 2u);
}

TEST_F(FilterChain, StopsAtTheFirstRefusalAndAcceptOnlyEndsThatFiltersPart) {
  add("a").answers["helo"] = {Action::Accept, {}, {}};
  add("b").answers["helo"] = {Action::ReplyCode, "550 5.7.1 not you", {}};
  add("c");
  Answer r = helo();
  EXPECT_EQ(r.verdict.action, Action::ReplyCode);
  EXPECT_EQ(r.verdict.text, "550 5.7.1 not you");
  EXPECT_EQ(r.verdict.filter, "b");
  EXPECT_EQ(log_, (Log{"a:helo", "b:helo"}));
}

TEST_F(FilterChain, FailedFilterGetsItsDefaultAction) {
  for (DefaultAction action :
       {DefaultAction::Accept, DefaultAction::Tempfail, DefaultAction::Reject}) {
    SCOPED_TRACE(static_cast<int>(action));
    chain_.reset();
    log_.clear();
    add("dead", action).answers["helo"] = {Action::Failed, "module dead: no answer in time", {}};
    add("live");
    Answer r = helo();
    switch (action) {
      case DefaultAction::Accept:
        // Dropped for the rest of the session: the next call skips it.
        EXPECT_EQ(r.verdict.action, Action::Continue);
        EXPECT_EQ(log_, (Log{"dead:helo", "live:helo"}));
        r = helo();
        EXPECT_EQ(r.verdict.action, Action::Continue);
        EXPECT_EQ(log_, (Log{"dead:helo", "live:helo", "live:helo"}));
        chain().abort();
        EXPECT_EQ(log_.back(), "live:abort");
        EXPECT_EQ(log_[log_.size() - 2], "live:helo");
        break;
      case DefaultAction::Tempfail:
      case DefaultAction::Reject:
        // Never Failed out of a chain; no text, so the session uses its own reply.
        EXPECT_EQ(r.verdict.action,
                  action == DefaultAction::Tempfail ? Action::Tempfail : Action::Reject);
        EXPECT_EQ(r.verdict.text, "");
        EXPECT_EQ(r.verdict.filter, "dead");
        // Why, for esmtpd's log line (reason=).
        EXPECT_EQ(r.verdict.reason, "module dead: no answer in time");
        EXPECT_EQ(log_, (Log{"dead:helo"}));
        break;
    }
  }
}

TEST_F(FilterChain, EveryFilterDroppedStillAnswersLater) {
  add("dead", DefaultAction::Accept).answers["helo"] = {Action::Failed, "gone", {}};
  EXPECT_EQ(helo().verdict.action, Action::Continue);
  Answer r = helo();
  EXPECT_TRUE(r.answered);
  EXPECT_FALSE(r.inside_call);
  EXPECT_EQ(r.verdict.action, Action::Continue);
  EXPECT_EQ(log_, (Log{"dead:helo"}));
}

TEST_F(FilterChain, EomConcatenatesModificationsInFilterOrder) {
  add("a").mods = {add_header("X-A", " 1")};
  add("b").mods = {add_header("X-B", " 2"), add_header("X-B", " 3")};
  Answer r = wait(loop_, [&](auto done) { chain().eom({}, done); });
  EXPECT_EQ(r.verdict.action, Action::Continue);
  EXPECT_EQ(r.mods, (std::vector<Modification>{add_header("X-A", " 1"), add_header("X-B", " 2"),
                                               add_header("X-B", " 3")}));
}

// Issue 13: nothing a filter answers is trusted. An invalid modification or reply is that
// filter's failure: its default action refuses the message (tempfail, reject) or drops the
// filter with its changes (accept).
TEST_F(FilterChain, InvalidModificationIsTheFiltersFailure) {
  for (DefaultAction action :
       {DefaultAction::Tempfail, DefaultAction::Reject, DefaultAction::Accept}) {
    SCOPED_TRACE(static_cast<int>(action));
    chain_.reset();
    log_.clear();
    add("good").mods = {add_header("X-Good", " 1")};
    add("hostile", action).mods = {add_header("X-Ok", " 2"), add_header("Bcc: x", " y")};
    Answer r = wait(loop_, [&](auto done) { chain().eom({}, done); });
    switch (action) {
      case DefaultAction::Tempfail:
        EXPECT_EQ(r.verdict.action, Action::Tempfail);
        EXPECT_TRUE(r.mods.empty());
        break;
      case DefaultAction::Reject:
        EXPECT_EQ(r.verdict.action, Action::Reject);
        EXPECT_TRUE(r.mods.empty());
        break;
      case DefaultAction::Accept:  // as if the hostile filter were not there
        EXPECT_EQ(r.verdict.action, Action::Continue);
        EXPECT_EQ(r.mods, (std::vector<Modification>{add_header("X-Good", " 1")}));
        break;
    }
    if (action != DefaultAction::Accept) {
      EXPECT_EQ(r.verdict.filter, "hostile");
    }
  }
}

TEST_F(FilterChain, InvalidReplyCodeIsTheFiltersFailure) {
  add("hostile").answers["helo"] = {Action::ReplyCode, "550-5.7.1 a\r\n250 2.0.0 ok", {}};
  Answer r = helo();
  EXPECT_EQ(r.verdict.action, Action::Tempfail);
  EXPECT_EQ(r.verdict.text, "");  // the session's own 451, never the filter's text
  EXPECT_EQ(r.verdict.filter, "hostile");
}

TEST_F(FilterChain, ModificationsOfAllFiltersAreCounted) {
  add("a").mods = std::vector<Modification>(600, add_header("X-A", " 1"));
  add("b").mods = std::vector<Modification>(600, add_header("X-B", " 1"));
  Answer r = wait(loop_, [&](auto done) { chain().eom({}, done); });
  EXPECT_EQ(r.verdict.action, Action::Tempfail);
  EXPECT_EQ(r.verdict.filter, "b");
}

TEST_F(FilterChain, DestroyingTheChainCancelsItsCallback) {
  add("a");
  bool called = false;
  chain().helo({}, "x", [&](const Verdict&) { called = true; });
  chain_.reset();
  // And with every filter dropped (the Chain's own posted answer).
  add("dead", DefaultAction::Accept).answers["helo"] = {Action::Failed, "gone", {}};
  helo();
  chain().helo({}, "x", [&](const Verdict&) { called = true; });
  chain_.reset();
  auto t = loop_.add_timer(50ms, [this] { loop_.stop(); });
  loop_.run();
  loop_.cancel_timer(t);
  EXPECT_FALSE(called);
}

TEST_F(FilterChain, CallbackMayDestroyTheChain) {
  add("a");
  add("b");
  bool called = false;
  chain().helo({}, "x", [&](const Verdict&) {
    called = true;
    chain_.reset();
    loop_.stop();
  });
  auto t = loop_.add_timer(5s, [this] { loop_.stop(); });
  loop_.run();
  loop_.cancel_timer(t);
  EXPECT_TRUE(called);
  EXPECT_EQ(chain_, nullptr);
}

// --- filter_message

TEST(FilterHeaderValue, JoinsContinuationLinesWithLf) {
  EXPECT_EQ(filter_header_value(" plain"), " plain");
  EXPECT_EQ(filter_header_value(" a\r\n\tb\r\n c"), " a\n\tb\n c");
  EXPECT_EQ(filter_header_value(" lone\r cr"), " lone\r cr");
  EXPECT_EQ(filter_header_value(" end\r"), " end\r");
  EXPECT_EQ(filter_header_value(" cr\r\r\nx"), " cr\r\nx");
  EXPECT_EQ(filter_header_value("\r\n\r\n"), "\n\n");
  EXPECT_EQ(filter_header_value(" last\r\n"), " last\n");
  EXPECT_EQ(filter_header_value(""), "");
}

TEST_F(FilterChain, MessagePassSendsHeadersBodyAndEom) {
  FakeFilter& a = add("a");
  a.mods = {add_header("X-A", " 1")};
  auto message = std::make_shared<const ParsedMessage>(
      parse_message("Subject: hi\r\nX-Long: one\r\n\ttwo\r\n\r\nbody\r\n"));
  Answer r = wait(loop_, [&](auto done) { filter_message(chain(), message, {{"i", "Q1"}}, done); });
  EXPECT_FALSE(r.inside_call);
  EXPECT_EQ(r.verdict.action, Action::Continue);
  EXPECT_EQ(r.mods, (std::vector<Modification>{add_header("X-A", " 1")}));
  EXPECT_EQ(log_, (Log{"a:header", "a:header", "a:eoh", "a:body:body\r\n", "a:eom"}));
  EXPECT_EQ(a.headers, (std::vector<std::pair<std::string, std::string>>{
                           {"Subject", " hi"}, {"X-Long", " one\n\ttwo"}}));
}

TEST_F(FilterChain, MessagePassWithoutBodySendsNoBody) {
  add("a");
  auto message = std::make_shared<const ParsedMessage>(parse_message("Subject: hi\r\n\r\n"));
  Answer r = wait(loop_, [&](auto done) { filter_message(chain(), message, {}, done); });
  EXPECT_EQ(r.verdict.action, Action::Continue);
  EXPECT_EQ(log_, (Log{"a:header", "a:eoh", "a:eom"}));
}

TEST_F(FilterChain, ReceivesWhenAnyFilterNotDroppedReceives) {
  FakeFilter& a = add("a", DefaultAction::Accept);
  FakeFilter& b = add("b");
  a.not_received = {Phase::Helo};
  b.not_received = {Phase::Helo, Phase::Rcpt};
  EXPECT_FALSE(chain().receives(Phase::Helo));
  EXPECT_TRUE(chain().receives(Phase::Rcpt));  // a does
  chain().skipped(Phase::Helo, {{"{tls_version}", "TLSv1.3"}});
  EXPECT_EQ(log_, (Log{"a:skipped1 {tls_version}=TLSv1.3", "b:skipped1 {tls_version}=TLSv1.3"}));
  // a fails with default_action accept: dropped, so only b counts (and b skips RCPT).
  a.answers["helo"] = Verdict{Action::Failed, "broken", {}};
  EXPECT_EQ(helo().verdict.action, Action::Continue);
  EXPECT_FALSE(chain().receives(Phase::Rcpt));
}

TEST_F(FilterChain, MessagePassSkipsWhatNoFilterReceives) {
  FakeFilter& a = add("a");
  FakeFilter& b = add("b");
  a.not_received = b.not_received = {Phase::Header, Phase::Eoh, Phase::Body};
  auto message = std::make_shared<const ParsedMessage>(
      parse_message("Subject: hi\r\nX-Other: 1\r\n\r\nbody\r\n"));
  Answer r = wait(loop_, [&](auto done) { filter_message(chain(), message, {{"i", "Q1"}}, done); });
  EXPECT_FALSE(r.inside_call);
  EXPECT_EQ(r.verdict.action, Action::Continue);
  EXPECT_EQ(log_, (Log{"a:skipped6 i=Q1", "b:skipped6 i=Q1", "a:eom", "b:eom"}));
  // One filter that receives headers: every filter is called for them, as before.
  log_.clear();
  b.not_received = {Phase::Eoh, Phase::Body};
  r = wait(loop_, [&](auto done) { filter_message(chain(), message, {{"i", "Q2"}}, done); });
  // The fields go as one call per filter (Filter::headers; the default calls header() for each).
  EXPECT_EQ(log_, (Log{"a:header", "a:header", "b:header", "b:header", "a:skipped6 i=Q2",
                       "b:skipped6 i=Q2", "a:eom", "b:eom"}));
}

TEST_F(FilterChain, MessagePassStopsAtTheFirstRefusal) {
  FakeFilter& a = add("a");
  // A filter's words never reach the client's 250 (the Chain clears a Discard's text).
  a.answers["eoh"] = {Action::Discard, "x\r\n250 injected", {}};
  a.mods = {add_header("X-A", " 1")};
  auto message = std::make_shared<const ParsedMessage>(parse_message("A: 1\r\n\r\nbody\r\n"));
  Answer r = wait(loop_, [&](auto done) { filter_message(chain(), message, {}, done); });
  EXPECT_EQ(r.verdict.action, Action::Discard);
  EXPECT_EQ(r.verdict.filter, "a");
  EXPECT_EQ(r.verdict.text, "");
  EXPECT_TRUE(r.mods.empty());
  EXPECT_EQ(log_, (Log{"a:header", "a:eoh"}));
  EXPECT_STREQ(chain().phase(), "eoh");  // where the verdict came from, for esmtpd's log
}

// --- FilterSet, start_errors

config::Config with_filters(std::vector<config::FilterSpec> specs) {
  config::Config c;
  c.filters = std::move(specs);
  return c;
}

const std::string kNativeExample =
    std::string(ESTAFETTE_TEST_BUILDDIR) + "/filters/examples/native_example.so";

TEST(FilterSet, MakesOneFilterPerEntryForEachSession) {
  event::Loop loop;
  FilterSet none(loop, config::Config{});
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.open_chain()->size(), 0u);

  auto c = with_filters({{"milter", "inet:8891@127.0.0.1", "conf:1"},
                         {"module", kNativeExample, "conf:1"},
                         {"milter", "unix:/run/x.sock", "conf:2"}});
  c.milter_default_action = "accept";
  // check() loads and unloads the module: before the set loads it (a module is loaded once per
  // process, as in esmtpd, where only check-config's own process runs check()).
  EXPECT_TRUE(FilterSet::check(c).empty());
  FilterSet set(loop, c);
  EXPECT_EQ(set.size(), 3u);
  auto chain = set.open_chain();
  EXPECT_EQ(chain->size(), 3u);
  EXPECT_NE(set.open_chain().get(), chain.get());
}

// Two entries for one module would initialise the one library twice: its globals would point at
// the second host table, freed while the first entry's sessions still used it (ASan found it).
TEST(FilterSet, AModuleListedTwiceIsAConfigError) {
  event::Loop loop;
  auto link = testing::TempDir() + "native_example_link.so";
  ::unlink(link.c_str());
  ASSERT_EQ(::symlink(kNativeExample.c_str(), link.c_str()), 0);
  for (const auto& second : {kNativeExample, link}) {
    auto c = with_filters({{"module", kNativeExample, "conf:1"}, {"module", second, "conf:2"}});
    auto errors = FilterSet::check(c);
    ASSERT_EQ(errors.size(), 1u) << second;
    EXPECT_EQ(errors[0], "conf:2: filters: module " + second +
                             " is listed twice (a module is loaded once per process)");
    EXPECT_THROW(FilterSet(loop, c), config::ConfigError);
  }
  ::unlink(link.c_str());
}

TEST(FilterSet, BadEntriesNameTheirLine) {
  event::Loop loop;
  auto c = with_filters({{"milter", "inet:8891@127.0.0.1", "conf:1"},
                         {"milter", "nonsense:1", "conf:2"},
                         {"module", "/nonexistent/x.so", "conf:3"}});
  EXPECT_THROW(FilterSet(loop, c), config::ConfigError);
  auto errors = FilterSet::check(c);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_TRUE(errors[0].starts_with("conf:2: filters: milter 'nonsense:1': ")) << errors[0];
  EXPECT_TRUE(errors[1].starts_with("conf:3: filters: ")) << errors[1];
}

// A libmilter module written as sendmail's sample (tests/unit/filters/modules): its main()
// needs -p, given as the entry's arguments; without them it exits at load, which check() and
// the constructor report (the module's code ran in a child: this test process goes on).
TEST(FilterSet, ModuleArgumentsAndAnExitAtLoad) {
  const std::string sample =
      std::string(ESTAFETTE_TEST_BUILDDIR) + "/tests/unit/filters/modules/sendmail_sample.so";
  event::Loop loop;
  auto bare = with_filters({{"module", sample, "conf:4"}});
  auto errors = FilterSet::check(bare);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(errors[0].starts_with("conf:4: filters: module " + sample +
                                    ": exited with status 64 while loading"))
      << errors[0];
  EXPECT_NE(errors[0].find("Missing required -p argument"), std::string::npos) << errors[0];
  try {
    FilterSet set(loop, bare);
    ADD_FAILURE() << "loaded without its arguments";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), errors[0]);
  }
  auto with_args = with_filters({{"module", sample, "conf:4", {"-p", "inet:9999@127.0.0.1"}}});
  EXPECT_TRUE(FilterSet::check(with_args).empty());
  FilterSet set(loop, with_args);
  EXPECT_EQ(set.open_chain()->size(), 1u);
}

// A module-isolated entry runs in estafette-filterhost: check() (check-config) loads it in a
// child as it does a module, and the FilterSet of esmtpd never loads it at all (a module that
// exits at load cannot stop the set); each session gets a milter client to its socket. The same
// file as module: and module-isolated: is one load per process, not a module listed twice.
TEST(FilterSet, IsolatedModuleIsCheckedInAChildAndNeverLoadedHere) {
  const std::string sample =
      std::string(ESTAFETTE_TEST_BUILDDIR) + "/tests/unit/filters/modules/sendmail_sample.so";
  event::Loop loop;
  auto bare = with_filters({{"module-isolated", sample, "conf:4"}});
  auto errors = FilterSet::check(bare);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(errors[0].starts_with("conf:4: filters: module " + sample +
                                    ": exited with status 64 while loading"))
      << errors[0];
  FilterSet set(loop, bare);  // not loaded: no exit, no error here
  EXPECT_EQ(set.open_chain()->size(), 1u);

  auto both = with_filters({{"module", kNativeExample, "conf:1"},
                            {"module-isolated", kNativeExample, "conf:2"},
                            {"module-isolated", "/nonexistent/x.so", "conf:3"}});
  errors = FilterSet::check(both);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(errors[0].starts_with("conf:3: filters: module /nonexistent/x.so")) << errors[0];

  config::Config c;
  c.state_dir = "/var/lib/estafette";
  EXPECT_EQ(isolated_socket_dir(c), "/var/lib/estafette/run/filterhost");
  EXPECT_EQ(isolated_socket_path(c, 2), "/var/lib/estafette/run/filterhost/2.sock");
}

TEST(StartErrors, DnsListsThenFiltersInConfigOrder) {
  auto c = with_filters({{"milter", "nonsense:1", "conf:9"}});
  EXPECT_TRUE(start_errors(config::Config{}).empty());
  c.dnsbl = {{"ok.test", "127.0.0.2", 1, "", "dnsbl:1"},
             {"bad.test", "127.0.0.[x]", 1, "", "dnsbl:2"}};
  auto errors = start_errors(c);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(
      errors[0],
      "dnsbl:2: bad answer filter '127.0.0.[x]' (expected e.g. 127.0.0.2 or 127.0.0.[2..11])");
  EXPECT_TRUE(errors[1].starts_with("conf:9: filters: milter 'nonsense:1'")) << errors[1];
}

}  // namespace
}  // namespace estafette::filters
