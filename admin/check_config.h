// check_config.h: `estafette check-config`: everything a start would check in a config, without
// starting anything. config::load_config reads the file and every file it names (esmtproutes,
// dnsbl, smtpaccess) and stops at the first error; then what esmtpd checks only when it starts
// (filters/start_checks.h: DNS list answer filters, milter specs, modules that load) is checked
// entry by entry, so every such error is reported; the TLS certificates and keys load as esmtpd
// loads them (each key matches its certificate), and a certificate that expires within
// kExpiryWarning (or has expired) is a warning; the sender_login_map file parses. Warnings also:
// what the config accepted but not as written (config::Config::warnings: a setting given twice,
// the last one wins). `strict` adds, as warnings: settings that have no effect with the others
// (config::ignored_settings) and alias targets without a mailbox and lines of the routing files
// that are ignored (routing::Router::strict_warnings). Any thread; loads and unloads filter
// modules; the strict checks look mailboxes up (stat, getpwnam).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace estafette::admin {

struct CheckResult {
  std::string source;                 // the file the settings came from (or the embedded default)
  std::vector<std::string> errors;    // "file:line: reason", in order; empty: the config is good
  std::vector<std::string> warnings;  // worth an admin's look, but esmtpd starts
};

inline constexpr std::chrono::hours kExpiryWarning{24 * 30};

CheckResult check_config(const std::string& path, bool strict = false);

}  // namespace estafette::admin
