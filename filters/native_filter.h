// native_filter.h: a filters::Filter over a module loaded through the native C ABI
// (include/estafette/filter.h): one NativeFilter per SMTP session and module, made by
// filters::Module::open().
// Loop thread only. Calls the module's callbacks on the loop; a callback answering
// ESTAFETTE_PENDING is finished later by host->resume(). Every Filter callback is posted to run
// later on the loop (Loop::post; none runs once the NativeFilter is gone). Destroying the
// NativeFilter (or quit()) calls the module's close() and
// removes the fds and timers the module registered for the session; no callback runs afterwards.
// The NativeFilter keeps its module loaded (the shared_ptr given to the constructor).
// Every call into the module runs inside a CallbackScope (callback_scope.h): a call that holds
// the loop longer than timeouts.callback_warn is logged, a crash in it names module, phase and
// session.
// DIAGNOSTICS: a status outside the ABI's, a call while another is pending or after the session
// was closed answer Verdict::Failed ("module <name>: ..."); the caller applies default_action().
#pragma once

#include <estafette/filter.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "filters/callback_scope.h"
#include "filters/filter.h"
#include "filters/macro_store.h"
#include "filters/types.h"
#include "lib/event/loop.h"

// The per-session handle the module sees; defined in native_filter.cc.
struct estafette_ctx;

namespace estafette::filters {

// The host side of the ABI for one module: the function table (with the module's argv).
// Owned by the Module; must outlive every NativeFilter of that module.
struct HostTable {
  // flags: estafette_host.flags (ESTAFETTE_HOST_ON_LOOP for a `module-inline:` entry).
  HostTable(const std::string& path, const std::vector<std::string>& args, std::uint32_t flags = 0);
  HostTable(const HostTable&) = delete;
  HostTable& operator=(const HostTable&) = delete;
  estafette_host host{};
  std::vector<std::string> args;
  std::vector<char*> argv;
};

class NativeFilter final : public Filter {
 public:
  // keep_alive: keeps the module's code loaded as long as this session exists.
  NativeFilter(event::Loop& loop, std::shared_ptr<const void> keep_alive,
               const estafette_filter& table, std::string name, DefaultAction default_action,
               ModuleTimeouts timeouts = {});
  ~NativeFilter() override;
  NativeFilter(const NativeFilter&) = delete;
  NativeFilter& operator=(const NativeFilter&) = delete;

  void connect(const Macros& macros, std::string_view hostname, Family family, std::uint16_t port,
               std::string_view address, Callback done) override;
  void helo(const Macros& macros, std::string_view name, Callback done) override;
  void mail(const Macros& macros, std::string_view address, const std::vector<std::string>& args,
            Callback done) override;
  void rcpt(const Macros& macros, std::string_view address, const std::vector<std::string>& args,
            Callback done) override;
  void data(const Macros& macros, Callback done) override;
  void header(std::string_view name, std::string_view value, Callback done) override;
  // The module's header callback for each field in one turn while it answers CONTINUE; any
  // other answer (or PENDING, then resume()) is handled as for header().
  void headers(const HeaderFields& fields, Callback done) override;
  void eoh(const Macros& macros, Callback done) override;
  void body(std::string_view bytes, Callback done) override;
  void eom(const Macros& macros, EomCallback done) override;
  // What host->foreach_rcpt and host->message_size answer at eom (ABI 1.1).
  void message_envelope(const std::vector<std::string>& recipients, std::uint64_t size) override;
  bool receives(Phase phase) const override;
  void skipped(Phase phase, const Macros& macros) override;
  void abort() override;
  void quit() override;

  const std::string& name() const override { return name_; }
  DefaultAction default_action() const override { return default_action_; }
  void set_session(std::string_view id) override { session_ = id; }
  void set_inline_answers(bool on) override { inline_answers_ = on; }

 private:
  friend struct HostFunctions;
  enum class Stage { None, Connect, Helo, Mail, Rcpt, Data, Header, Eoh, Body, Eom };

  // Runs one phase: merges macros, calls invoke() (the module's callback, or nullptr when the
  // module has none), and answers done/eom_done later on the loop.
  // What every phase does before the module's callback: a message's state at MAIL, the macros.
  void enter(Stage stage, const Macros* macros);
  template <typename Invoke>
  void run(Stage stage, const Macros* macros, bool has_callback, Invoke invoke, Callback done,
           EomCallback eom_done);
  // The pending phase's answer: from the callback's return (at_once) or from resume().
  void complete(int status, bool at_once = false);
  void headers_from(const HeaderFields& fields, std::size_t i, Callback done);
  // Gives the caller `verdict` on a later turn of the loop (eom_done with mods, or done).
  void answer_later(Verdict verdict, Callback done, EomCallback eom_done,
                    std::vector<Modification> mods = {});
  // Inside this call when the answer came at once (at_once) and inline answers are on (nothing
  // of this NativeFilter is touched after: the callback may destroy it), else answer_later().
  void answer(bool at_once, Verdict verdict, Callback done, EomCallback eom_done,
              std::vector<Modification> mods = {});
  Verdict make(Verdict::Action action, std::string text = {}) const;
  void close_session();
  static const char* stage_name(Stage stage);
  // Around every call into the module: crash context and loop-hold warning.
  CallbackScope scope(const char* phase) const;

  event::Loop& loop_;
  std::shared_ptr<const void> keep_alive_;
  const estafette_filter& table_;
  std::string name_;
  std::string session_ = "-";  // esmtpd's session id, in the module's log lines
  DefaultAction default_action_;
  std::unique_ptr<estafette_ctx> ctx_;

  MacroStore macros_;  // every phase's, merged; and the current phase's
  void* priv_ = nullptr;
  std::string reply_;  // the composed reply from setreply() for this phase
  std::vector<Modification> mods_;
  // The message's accepted recipients and size (message_envelope), until abort() or mail().
  std::optional<std::pair<std::vector<std::string>, std::uint64_t>> envelope_;

  Stage pending_ = Stage::None;
  bool in_call_ = false;  // inside the module's callback (resume() is refused there)
  bool inline_answers_ = false;
  Callback done_;
  EomCallback eom_done_;

  bool closed_ = false;
  bool session_done_ = false;  // a connect verdict ended filtering for the session
  bool in_message_ = false;
  bool message_done_ = false;  // a message verdict ended filtering for this message

  std::map<int, std::pair<estafette_fd_cb, void*>> fds_;
  estafette_timer_id next_timer_ = 1;
  std::map<estafette_timer_id, event::TimerId> timers_;
  ModuleTimeouts timeouts_;
  event::TimerId watchdog_ = 0;  // armed while a PENDING phase waits for resume()
  void on_watchdog();
  // The answer queued on the loop (answer_later), one at a time: the caller waits for each answer
  // before its next call. A posted callback holds the slot, so it outlives this NativeFilter; the
  // destructor cuts it off (filter = nullptr).
  struct Answer {
    NativeFilter* filter = nullptr;
    bool queued = false;
    Verdict verdict;
    std::vector<Modification> mods;
    Callback done;
    EomCallback eom_done;
  };
  std::shared_ptr<Answer> answer_;
};

}  // namespace estafette::filters
