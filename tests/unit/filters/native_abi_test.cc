// The native ABI's 1.1 additions and resume()'s contract (include/estafette/filter.h), on a
// NativeFilter driven on an event::Loop: host->foreach_rcpt and host->message_size answer at eom
// only; resume() with nothing pending (inside the callback, after the answer, twice) returns -1
// and changes nothing; ESTAFETTE_HOST_HAS tells a 1.0 host from a 1.1 one; the module built
// against the 1.0 layout (tests/unit/filters/modules/envelope_module_v10.so) loads and works.
#include <estafette/filter.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "filters/module.h"
#include "filters/native_filter.h"

#ifndef ESTAFETTE_TEST_BUILDDIR
#error ESTAFETTE_TEST_BUILDDIR is set by tests/local.am
#endif

namespace estafette::filters {
namespace {

using namespace std::chrono_literals;
using Action = Verdict::Action;

const std::string kBuild = ESTAFETTE_TEST_BUILDDIR;
const std::string kEnvelope11 = kBuild + "/tests/unit/filters/modules/envelope_module.so";
const std::string kEnvelope10 = kBuild + "/tests/unit/filters/modules/envelope_module_v10.so";

struct Answer {
  Verdict verdict{Action::Failed, "no answer (test guard)", {}};
  std::vector<Modification> mods;
};

// Runs the loop until the call answers (10 s guard).
template <typename Start>
Answer answer(event::Loop& loop, Start start) {
  Answer a;
  bool done = false;
  start([&](const Verdict& v, std::vector<Modification> mods) {
    a.verdict = v;
    a.mods = std::move(mods);
    done = true;
    loop.stop();
  });
  auto guard = loop.add_timer(10s, [&loop] { loop.stop(); });
  if (!done) loop.run();
  loop.cancel_timer(guard);
  return a;
}

template <typename Start>
Verdict phase(event::Loop& loop, Start start) {
  return answer(loop, [&](auto done) { start([done](const Verdict& v) { done(v, {}); }); }).verdict;
}

// A module written in the test: what the host answered it, per call. The test's own state (one
// test at a time), reset by each test.
struct Probe {
  const estafette_host* host = nullptr;
  estafette_ctx* ctx = nullptr;
  int resume_inside_mail = 0;
  int rcpts_at_data = 0, size_at_data = 0;
  int rcpts_at_eom = 0, size_at_eom = 0;
  std::vector<std::string> rcpts;
  std::uint64_t size = 0;
  int resume_first = 0, resume_second = 0;
  bool eom_pending = false;
  std::string rcpt_addr_at_eom, mail_addr_at_eom;
  std::vector<std::string> headers;  // names, as the header callback got them
  int resume_header = 0;
};
Probe probe;

extern "C" int probe_mail(estafette_ctx* ctx, const char*, const char* const*) {
  probe.ctx = ctx;
  // Nothing pending yet: refused, and the CONTINUE below answers.
  probe.resume_inside_mail = probe.host->resume(ctx, ESTAFETTE_REJECT);
  return ESTAFETTE_CONTINUE;
}

extern "C" void probe_rcpt_fn(void* arg, const char* rcpt) {
  static_cast<std::vector<std::string>*>(arg)->push_back(rcpt);
}

extern "C" int probe_data(estafette_ctx* ctx) {
  std::vector<std::string> ignored;
  std::uint64_t size = 0;
  probe.rcpts_at_data = probe.host->foreach_rcpt(ctx, probe_rcpt_fn, &ignored);
  probe.size_at_data = probe.host->message_size(ctx, &size);
  return ESTAFETTE_CONTINUE;
}

extern "C" void probe_eom_later(estafette_ctx* ctx, void*) {
  probe.resume_first = probe.host->resume(ctx, ESTAFETTE_CONTINUE);
  probe.resume_second = probe.host->resume(ctx, ESTAFETTE_REJECT);  // answered already
}

extern "C" int probe_eom(estafette_ctx* ctx) {
  const char* rcpt_addr = probe.host->getsymval(ctx, "{rcpt_addr}");
  const char* mail_addr = probe.host->getsymval(ctx, "{mail_addr}");
  probe.rcpt_addr_at_eom = rcpt_addr ? rcpt_addr : "(null)";
  probe.mail_addr_at_eom = mail_addr ? mail_addr : "(null)";
  probe.rcpts_at_eom = probe.host->foreach_rcpt(ctx, probe_rcpt_fn, &probe.rcpts);
  probe.size_at_eom = probe.host->message_size(ctx, &probe.size);
  if (!probe.eom_pending) return ESTAFETTE_CONTINUE;
  return probe.host->add_timer(ctx, 1, probe_eom_later, nullptr) ? ESTAFETTE_PENDING
                                                                 : ESTAFETTE_TEMPFAIL;
}

extern "C" void probe_header_later(estafette_ctx* ctx, void*) {
  probe.resume_header = probe.host->resume(ctx, ESTAFETTE_CONTINUE);
}

// "X-Reject" rejects; "X-Pending" answers PENDING and a 1 ms timer resumes with CONTINUE.
extern "C" int probe_header(estafette_ctx* ctx, const char* name, const char* value) {
  probe.headers.push_back(std::string(name) + ":" + value);
  if (std::string_view(name) == "X-Reject") return ESTAFETTE_REJECT;
  if (std::string_view(name) == "X-Pending")
    return probe.host->add_timer(ctx, 1, probe_header_later, nullptr) ? ESTAFETTE_PENDING
                                                                      : ESTAFETTE_TEMPFAIL;
  return ESTAFETTE_CONTINUE;
}

estafette_filter probe_table() {
  estafette_filter t{};
  t.abi_version = ESTAFETTE_FILTER_ABI_VERSION;
  t.struct_size = sizeof(estafette_filter);
  t.name = "probe";
  t.mail = probe_mail;
  t.data = probe_data;
  t.eom = probe_eom;
  t.header = probe_header;
  return t;
}

class FilterNativeAbi : public ::testing::Test {
 protected:
  void SetUp() override {
    probe = Probe{};
    probe.host = &host_.host;
    filter_ =
        std::make_unique<NativeFilter>(loop_, nullptr, table_, "probe", DefaultAction::Tempfail);
  }
  // MAIL, two RCPTs, DATA, one header, EOH, body, EOM (with message_envelope before the
  // header, as esmtpd does); the eom answer.
  Answer message(bool envelope = true) {
    EXPECT_EQ(phase(loop_, [&](auto d) { filter_->mail({}, "<s@example.test>", {}, d); }).action,
              Action::Continue);
    for (const char* to : {"<a@estafette.test>", "<b@estafette.test>"})
      EXPECT_EQ(phase(loop_, [&](auto d) { filter_->rcpt({}, to, {}, d); }).action,
                Action::Continue);
    EXPECT_EQ(phase(loop_, [&](auto d) { filter_->data({}, d); }).action, Action::Continue);
    if (envelope) filter_->message_envelope({"<a@estafette.test>", "<b@estafette.test>"}, 1234);
    EXPECT_EQ(phase(loop_, [&](auto d) { filter_->header("Subject", " x", d); }).action,
              Action::Continue);
    EXPECT_EQ(phase(loop_, [&](auto d) { filter_->eoh({}, d); }).action, Action::Continue);
    EXPECT_EQ(phase(loop_, [&](auto d) { filter_->body("x\r\n", d); }).action, Action::Continue);
    return answer(loop_, [&](auto d) { filter_->eom({}, d); });
  }

