#include "esmtpd/filtering.h"

namespace estafette::esmtpd {

FilterSet::FilterSet(event::Loop& loop, const config::Config& config) : loop_(loop) {
  milter::parse_default_action(config.milter_default_action, default_action_);
  timeouts_ = {config.milter_command_timeout, config.milter_content_timeout};
  for (const auto& spec : config.filters) {
    Entry e;
    if (auto error = load_entry(config, spec, default_action_, e); !error.empty())
      throw config::ConfigError(error);
    entries_.push_back(std::move(e));
  }
}

std::vector<std::string> FilterSet::check(const config::Config& config) {
  milter::DefaultAction action = milter::DefaultAction::Tempfail;
  milter::parse_default_action(config.milter_default_action, action);
  std::vector<std::string> errors;
  for (const auto& spec : config.filters) {
    Entry e;  // a loaded module is unloaded again at once
    if (auto error = load_entry(config, spec, action, e); !error.empty())
      errors.push_back(std::move(error));
  }
  return errors;
}

std::string FilterSet::load_entry(const config::Config& config, const config::FilterSpec& spec,
                                  milter::DefaultAction default_action, Entry& e) {
  if (spec.kind == "module") {
    try {
      e.module = filters::Module::load(spec.target, {spec.target});
    } catch (const std::exception& ex) {
      return spec.where + ": filters: " + ex.what();
    }
    return "";
  }
  std::string error;
  if (!milter::parse_spec(spec.target, e.milter.spec, &error))
    return spec.where + ": filters: milter '" + spec.target + "': " + error;
  e.milter.name = spec.target;
  e.milter.connect_timeout = config.milter_connect_timeout;
  e.milter.command_timeout = config.milter_command_timeout;
  e.milter.content_timeout = config.milter_content_timeout;
  e.milter.default_action = default_action;
  return "";
}

std::unique_ptr<milter::Chain> FilterSet::open_chain() const {
  std::vector<std::unique_ptr<filters::Filter>> chain;
  for (const auto& e : entries_) {
    if (e.module)
      chain.push_back(e.module->open(loop_, default_action_, timeouts_));
    else
      chain.push_back(std::make_unique<milter::Client>(loop_, e.milter));
  }
  return std::make_unique<milter::Chain>(loop_, std::move(chain));
}

smtp::FilterVerdict to_session(const milter::Verdict& verdict) {
  using A = milter::Verdict::Action;
  using K = smtp::FilterVerdict::Kind;
  switch (verdict.action) {
    case A::Continue:
      return {K::Continue, {}};
    case A::Accept:
      return {K::Accept, {}};
    case A::Reject:
      return {K::Reject, {}};
    case A::Discard:
      return {K::Discard, {}};
    case A::ReplyCode:
      return {K::Reply, verdict.text};
    case A::Tempfail:
    case A::Failed:  // the chain applied the default action already; this is the safe answer
      return {K::Tempfail, {}};
  }
  return {K::Tempfail, {}};
}

std::string milter_header_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i)
    if (!(value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n')) out += value[i];
  return out;
}

namespace {

// One message's way through the chain; keeps itself alive through its callbacks.
struct MessagePass : std::enable_shared_from_this<MessagePass> {
  milter::Chain& chain;
  std::shared_ptr<const filters::ParsedMessage> message;
  milter::Macros macros;
  milter::Chain::EomCallback done;
  std::size_t next = 0;

  MessagePass(milter::Chain& c, std::shared_ptr<const filters::ParsedMessage> m, milter::Macros mac,
              milter::Chain::EomCallback d)
      : chain(c), message(std::move(m)), macros(std::move(mac)), done(std::move(d)) {}

  // Runs `then` when the verdict lets the message go on, else ends with that verdict.
  milter::Chain::Callback step(std::function<void()> then) {
    return [self = shared_from_this(), then = std::move(then)](const milter::Verdict& v) {
      using A = milter::Verdict::Action;
      if (v.action == A::Continue || v.action == A::Accept)
        then();
      else
        self->done(v, {});
    };
  }

  void headers() {
    if (next == message->headers.size()) {
      chain.eoh(macros, step([self = shared_from_this()] { self->body(); }));
      return;
    }
    const auto& h = message->headers[next++];
    chain.header(h.name, milter_header_value(h.value),
                 step([self = shared_from_this()] { self->headers(); }));
  }

  void body() {
    auto eom = [self = shared_from_this()] {
      self->chain.eom(self->macros,
                      [self](const milter::Verdict& v, std::vector<milter::Modification> mods) {
                        self->done(v, std::move(mods));
                      });
    };
    if (message->body.empty()) {
      eom();
      return;
    }
    chain.body(message->body, step(std::move(eom)));
  }
};

}  // namespace

void filter_message(milter::Chain& chain, std::shared_ptr<const filters::ParsedMessage> message,
                    milter::Macros macros, milter::Chain::EomCallback done) {
  auto pass =
      std::make_shared<MessagePass>(chain, std::move(message), std::move(macros), std::move(done));
  pass->headers();
}

}  // namespace estafette::esmtpd
