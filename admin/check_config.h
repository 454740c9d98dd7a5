// check_config.h: `estafette check-config`: everything a start would check in a config, without
// starting anything. config::load_config reads the file and every file it names (esmtproutes,
// dnsbl, smtpaccess) and stops at the first error; then what esmtpd checks only when it starts
// (filters/start_checks.h: DNS list answer filters, milter specs, modules that load) is checked
// entry by entry, so every such error is reported. Any thread; loads and unloads filter modules.
#pragma once

#include <string>
#include <vector>

namespace estafette::admin {

struct CheckResult {
  std::string source;               // the file the settings came from (or the embedded default)
  std::vector<std::string> errors;  // "file:line: reason", in order; empty: the config is good
};

CheckResult check_config(const std::string& path);

}  // namespace estafette::admin
