// crash_log.h: one line in the log when the process dies of SIGSEGV, SIGBUS, SIGFPE, SIGILL or
// SIGABRT, saying what the thread that crashed was doing (esmtpd: which filter module, phase and
// session), then the signal's default action (the process dies of it, its supervisor sees that).
// install() is called once by main(), on the thread that will run the loop, after logging is set
// up and while the process may still open the log file (before privileges go). Context and the
// code ranges may be used on any thread; the handler itself only makes async-signal-safe calls
// (clock_gettime, write, raise, process_vm_readv): no malloc, no POCO, no locks. A fault outside
// every module's code (in libc, say) whose thread's stack holds a return address into a module's
// code is reported "probably called from the code of <module>".
// Process-wide state: the handler, the log fd, the code ranges, and a per-thread context. A signal
// handler has no other way to reach what it reports; nothing else reads them.
// DIAGNOSTICS: install() throws std::runtime_error when the log file cannot be opened or the
// handler cannot be installed. The line goes to the log file (or stderr), not to syslog.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace estafette::base::crash {

// The pieces of one crash line; plain data (format_line() allocates nothing).
struct LineParts {
  std::int64_t epoch_seconds = 0;  // CLOCK_REALTIME
  int millis = 0;
  long utc_offset = 0;  // seconds east of UTC: the time is printed in local time, as POCO does
  long pid = 0;
  std::string_view program;  // "esmtpd"
  int signo = 0;
  std::optional<std::uintptr_t> fault_address;  // si_addr of a fault (not abort(), not kill)
  std::string_view where;  // "in filter session=... module=... phase=rcpt", "on the loop ..."
};

// "2026-12-07T08:01:02.345 [123] esmtpd: crash: SIGSEGV (address 0x0) in filter session=123.4
// module=m phase=rcpt; the process ends, every session of it is cut\n", cut to size (the line
// end kept). Returns the length written. Async-signal-safe; a pure function.
std::size_t format_line(const LineParts& parts, char* out, std::size_t size);

// "SIGSEGV", ... for the five signals handled; "signal" otherwise. Async-signal-safe.
const char* signal_name(int signo);

// Installs the handler for the five signals (SA_RESETHAND, SA_ONSTACK with an alternate stack for
// the calling thread, so that a stack overflow of the loop is reported too). log_file: the
// configured log file (opened here, O_APPEND); empty: stderr. The calling thread is "the loop
// thread" in the lines.
void install(std::string_view program, const std::string& log_file);

// While one lives, a crash of this thread is reported "in <text>" (the parts joined, cut at 255
// bytes). Nests: the destructor puts back what was there before. Cheap: a copy into a fixed
// per-thread buffer, no allocation.
class Context final {
 public:
  explicit Context(std::initializer_list<std::string_view> parts);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  static constexpr std::size_t kMaxText = 255;

 private:
  bool had_previous_ = false;
  char previous_[kMaxText + 1];
};

// The calling thread's Context text ("" without one): what a crash now would report.
std::string_view current_context();

// Records the executable code of the shared object that holds `address` (a symbol of it, found
// with dl_iterate_phdr), under name: a crash whose instruction is there names it. Returns a slot
// for remove_code_range(), or -1 (no object holds it, or every slot is taken).
int add_code_range(const void* address, std::string_view name);
void remove_code_range(int slot);
// The name recorded for a code address, or nullptr. Async-signal-safe.
const char* code_owner(std::uintptr_t address);

}  // namespace estafette::base::crash
