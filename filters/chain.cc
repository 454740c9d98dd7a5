// chain.cc: filters run in order for one SMTP session (see chain.h).
#include "filters/chain.h"

#include <iterator>
#include <utility>

#include "lib/base/log.h"

namespace estafette::filters {

Chain::Chain(event::Loop& loop, std::vector<std::unique_ptr<Filter>> filters,
             ModificationLimits limits)
    : loop_(loop), limits_(limits) {
  for (auto& f : filters) entries_.push_back({std::move(f), false});
}

void Chain::ask(std::size_t i) {
  while (i < entries_.size() && entries_[i].dropped) ++i;
  if (i == entries_.size()) {
    // Reached from a filter's callback: the end.
    finish(Verdict{}, std::exchange(mods_, {}));
    return;
  }
  Filter& f = *entries_[i].filter;
  // The filter is destroyed with the Chain, and with it these callbacks: `this` is safe there.
  // Each captures two words, which std::function holds without an allocation.
  auto plain = [this, i](const Verdict& v) { answered(i, v, {}); };
  const Call& c = call_;
  switch (c.phase) {
    case Phase::Connect:
      f.connect(c.macros, c.text, c.family, c.port, c.value, plain);
      return;
    case Phase::Helo:
      f.helo(c.macros, c.text, plain);
      return;
    case Phase::Mail:
      f.mail(c.macros, c.text, c.args, plain);
      return;
    case Phase::Rcpt:
      f.rcpt(c.macros, c.text, c.args, plain);
      return;
    case Phase::Data:
      f.data(c.macros, plain);
      return;
    case Phase::Header:
      f.headers(*c.fields, plain);
      return;
    case Phase::Eoh:
      f.eoh(c.macros, plain);
      return;
    case Phase::Body:
      f.body(c.body, plain);
      return;
    case Phase::Eom:
      f.eom(c.macros, [this, i](const Verdict& v, std::vector<Modification> more) {
        answered(i, v, std::move(more));
      });
      return;
  }
}

void Chain::answered(std::size_t i, const Verdict& answer, std::vector<Modification> more) {
  using A = Verdict::Action;
  const std::string& name = entries_[i].filter->name();
  Verdict v = answer;
  // What the filter answered is checked before anything of it is used.
  std::string invalid;
  if (v.action == A::ReplyCode)
    invalid = check_reply(v.text);
  else if ((v.action == A::Continue || v.action == A::Accept) && !more.empty())
    invalid = check_modifications(more, limits_);
  if (invalid.empty() && mods_.size() + more.size() > limits_.max_modifications)
    invalid =
        "more than " + std::to_string(limits_.max_modifications) + " modifications in one message";
  if (!invalid.empty()) v = Verdict{A::Failed, "filter " + name + ": bad reply: " + invalid, name};
  if (v.action == A::Continue || v.action == A::Accept) {
    mods_.insert(mods_.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
    ask(i + 1);
    return;
  }
  if (v.action != A::Failed) {
    if (v.action == A::Discard) v.text.clear();  // never a filter's words in our 250
    finish(v, {});
    return;
  }
  const DefaultAction action = entries_[i].filter->default_action();
  base::log("filters").warning("filter failed session=" + session_ + " phase=" + phase_ +
                               " filter=" + name + " reason=" + base::log_quote(v.text) +
                               " default_action=" +
                               (action == DefaultAction::Accept   ? "accept"
                                : action == DefaultAction::Reject ? "reject"
                                                                  : "tempfail"));
  switch (action) {
    case DefaultAction::Accept:
      entries_[i].dropped = true;
      ask(i + 1);
      return;
    case DefaultAction::Tempfail:
      finish(Verdict{A::Tempfail, {}, v.filter.empty() ? name : v.filter, v.text}, {});
      return;
    case DefaultAction::Reject:
      finish(Verdict{A::Reject, {}, v.filter.empty() ? name : v.filter, v.text}, {});
      return;
  }
}

void Chain::finish(const Verdict& v, std::vector<Modification> mods) {
  mods_.clear();
  // Taken out first: the callback may destroy the Chain, and nothing here is touched after it.
  Callback done = std::exchange(done_, nullptr);
  EomCallback eom_done = std::exchange(eom_done_, nullptr);
  if (eom_done)
    eom_done(v, std::move(mods));
  else if (done)
    done(v);
}

void Chain::set_inline_answers(bool on) {
  for (auto& e : entries_) e.filter->set_inline_answers(on);
}

void Chain::set_session(std::string_view id) {
  session_ = id;
  for (auto& e : entries_) e.filter->set_session(id);
}

void Chain::start(const char* phase, Callback done, EomCallback eom_done) {
  phase_ = phase;
  mods_.clear();
  done_ = std::move(done);
  eom_done_ = std::move(eom_done);
  std::size_t first = 0;
  while (first < entries_.size() && entries_[first].dropped) ++first;
  if (first == entries_.size()) {
    // Nobody to ask: answer later, like every other path.
    loop_.post(guard_.wrap([this] { finish(Verdict{}, {}); }));
    return;
  }
  ask(first);
}

void Chain::connect(Macros macros, std::string_view hostname, Family family, std::uint16_t port,
                    std::string_view address, Callback done) {
  call_.phase = Phase::Connect;
  call_.macros = std::move(macros);
  call_.text = hostname;
  call_.value = address;
  call_.family = family;
  call_.port = port;
  start("connect", std::move(done), nullptr);
}

void Chain::helo(Macros macros, std::string_view name, Callback done) {
  call_.phase = Phase::Helo;
  call_.macros = std::move(macros);
  call_.text = name;
  start("helo", std::move(done), nullptr);
}

void Chain::mail(Macros macros, std::string_view address, std::vector<std::string> args,
                 Callback done) {
  address_call(Phase::Mail, "mail", std::move(macros), address, std::move(args), std::move(done));
}

void Chain::rcpt(Macros macros, std::string_view address, std::vector<std::string> args,
                 Callback done) {
  address_call(Phase::Rcpt, "rcpt", std::move(macros), address, std::move(args), std::move(done));
}

void Chain::address_call(Phase phase, const char* name, Macros macros, std::string_view address,
                         std::vector<std::string> args, Callback done) {
  call_.phase = phase;
  call_.macros = std::move(macros);
  call_.text = address;
  call_.args = std::move(args);
  start(name, std::move(done), nullptr);
}

void Chain::data(Macros macros, Callback done) {
  call_.phase = Phase::Data;
  call_.macros = std::move(macros);
  start("data", std::move(done), nullptr);
}

void Chain::headers(const HeaderFields& fields, Callback done) {
  call_.phase = Phase::Header;
  call_.fields = &fields;
  start("header", std::move(done), nullptr);
}

void Chain::eoh(Macros macros, Callback done) {
  call_.phase = Phase::Eoh;
  call_.macros = std::move(macros);
  start("eoh", std::move(done), nullptr);
}

void Chain::body(std::string_view bytes, Callback done) {
  // No copy: the caller keeps the bytes until `done` (a body is the size of the message).
  call_.phase = Phase::Body;
  call_.body = bytes;
  start("body", std::move(done), nullptr);
}

void Chain::eom(Macros macros, EomCallback done) {
  call_.phase = Phase::Eom;
  call_.macros = std::move(macros);
  start("eom", nullptr, std::move(done));
}

bool Chain::receives(Phase phase) const {
  for (const Entry& e : entries_)
    if (!e.dropped && e.filter->receives(phase)) return true;
  return false;
}

void Chain::skipped(Phase phase, const Macros& macros) {
  for (Entry& e : entries_)
    if (!e.dropped) e.filter->skipped(phase, macros);
}

void Chain::message_envelope(const std::vector<std::string>& recipients, std::uint64_t size) {
  for (Entry& e : entries_)
    if (!e.dropped) e.filter->message_envelope(recipients, size);
}

void Chain::abort() {
  for (Entry& e : entries_)
    if (!e.dropped) e.filter->abort();
}

void Chain::quit() {
  for (Entry& e : entries_) e.filter->quit();
}

}  // namespace estafette::filters
