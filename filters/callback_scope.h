// callback_scope.h: what esmtpd does around each call into a filter module's code on its loop
// (NativeFilter: the phase callbacks, abort, close, and the fd and timer callbacks a module
// registered). A CallbackScope, made just before the call and destroyed just after it:
//  - records "filter session=S module=M phase=P" for the crash line (lib/base/crash_log.h), so a
//    SIGSEGV or abort() inside the module is logged with them;
//  - times the call (steady_clock); one that held the loop longer than warn_after
//    (filter_callback_warn_time; 0: never) logs a warning, hold_warning()'s line, as "filters".
// Loop thread (the thread that calls the module). Cost: two clock reads and a copy of about
// 60 bytes per call.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "lib/base/crash_log.h"

namespace estafette::filters {

// "filter session=S module=M phase=P held the event loop 2.003s (filter_callback_warn_time
// 100ms)". A pure function.
std::string hold_warning(std::string_view session, std::string_view module, std::string_view phase,
                         std::chrono::nanoseconds held, std::chrono::milliseconds warn_after);

class CallbackScope final {
 public:
  // The three strings must outlive the scope (a NativeFilter's members, a literal).
  CallbackScope(std::string_view session, std::string_view module, std::string_view phase,
                std::chrono::milliseconds warn_after);
  ~CallbackScope();
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  base::crash::Context crash_;
  std::string_view session_, module_, phase_;
  std::chrono::milliseconds warn_after_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace estafette::filters
