// filter_set.h: the filters a config names (`filters = milter:..., module:...`, in order, with
// milter_default_action and the milter_*_timeout settings), made once per process, and a fresh
// filters::Chain of them for each SMTP session. esmtpd builds one at start; `estafette
// check-config` (admin/check_config) runs check() without building anything.
// The constructor and check() run at start-up on any thread (they dlopen() each module; check()
// closes it again); open_chain() and the chains run on the loop given to the constructor, which
// must outlive the FilterSet and its chains. A FilterSet keeps its modules loaded; each chain's
// filters keep theirs too.
// DIAGNOSTICS: the constructor throws config::ConfigError with the first bad entry,
// "file:line: filters: reason" (a milter spec that does not parse, a module that does not load);
// check() returns every such error instead. Each module is first loaded in a child process
// (Module::load_in_child): its exit(), crash or hang at load is an error, not the caller's end;
// check() loads modules only there. A `module-isolated:` entry is never loaded here: it becomes
// a milter::Client to its estafette-filterhost's socket (isolated_socket_path), and check()
// loads it in a child as it does a `module:` one.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "filters/chain.h"
#include "filters/filter.h"
#include "filters/types.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"
#include "lib/metrics/shm_file.h"

namespace estafette::filters {

// How long a module may take to load in the child that checks it (Module::load_in_child).
inline constexpr std::chrono::milliseconds kModuleLoadTimeout{10000};

// Where the estafette-filterhost of `filters` entry number `entry` (0-based, a module-isolated
// entry) listens: <run_dir>/filterhost/<entry>.sock. The directory is the unprivileged user's,
// mode 0700 (the filterhost makes it). esmtpd connects there; estafetted starts the filterhost.
std::string isolated_socket_path(const config::Config& config, std::size_t entry);
// The filterhost's directory, <run_dir>/filterhost.
std::string isolated_socket_dir(const config::Config& config);

class FilterSet final {
 public:
  // Checks every entry of config.filters; throws config::ConfigError naming its line.
  FilterSet(event::Loop& loop, const config::Config& config);
  FilterSet(const FilterSet&) = delete;
  FilterSet& operator=(const FilterSet&) = delete;

  // What the constructor checks (each milter spec parses, each module loads), for
  // `estafette check-config`: every error, "file:line: filters: reason", none when all is well.
  static std::vector<std::string> check(const config::Config& config);
  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  // A fresh chain for one SMTP session (each milter gets its own connection, each module its
  // own session), in config order.
  std::unique_ptr<Chain> open_chain() const;
  // The milters of later chains time their commands there (null: not timed); it outlives this.
  void set_metrics(metrics::Writer* metrics) { metrics_ = metrics; }

 private:
  // Makes one session's filter of one entry (a milter::Client, or a module's NativeFilter).
  using Opener = std::function<std::unique_ptr<Filter>(event::Loop&, metrics::Writer*)>;
  // Builds entry number `index` of config.filters; returns "" or the error naming its line.
  static std::string load_entry(const config::Config& config, std::size_t index,
                                DefaultAction default_action, Opener& out);

  event::Loop& loop_;
  std::vector<Opener> entries_;
  ModificationLimits limits_;  // from max_header_size and max_message_size
  metrics::Writer* metrics_ = nullptr;
};

}  // namespace estafette::filters
