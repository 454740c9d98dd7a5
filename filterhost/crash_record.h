// crash_record.h: what estafette-filterhost leaves behind when the module it runs kills it: a
// fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) or the loop's watchdog (SIGALRM: a
// callback that blocked the loop longer than allowed) writes one line, "signal 11 (SIGSEGV) in
// module x, phase mail, session 1a2b", to a file next to the socket, then dies of the same
// signal (estafetted logs the exit and restarts it). The next filterhost of that entry logs the
// line (take_previous()) and removes the file.
// The handler's state is process-wide on purpose (a signal handler has nothing else): one record
// per process, set up once by install() on the main thread; set_context() before each call into
// the module, clear_context() after. The handler only calls async-signal-safe functions.
// DIAGNOSTICS: none; a record that cannot be written is lost (the exit is still logged).
#pragma once

#include <string>
#include <string_view>

namespace estafette::filterhost {

// Installs the handlers; `path` is where a crash writes its line (kept, at most 255 bytes).
void install_crash_record(const std::string& path);
// What the process is doing in the module now ("module x, phase mail, session 1a2b"), cut to
// 255 bytes; clear_context(): outside any call into the module.
void set_context(std::string_view text);
void clear_context();
// The line a previous process left at `path` ("" when none), after which the file is removed.
std::string take_previous(const std::string& path);

}  // namespace estafette::filterhost