  event::Loop loop_;
  HostTable host_{"probe", {}};
  estafette_filter table_ = probe_table();
  std::unique_ptr<NativeFilter> filter_;
};

// headers(): every field in one call, answered later; the first answer that is not CONTINUE
// ends it; a PENDING field goes on with the next one after resume().
TEST_F(FilterNativeAbi, HeaderFieldsInOneCall) {
  auto all = [&](const HeaderFields& fields) {
    bool inside = true;
    Verdict v = answer(loop_, [&](auto d) {
                  filter_->headers(fields, [d](const Verdict& v) { d(v, {}); });
                  inside = false;
                }).verdict;
    EXPECT_FALSE(inside);
    return v;
  };
  EXPECT_EQ(phase(loop_, [&](auto d) { filter_->mail({}, "<s@example.test>", {}, d); }).action,
            Action::Continue);
  const HeaderFields plain = {{"Subject", " a"}, {"To", " b"}, {"From", " c"}};
  EXPECT_EQ(all(plain).action, Action::Continue);
  EXPECT_EQ(probe.headers, (std::vector<std::string>{"Subject: a", "To: b", "From: c"}));

  probe.headers.clear();
  const HeaderFields pending = {{"X-Pending", " 1"}, {"To", " b"}, {"X-Pending", " 2"}};
  EXPECT_EQ(all(pending).action, Action::Continue);
  EXPECT_EQ(probe.headers, (std::vector<std::string>{"X-Pending: 1", "To: b", "X-Pending: 2"}));
  EXPECT_EQ(probe.resume_header, ESTAFETTE_OK);

  probe.headers.clear();
  const HeaderFields rejected = {{"Subject", " a"}, {"X-Reject", " yes"}, {"To", " never"}};
  EXPECT_EQ(all(rejected).action, Action::Reject);
  EXPECT_EQ(probe.headers, (std::vector<std::string>{"Subject: a", "X-Reject: yes"}));
}

TEST_F(FilterNativeAbi, ReceivesOnlyThePhasesItHasCallbacksFor) {
  // The probe has mail, data, header and eom callbacks.
  const std::vector<std::pair<Phase, bool>> expected = {
      {Phase::Connect, false}, {Phase::Helo, false}, {Phase::Mail, true},
      {Phase::Rcpt, false},    {Phase::Data, true},  {Phase::Header, true},
      {Phase::Eoh, false},     {Phase::Body, false}, {Phase::Eom, true}};
  for (const auto& [phase, receives] : expected)
    EXPECT_EQ(filter_->receives(phase), receives) << static_cast<int>(phase);
}

TEST_F(FilterNativeAbi, SkippedPhasesMacrosAreSeenLater) {
  // esmtpd skips the RCPT call (no callback) and gives its macros to skipped(): the eom
  // callback's getsymval finds them, as it finds those of the MAIL call it had.
  EXPECT_EQ(phase(loop_,
                  [&](auto d) {
                    filter_->mail({{"{mail_addr}", "s@example.test"}}, "<s@example.test>", {}, d);
                  })
                .action,
            Action::Continue);
  filter_->skipped(Phase::Rcpt, {{"{rcpt_addr}", "a@estafette.test"}});
  EXPECT_EQ(phase(loop_, [&](auto d) { filter_->data({}, d); }).action, Action::Continue);
  filter_->skipped(Phase::Eoh, {{"i", "Q1"}});
  EXPECT_EQ(answer(loop_, [&](auto d) { filter_->eom({}, d); }).verdict.action, Action::Continue);
  EXPECT_EQ(probe.rcpt_addr_at_eom, "a@estafette.test");
  EXPECT_EQ(probe.mail_addr_at_eom, "s@example.test");
}

TEST_F(FilterNativeAbi, RecipientsAndSizeAtEomOnly) {
  Answer a = message();
  EXPECT_EQ(a.verdict.action, Action::Continue);
  EXPECT_EQ(probe.rcpts_at_data, ESTAFETTE_ERROR);
  EXPECT_EQ(probe.size_at_data, ESTAFETTE_ERROR);
  EXPECT_EQ(probe.rcpts_at_eom, ESTAFETTE_OK);
  EXPECT_EQ(probe.size_at_eom, ESTAFETTE_OK);
  EXPECT_EQ(probe.rcpts, (std::vector<std::string>{"<a@estafette.test>", "<b@estafette.test>"}));
  EXPECT_EQ(probe.size, 1234u);
  // Outside any phase (between messages): refused.
  std::uint64_t size = 0;
  EXPECT_EQ(host_.host.message_size(probe.ctx, &size), ESTAFETTE_ERROR);
}

TEST_F(FilterNativeAbi, NoEnvelopeGivenAnswersError) {
  // A message whose envelope the caller never gave (and the last one's is not kept).
  message();
  probe.rcpts.clear();
  message(false);
  EXPECT_EQ(probe.rcpts_at_eom, ESTAFETTE_ERROR);
  EXPECT_EQ(probe.size_at_eom, ESTAFETTE_ERROR);
  EXPECT_TRUE(probe.rcpts.empty());
}

TEST_F(FilterNativeAbi, ResumeInsideTheCallbackIsRefused) {
  // The module called resume(REJECT) in its MAIL callback, then returned CONTINUE: the resume
  // answers -1 and the MAIL goes on (before 1.1 it answered 0 and was silently lost).
  Verdict v = phase(loop_, [&](auto d) { filter_->mail({}, "<s@example.test>", {}, d); });
  EXPECT_EQ(probe.resume_inside_mail, ESTAFETTE_ERROR);
  EXPECT_EQ(v.action, Action::Continue);
}

TEST_F(FilterNativeAbi, ResumeAnswersOnceAndOnlyWhatIsPending) {
  probe.eom_pending = true;
  Answer a = message();
  EXPECT_EQ(a.verdict.action, Action::Continue);
  EXPECT_EQ(probe.resume_first, ESTAFETTE_OK);
  EXPECT_EQ(probe.resume_second, ESTAFETTE_ERROR);
  // Nothing pending between messages, and never PENDING as an answer.
  EXPECT_EQ(host_.host.resume(probe.ctx, ESTAFETTE_REJECT), ESTAFETTE_ERROR);
  EXPECT_EQ(host_.host.resume(nullptr, ESTAFETTE_CONTINUE), ESTAFETTE_ERROR);
  // After close: refused too.
  filter_->quit();
  EXPECT_EQ(host_.host.resume(probe.ctx, ESTAFETTE_CONTINUE), ESTAFETTE_ERROR);
}

TEST(FilterNativeAbiLayout, HostHasTellsTheVersions) {
  HostTable table("x", {});
  EXPECT_EQ(ESTAFETTE_FILTER_ABI_VERSION, 1);
  EXPECT_EQ(ESTAFETTE_FILTER_ABI_MINOR, 2);
  EXPECT_EQ(table.host.struct_size, sizeof(estafette_host));
  EXPECT_TRUE(ESTAFETTE_HOST_HAS(&table.host, foreach_rcpt));
  EXPECT_TRUE(ESTAFETTE_HOST_HAS(&table.host, message_size));
  EXPECT_TRUE(ESTAFETTE_HOST_HAS(&table.host, flags));
  EXPECT_EQ(table.host.flags, 0u);
  EXPECT_EQ(HostTable("x", {}, ESTAFETTE_HOST_ON_LOOP).host.flags, ESTAFETTE_HOST_ON_LOOP);
  // A 1.1 host's table ends after message_size.
  estafette_host v11 = table.host;
  v11.struct_size = offsetof(estafette_host, flags);
  EXPECT_TRUE(ESTAFETTE_HOST_HAS(&v11, message_size));
  EXPECT_FALSE(ESTAFETTE_HOST_HAS(&v11, flags));
  // A 1.0 host's table ends after argv.
  estafette_host old = table.host;
  old.struct_size = offsetof(estafette_host, foreach_rcpt);
  EXPECT_EQ(old.struct_size, offsetof(estafette_host, argv) + sizeof(char* const*));
  EXPECT_TRUE(ESTAFETTE_HOST_HAS(&old, argv));
  EXPECT_TRUE(ESTAFETTE_HOST_HAS(&old, log));
  EXPECT_FALSE(ESTAFETTE_HOST_HAS(&old, foreach_rcpt));
  EXPECT_FALSE(ESTAFETTE_HOST_HAS(&old, message_size));
}

// The same module source built for 1.1 and against the 1.0 layout, loaded as esmtpd loads them.
std::vector<Modification> module_eom(const std::string& path) {
  auto module = Module::load(path, {});
  event::Loop loop;
  auto f = module->open(loop, DefaultAction::Tempfail);
  EXPECT_EQ(
      phase(loop,
            [&](auto d) { f->connect({}, "client.test", Family::Inet, 40000, "127.0.0.1", d); })
          .action,
      Action::Continue);
  phase(loop, [&](auto d) { f->mail({}, "<s@example.test>", {}, d); });
  phase(loop, [&](auto d) { f->rcpt({}, "<a@estafette.test>", {}, d); });
  phase(loop, [&](auto d) { f->data({}, d); });
  f->message_envelope({"<a@estafette.test>"}, 77);
  phase(loop, [&](auto d) { f->header("Subject", " x", d); });
  Answer a = answer(loop, [&](auto d) { f->eom({}, d); });
  EXPECT_EQ(a.verdict.action, Action::Continue) << a.verdict.text;
  f->quit();
  return a.mods;
}

std::vector<std::string> headers(const std::vector<Modification>& mods) {
  std::vector<std::string> out;
  for (const Modification& m : mods) out.push_back(m.name + ":" + m.value);
  return out;
}

TEST(FilterNativeAbiLayout, ModuleFor11ReadsTheEnvelope) {
  EXPECT_EQ(headers(module_eom(kEnvelope11)),
            (std::vector<std::string>{"X-Envelope-Abi: 1.1", "X-Envelope-Rcpts: <a@estafette.test>",
                                      "X-Envelope-Size: 77", "X-Envelope-Before-Eom: -1 -1"}));
}

TEST(FilterNativeAbiLayout, ModuleBuiltFor10LoadsAndWorks) {
  auto module = Module::load(kEnvelope10, {});
  EXPECT_EQ(module->name(), "envelope-1.0");
  module.reset();
  EXPECT_EQ(headers(module_eom(kEnvelope10)), (std::vector<std::string>{"X-Envelope-Abi: 1.0"}));
}

}  // namespace
}  // namespace estafette::filters
