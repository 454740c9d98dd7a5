// chain.h: several filters for one SMTP session, in order: any filters::Filter (milters,
// in-process modules), run as one. esmtpd owns one Chain per filtered session.
// Loop thread only. The Chain owns its filters. The caller makes one call at a time and waits
// for its callback; the callback runs later on the loop, never inside the call (unless inline
// answers are turned on: set_inline_answers). Destroying the Chain (and so its filters)
// cancels: no callback afterwards. A callback may destroy the Chain.
// Each call goes to each filter in turn and stops at the first verdict other than Continue or
// Accept (Accept only ends that filter's part, as in Postfix). A filter that answers Failed is
// handled by its default_action(): Accept drops it for the rest of the session, Tempfail/Reject
// answer Tempfail/Reject (text empty, so the session uses its own 451/550 reply; `filter` says
// which one). So a Chain never answers Failed. Every filter sees the original message; eom()
// returns the modifications of all filters, concatenated in filter order, for the caller to apply.
// Nothing a filter answers is trusted (filters/validate.h): a ReplyCode whose text fails
// check_reply(), or modifications that fail check_modifications() (each, and their number
// together with the earlier filters'), are that filter's failure, handled as above. Every failure
// is logged (logger "filters", warning) with the session, the phase, the filter's name and the
// reason; a Reject/Tempfail that a failure's default action gave carries the reason (`reason`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/filter.h"
#include "filters/types.h"
#include "filters/validate.h"
#include "lib/event/loop.h"

namespace estafette::filters {

class Chain final {
 public:
  using Callback = Filter::Callback;
  using EomCallback = Filter::EomCallback;

  Chain(event::Loop& loop, std::vector<std::unique_ptr<Filter>> filters,
        ModificationLimits limits = {});
  Chain(const Chain&) = delete;
  Chain& operator=(const Chain&) = delete;

  // The macros (and strings) are kept for the call, so a caller can move them in.
  void connect(Macros macros, std::string_view hostname, Family family, std::uint16_t port,
               std::string_view address, Callback done);
  void helo(Macros macros, std::string_view name, Callback done);
  void mail(Macros macros, std::string_view address, std::vector<std::string> args, Callback done);
  void rcpt(Macros macros, std::string_view address, std::vector<std::string> args, Callback done);
  void data(Macros macros, Callback done);
  // Every header field to each filter in turn (Filter::headers); fields stay valid until done.
  void headers(const HeaderFields& fields, Callback done);
  void eoh(Macros macros, Callback done);
  void body(std::string_view bytes, Callback done);  // bytes stay valid until done runs
  void eom(Macros macros, EomCallback done);
  // Whether any filter not dropped receives `phase` (Filter::receives): when none does, the
  // caller may skip the call and give its macros to skipped() instead, answering Continue itself.
  bool receives(Phase phase) const;
  void skipped(Phase phase, const Macros& macros);
  // Filter::message_envelope to every filter (no answer, no callback).
  void message_envelope(const std::vector<std::string>& recipients, std::uint64_t size);
  // The phase of the last call started ("header", "eom", ...): where a message's verdict came
  // from, for the caller's log line.
  const char* phase() const { return phase_; }
  void abort();  // every filter not dropped
  void quit();   // every filter

  std::size_t size() const { return entries_.size(); }
  // The SMTP session's id, for log lines (the Chain's and its filters').
  void set_session(std::string_view id);
  // Filter::set_inline_answers for every filter: when each filter asked answers at once, the
  // call's callback runs inside the call, before it returns. Off by default.
  void set_inline_answers(bool on);

 private:
  struct Entry {
    std::unique_ptr<Filter> filter;
    bool dropped = false;  // failed with default_action = accept
  };
  // The call in progress (one at a time): what each filter in turn is asked, kept here rather
  // than in a closure per filter, so that a phase costs no allocation of its own.
  struct Call {
    Phase phase = Phase::Connect;
    Macros macros;
    std::string text;   // hostname, HELO name or address
    std::string value;  // connect's address
    std::vector<std::string> args;
    std::string_view body;
    const HeaderFields* fields = nullptr;  // headers(): the caller's
    Family family = Family::Unknown;
    std::uint16_t port = 0;
  };
  void start(const char* phase, Callback done, EomCallback eom_done);
  void address_call(Phase phase, const char* name, Macros macros, std::string_view address,
                    std::vector<std::string> args, Callback done);  // mail, rcpt
  void ask(std::size_t i);  // filter i (or the next one not dropped), or the end
  void answered(std::size_t i, const Verdict& answer, std::vector<Modification> more);
  void finish(const Verdict& v, std::vector<Modification> mods);

  event::Loop& loop_;
  std::vector<Entry> entries_;
  ModificationLimits limits_;
  std::string session_ = "-";
  const char* phase_ = "";  // of the call in progress, for logs
  Call call_;
  std::vector<Modification> mods_;  // of the filters asked so far (eom)
  Callback done_;
  EomCallback eom_done_;
  event::CallbackGuard guard_;  // last: dies first, before the filters
};

}  // namespace estafette::filters
