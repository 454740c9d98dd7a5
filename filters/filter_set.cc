// filter_set.cc: config -> filters (see filter_set.h). The one place outside filters/milter/ and
// filters/policy/ that knows those implementations by name: it makes milter::Client for
// `milter:` entries and policy::Client for `policy:` entries.
#include "filters/filter_set.h"

#include <estafette/filter.h>

#include <sys/stat.h>

#include <exception>
#include <set>
#include <utility>

#include "filters/milter/client.h"
#include "filters/module.h"
#include "filters/policy/client.h"

namespace estafette::filters {

namespace {
DefaultAction default_action_of(const config::Config& config) {
  DefaultAction action = DefaultAction::Tempfail;
  parse_default_action(config.milter_default_action, action);  // load_config checked the word
  return action;
}

ModificationLimits limits_of(const config::Config& config) {
  ModificationLimits limits;
  limits.max_header_value = config.max_header_size;
  limits.max_body = config.max_message_size;
  return limits;
}
// A module listed twice would be one library initialised twice (dlopen hands back the same
// copy), against the ABI's one estafette_filter_init per process: its globals would point at the
// second host table, freed while the first entry's sessions still use it. Same file = same
// device and inode, so a symlink to it counts too.
// An entry whose module is loaded into this process: `module:`, or `module-inline:` (the same,
// with the host's ESTAFETTE_HOST_ON_LOOP flag: the libmilter shim then runs its callbacks on
// the loop instead of its worker threads).
bool in_process(const std::string& kind) {
  return kind == "module" || kind == "module-inline";
}

std::string repeated_module(const config::Config& config) {
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const auto& spec : config.filters) {
    struct stat st {};
    if (!in_process(spec.kind) || ::stat(spec.target.c_str(), &st) != 0) continue;
    if (!seen.emplace(st.st_dev, st.st_ino).second)
      return spec.where + ": filters: module " + spec.target +
             " is listed twice (a module is loaded once per process)";
  }
  return "";
}

// A module's code first runs in a child: one that calls exit() (a libmilter main() missing its
// arguments), aborts or hangs while loading is reported instead of ending the caller.
std::string check_module(const config::FilterSpec& spec) {
  std::string error = Module::load_in_child(spec.target, spec.args, kModuleLoadTimeout);
  return error.empty() ? "" : spec.where + ": filters: " + error;
}
}  // namespace

std::string isolated_socket_dir(const config::Config& config) {
  return config.run_dir() + "/filterhost";
}

std::string isolated_socket_path(const config::Config& config, std::size_t entry) {
  return isolated_socket_dir(config) + "/" + std::to_string(entry) + ".sock";
}

FilterSet::FilterSet(event::Loop& loop, const config::Config& config)
    : loop_(loop), limits_(limits_of(config)) {
  const DefaultAction action = default_action_of(config);
  if (auto error = repeated_module(config); !error.empty()) throw config::ConfigError(error);
  // Every module is tried in a child before any is loaded here (no module threads yet at fork).
  for (const auto& spec : config.filters)
    if (in_process(spec.kind))
      if (auto error = check_module(spec); !error.empty()) throw config::ConfigError(error);
  for (std::size_t i = 0; i < config.filters.size(); ++i) {
    Opener open;
    if (auto error = load_entry(config, i, action, open); !error.empty())
      throw config::ConfigError(error);
    entries_.push_back(std::move(open));
  }
}

std::vector<std::string> FilterSet::check(const config::Config& config) {
  const DefaultAction action = default_action_of(config);
  std::vector<std::string> errors;
  if (auto error = repeated_module(config); !error.empty()) errors.push_back(std::move(error));
  for (std::size_t i = 0; i < config.filters.size(); ++i) {
    const auto& spec = config.filters[i];
    // A module is loaded in a child only: check-config runs none of its code itself.
    Opener open;
    auto error = in_process(spec.kind) || spec.kind == "module-isolated"
                     ? check_module(spec)
                     : load_entry(config, i, action, open);
    if (!error.empty()) errors.push_back(std::move(error));
  }
  return errors;
}

std::string FilterSet::load_entry(const config::Config& config, std::size_t index,
                                  DefaultAction default_action, Opener& out) {
  const config::FilterSpec& spec = config.filters[index];
  if (in_process(spec.kind)) {
    std::shared_ptr<Module> module;
    try {
      module = Module::load(spec.target, spec.args,
                            spec.kind == "module-inline" ? ESTAFETTE_HOST_ON_LOOP : 0);
    } catch (const std::exception& ex) {
      return spec.where + ": filters: " + ex.what();
    }
    // In-process modules: milter_command/content_timeout bound a PENDING phase.
    // filter_callback_warn_time: a callback holding the loop longer is logged.
    ModuleTimeouts timeouts{config.milter_command_timeout, config.milter_content_timeout,
                            config.filter_callback_warn_time};
    out = [module, default_action, timeouts](event::Loop& loop, metrics::Writer*) {
      return module->open(loop, default_action, timeouts);
    };
    return "";
  }
  if (spec.kind.rfind("policy", 0) == 0) {
    policy::Options options;
    options.stage = spec.kind == "policy-data"  ? policy::Stage::Data
                    : spec.kind == "policy-eom" ? policy::Stage::EndOfMessage
                                                : policy::Stage::Rcpt;
    std::string error;
    if (!milter::parse_spec(spec.target, options.spec, &error))
      return spec.where + ": filters: policy '" + spec.target + "': " + error;
    if (!policy::parse_action(config.policy_default_action, options.default_action, &error))
      return spec.where + ": filters: policy_default_action '" + config.policy_default_action +
             "': " + error;
    options.name = spec.kind + ":" + spec.target;
    options.timeout = config.policy_timeout;
    options.default_action_text = config.policy_default_action;
    out = [options](event::Loop& loop, metrics::Writer*) -> std::unique_ptr<Filter> {
      return std::make_unique<policy::Client>(loop, options);
    };
    return "";
  }
  milter::Options options;
  std::string error;
  if (spec.kind == "module-isolated") {
    // The module runs in its estafette-filterhost, spoken to as a milter: its crash or hang
    // costs that milter session (milter_default_action), not this process.
    const std::string socket = isolated_socket_path(config, index);
    if (!milter::parse_spec("unix:" + socket, options.spec, &error))
      return spec.where + ": filters: module-isolated " + spec.target + ": socket " + socket +
             ": " + error;
    options.name = "module-isolated:" + spec.target;
    options.send_session = true;
  } else if (!milter::parse_spec(spec.target, options.spec, &error)) {
    return spec.where + ": filters: milter '" + spec.target + "': " + error;
  } else {
    options.name = spec.target;
  }
  options.connect_timeout = config.milter_connect_timeout;
  options.command_timeout = config.milter_command_timeout;
  options.content_timeout = config.milter_content_timeout;
  options.default_action = default_action;
  options.max_modifications = limits_of(config).max_modifications;
  options.max_body = config.max_message_size;
  out = [options](event::Loop& loop, metrics::Writer* metrics) -> std::unique_ptr<Filter> {
    milter::Options timed = options;
    timed.metrics = metrics;
    return std::make_unique<milter::Client>(loop, std::move(timed));
  };
  return "";
}

std::unique_ptr<Chain> FilterSet::open_chain() const {
  std::vector<std::unique_ptr<Filter>> filters;
  for (const auto& open : entries_) filters.push_back(open(loop_, metrics_));
  return std::make_unique<Chain>(loop_, std::move(filters), limits_);
}

}  // namespace estafette::filters
