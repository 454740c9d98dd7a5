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

void Chain::run(std::size_t i, std::shared_ptr<Step> step, std::vector<Modification> mods,
                EomCallback done) {
  while (i < entries_.size() && entries_[i].dropped) ++i;
  if (i == entries_.size()) {
    // Reached from a filter's callback (or posted when every filter is dropped): the end.
    done(Verdict{}, std::move(mods));
    return;
  }
  Filter& filter = *entries_[i].filter;
  // The filter is destroyed with the Chain, and with it this callback: `this` is safe here.
  (*step)(filter, [this, i, step, mods = std::move(mods), done = std::move(done)](
                      const Verdict& answer, std::vector<Modification> more) mutable {
    using A = Verdict::Action;
    const std::string& name = entries_[i].filter->name();
    Verdict v = answer;
    // What the filter answered is checked before anything of it is used.
    std::string invalid;
    if (v.action == A::ReplyCode)
      invalid = check_reply(v.text);
    else if ((v.action == A::Continue || v.action == A::Accept) && !more.empty())
      invalid = check_modifications(more, limits_);
    if (invalid.empty() && mods.size() + more.size() > limits_.max_modifications)
      invalid = "more than " + std::to_string(limits_.max_modifications) +
                " modifications in one message";
    if (!invalid.empty())
      v = Verdict{A::Failed, "filter " + name + ": bad reply: " + invalid, name};
    if (v.action == A::Continue || v.action == A::Accept) {
      mods.insert(mods.end(), std::make_move_iterator(more.begin()),
                  std::make_move_iterator(more.end()));
      run(i + 1, std::move(step), std::move(mods), std::move(done));
      return;
    }
    if (v.action != A::Failed) {
      if (v.action == A::Discard) v.text.clear();  // never a filter's words in our 250
      done(v, {});
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
        run(i + 1, std::move(step), std::move(mods), std::move(done));
        return;
      case DefaultAction::Tempfail:
        done(Verdict{A::Tempfail, {}, v.filter.empty() ? name : v.filter, v.text}, {});
        return;
      case DefaultAction::Reject:
        done(Verdict{A::Reject, {}, v.filter.empty() ? name : v.filter, v.text}, {});
        return;
    }
  });
}

void Chain::set_session(std::string_view id) {
  session_ = id;
  for (auto& e : entries_) e.filter->set_session(id);
}

void Chain::start(const char* phase, Step step, EomCallback done) {
  phase_ = phase;
  auto shared = std::make_shared<Step>(std::move(step));
  std::size_t first = 0;
  while (first < entries_.size() && entries_[first].dropped) ++first;
  if (first == entries_.size()) {
    // Nobody to ask: answer later, like every other path.
    loop_.post(guard_.wrap([done = std::move(done)] { done(Verdict{}, {}); }));
    return;
  }
  run(first, std::move(shared), {}, std::move(done));
}

namespace {
Chain::EomCallback plain(Chain::Callback done) {
  return [done = std::move(done)](const Verdict& v, std::vector<Modification>) { done(v); };
}
Filter::Callback wrap(Filter::EomCallback done) {
  return [done = std::move(done)](const Verdict& v) { done(v, {}); };
}
}  // namespace

void Chain::connect(const Macros& macros, std::string_view hostname, Family family,
                    std::uint16_t port, std::string_view address, Callback done) {
  start(
      "connect",
      [macros, hostname = std::string(hostname), family, port, address = std::string(address)](
          Filter& f, EomCallback d) {
        f.connect(macros, hostname, family, port, address, wrap(std::move(d)));
      },
      plain(std::move(done)));
}

void Chain::helo(const Macros& macros, std::string_view name, Callback done) {
  start(
      "helo",
      [macros, name = std::string(name)](Filter& f, EomCallback d) {
        f.helo(macros, name, wrap(std::move(d)));
      },
      plain(std::move(done)));
}

void Chain::mail(const Macros& macros, std::string_view address,
                 const std::vector<std::string>& args, Callback done) {
  start(
      "mail",
      [macros, address = std::string(address), args](Filter& f, EomCallback d) {
        f.mail(macros, address, args, wrap(std::move(d)));
      },
      plain(std::move(done)));
}

void Chain::rcpt(const Macros& macros, std::string_view address,
                 const std::vector<std::string>& args, Callback done) {
  start(
      "rcpt",
      [macros, address = std::string(address), args](Filter& f, EomCallback d) {
        f.rcpt(macros, address, args, wrap(std::move(d)));
      },
      plain(std::move(done)));
}

void Chain::data(const Macros& macros, Callback done) {
  start(
      "data", [macros](Filter& f, EomCallback d) { f.data(macros, wrap(std::move(d))); },
      plain(std::move(done)));
}

void Chain::header(std::string_view name, std::string_view value, Callback done) {
  start(
      "header",
      [name = std::string(name), value = std::string(value)](Filter& f, EomCallback d) {
        f.header(name, value, wrap(std::move(d)));
      },
      plain(std::move(done)));
}

void Chain::eoh(const Macros& macros, Callback done) {
  start(
      "eoh", [macros](Filter& f, EomCallback d) { f.eoh(macros, wrap(std::move(d))); },
      plain(std::move(done)));
}

void Chain::body(std::string_view bytes, Callback done) {
  // No copy: the caller keeps the bytes until `done` (a body is the size of the message).
  start(
      "body", [bytes](Filter& f, EomCallback d) { f.body(bytes, wrap(std::move(d))); },
      plain(std::move(done)));
}

void Chain::eom(const Macros& macros, EomCallback done) {
  start(
      "eom", [macros](Filter& f, EomCallback d) { f.eom(macros, std::move(d)); }, std::move(done));
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
