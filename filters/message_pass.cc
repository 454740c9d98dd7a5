// message_pass.cc: a whole message through a chain (see message_pass.h).
#include "filters/message_pass.h"

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

namespace estafette::filters {

std::string filter_header_value(const std::string& value) {
  // Runs between CRLFs are copied whole (most values have none); each CR of a CRLF is dropped.
  std::string out;
  out.reserve(value.size());
  std::size_t from = 0;
  for (std::size_t cr = value.find("\r\n"); cr != std::string::npos;
       cr = value.find("\r\n", cr + 2)) {
    out.append(value, from, cr - from);
    from = cr + 1;  // the LF stays
  }
  out.append(value, from, std::string::npos);
  return out;
}

namespace {

// One message's way through the chain; keeps itself alive through its callbacks.
struct MessagePass : std::enable_shared_from_this<MessagePass> {
  Chain& chain;
  std::shared_ptr<const ParsedMessage> message;
  Macros macros;
  Chain::EomCallback done;
  HeaderFields fields;  // as the filters get them; alive until the pass ends

  MessagePass(Chain& c, std::shared_ptr<const ParsedMessage> m, Macros mac, Chain::EomCallback d)
      : chain(c), message(std::move(m)), macros(std::move(mac)), done(std::move(d)) {}

  // Runs `then` when the verdict lets the message go on, else ends with that verdict.
  Chain::Callback step(std::function<void()> then) {
    return [self = shared_from_this(), then = std::move(then)](const Verdict& v) {
      using A = Verdict::Action;
      if (v.action == A::Continue || v.action == A::Accept)
        then();
      else
        self->done(v, {});
    };
  }

  // A phase no filter receives (Chain::receives) is skipped: no call, no turn of the loop.
  void headers() {
    if (message->headers.empty() || !chain.receives(Phase::Header)) {
      eoh();
      return;
    }
    // All fields as one call (Chain::headers): a native module runs through them in one turn.
    fields.reserve(message->headers.size());
    for (const auto& h : message->headers)
      fields.emplace_back(h.name, filter_header_value(h.value));
    chain.headers(fields, step([self = shared_from_this()] { self->eoh(); }));
  }

  void eoh() {
    if (!chain.receives(Phase::Eoh)) {
      chain.skipped(Phase::Eoh, macros);
      body();
      return;
    }
    chain.eoh(macros, step([self = shared_from_this()] { self->body(); }));
  }

  void body() {
    auto eom = [self = shared_from_this()] {
      // The last phase: its macros move into the chain.
      self->chain.eom(std::move(self->macros),
                      [self](const Verdict& v, std::vector<Modification> mods) {
                        self->done(v, std::move(mods));
                      });
    };
    if (message->body.empty() || !chain.receives(Phase::Body)) {
      eom();
      return;
    }
    chain.body(message->body, step(std::move(eom)));
  }
};

}  // namespace

void filter_message(Chain& chain, std::shared_ptr<const ParsedMessage> message, Macros macros,
                    Chain::EomCallback done) {
  auto pass =
      std::make_shared<MessagePass>(chain, std::move(message), std::move(macros), std::move(done));
  pass->headers();
}

}  // namespace estafette::filters
