// filter.h: what esmtpd's filter pipeline drives, one object per SMTP session and filter. Two
// implementations: an external milter (milter::Client, filters/milter/client.h) and an
// in-process module (NativeFilter over the native C ABI, which the libmilter-compatible shim
// uses too; filters/module.h). Every kind speaks milter semantics -- the same phases, verdicts
// and modifications -- in the types of filters/types.h; filters::Chain (filters/chain.h) runs any
// of them in order. Implementations include filters/ headers, never the other way round.
// Loop thread only. Contract, for every implementation: one call at a time, the caller waits for
// its callback before the next; every callback runs later on the loop, never inside the call;
// destroying the object cancels (no callback afterwards); a failure answers Verdict::Failed with
// a reason, and the caller applies default_action().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "filters/types.h"

namespace estafette::filters {

// How long a module may take to answer a phase it answered PENDING (milter_command_timeout up to
// DATA, milter_content_timeout for each header, eoh, body and eom call). When it runs out, the
// call answers Failed, the module's session is closed and every later call answers Failed.
// callback_warn (filter_callback_warn_time): a module callback that holds the loop longer is
// logged (filters/callback_scope.h); 0: never.
struct ModuleTimeouts {
  std::chrono::milliseconds command{30000};
  std::chrono::milliseconds content{300000};
  std::chrono::milliseconds callback_warn{100};
};

// The phases a filter is called at, in a session's order.
enum class Phase { Connect, Helo, Mail, Rcpt, Data, Header, Eoh, Body, Eom };

class Filter {
 public:
  using Callback = std::function<void(const Verdict&)>;
  using EomCallback = std::function<void(const Verdict&, std::vector<Modification>)>;

  virtual ~Filter() = default;

  virtual void connect(const Macros& macros, std::string_view hostname, Family family,
                       std::uint16_t port, std::string_view address, Callback done) = 0;
  virtual void helo(const Macros& macros, std::string_view name, Callback done) = 0;
  virtual void mail(const Macros& macros, std::string_view address,
                    const std::vector<std::string>& args, Callback done) = 0;
  virtual void rcpt(const Macros& macros, std::string_view address,
                    const std::vector<std::string>& args, Callback done) = 0;
  virtual void data(const Macros& macros, Callback done) = 0;
  virtual void header(std::string_view name, std::string_view value, Callback done) = 0;
  // Every header field, in order, as one phase: the answer is the first that is not Continue,
  // or Continue. `fields` stay valid until `done` runs. The default calls header() for one
  // field after the other; a native module's filter runs its callback for each in one turn of
  // the loop. Never called with no fields.
  virtual void headers(const HeaderFields& fields, Callback done);
  virtual void eoh(const Macros& macros, Callback done) = 0;
  // CRLF, not dot-stuffed. The caller keeps `bytes` valid until `done` runs (or the filter is
  // destroyed), so that a message's body is never copied whole.
  virtual void body(std::string_view bytes, Callback done) = 0;
  virtual void eom(const Macros& macros, EomCallback done) = 0;
  // Before a message's first header call: its accepted recipients ("<a@b>", in RCPT order, as
  // the envelope holds them at the end of DATA, before any filter's changes) and its size as
  // the filters see it (as {msg_size}). For filters that offer them at eom (native modules,
  // ABI 1.1); the others ignore it. Valid until abort() or the next mail().
  virtual void message_envelope(const std::vector<std::string>& /*recipients*/,
                                std::uint64_t /*size*/) {}
  // Whether a call at `phase` could do anything: false when the filter has no callback there
  // (a native module without one), so the caller may skip the call, its hold and its round
  // trip, and answer Continue itself. It then gives the phase's macros to skipped() (getsymval
  // sees them later, as if the call had been made). Default: true, every call is made.
  virtual bool receives(Phase /*phase*/) const { return true; }
  // In place of a call that receives() said would do nothing: no answer, no callback.
  virtual void skipped(Phase /*phase*/, const Macros& /*macros*/) {}
  virtual void abort() = 0;  // the message ends (RSET, rejected); no pending call
  virtual void quit() = 0;   // the session ends; no callback

  virtual const std::string& name() const = 0;       // for logs and failure reasons
  virtual DefaultAction default_action() const = 0;  // when it fails
  // The SMTP session's id (esmtpd's session=), for the filter's own log lines.
  virtual void set_session(std::string_view /*id*/) {}
  // On: a filter that has its answer at once (a native module's callback that did not return
  // PENDING) may call `done` inside the call, before it returns, instead of on a later turn of
  // the loop. Off by default: only a caller that copes with that turns it on (esmtpd's Chain,
  // after the connect stage).
  virtual void set_inline_answers(bool /*on*/) {}
};

}  // namespace estafette::filters
