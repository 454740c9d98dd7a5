// module.h: one in-process filter module (a shared object speaking the native C ABI of
// include/estafette/filter.h, or a libmilter filter linked with filters/libmilter_shim), loaded
// once per process and shared by every SMTP session of it.
// Module::load() runs at start-up, on the thread that builds the filter pipeline; open() and the
// Filters it makes run on the process's loop. Each Filter keeps its Module loaded; the module is
// unloaded (its fini() called, then dlclose) when the last Filter and the last shared_ptr from
// load() are gone.
// load_in_child() loads the module in a forked child first, so that a module whose init (or a
// libmilter main()) calls exit(), aborts or hangs is reported and cannot end the caller.
// DIAGNOSTICS: load() throws std::runtime_error naming the path and the reason (cannot dlopen,
// no estafette_filter_init, init refused, ABI version or struct_size mismatch, no name);
// load_in_child() returns those reasons, or how the child ended ("exited with status 64 while
// loading", with what it wrote to stderr), or "" when the module loaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "filters/filter.h"
#include "filters/types.h"
#include "lib/event/loop.h"

namespace Poco {
class SharedLibrary;
}

struct estafette_filter;

namespace estafette::filters {

struct HostTable;

class Module final : public std::enable_shared_from_this<Module> {
 public:
  // dlopen()s path (RTLD_LOCAL), calls estafette_filter_init with a host table carrying
  // argv = {path, args...} and host_flags (ESTAFETTE_HOST_ON_LOOP), and checks the table it
  // returns.
  static std::shared_ptr<Module> load(const std::string& path, const std::vector<std::string>& args,
                                      std::uint32_t host_flags = 0);
  // Loads the module as load() does, in a child process that then ends (_exit) without
  // unloading it; waits at most `timeout` (the child is killed then). "" when the module
  // loaded; else "module PATH: reason". The caller's process runs none of the module's code.
  // Call it while the process has no other threads busy (fork).
  static std::string load_in_child(const std::string& path, const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout);
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // A Filter for one SMTP session (the contract of filters/filter.h).
  std::unique_ptr<Filter> open(event::Loop& loop, DefaultAction default_action,
                               ModuleTimeouts timeouts = {});
  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  // The module's callback table (which phases it has callbacks for: estafette-filterhost asks
  // esmtpd for no reply to the others).
  const estafette_filter& table() const { return *table_; }

 private:
  struct Private {};

 public:
  Module(Private, std::string path);  // use load()

 private:
  std::string path_;
  std::string name_;
  std::unique_ptr<Poco::SharedLibrary> library_;
  std::unique_ptr<HostTable> host_;
  const estafette_filter* table_ = nullptr;
  int code_range_ = -1;  // base::crash::add_code_range's slot
};

}  // namespace estafette::filters
