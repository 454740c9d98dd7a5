// settings.h: the table of estafette.conf's settings, the one place that says which settings
// exist, their names (and Courier's aliases), their defaults, how each is parsed and one line
// of documentation. parse_config (config.cc) looks each line's key up here; `estafette
// settings` prints the table (settings_listing); tests/integration/install_test.py compares
// that listing with estafette.conf(5), both ways.
// Thread: any; the table is immutable. A Setting's parser throws std::invalid_argument with the
// reason, which parse_config turns into the ConfigError "file:line: key: reason".
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "lib/config/config.h"

namespace estafette::config {

// One estafette.conf being parsed: the Config so far and what its settings name but only
// parse_config reads after every line (so that the order of lines does not matter).
struct ParseState {
  Config& config;
  std::string base_dir;  // relative paths are resolved against it ("": the working directory)
  std::string where;     // "file:line" of the setting being parsed
  // dnsbl, smtpaccess, destinations: setting name -> (path, "file:line" of the setting).
  std::map<std::string, std::pair<std::string, std::string>> files;
  std::string routes_file;  // esmtproutes
  std::string routes_where;
  std::optional<HostPort> smarthost;
};

// Stores `value` (trimmed, without its comment) into state.config; throws std::invalid_argument.
using SettingParser = void (*)(ParseState& state, const std::string& value);

struct Setting {
  std::string_view name;
  // The default: what an absent setting means, written as a value the setting accepts ("" for
  // an empty list or no file). nullopt: computed when loaded (`hostname`: the system's name).
  std::optional<std::string_view> value;
  SettingParser parse;
  std::string_view doc;         // one line
  std::string_view alias = {};  // the same setting under another name (Courier's), or ""
  // The default in words, when `value` does not say it ("standard error"); "": `value`, or
  // "none" when `value` is "".
  std::string_view shown = {};
  // The embedded default configuration's value, when it differs from `value` (that config
  // runs a test instance: the test domains, mailboxes made on demand, no DNS checks).
  std::optional<std::string_view> embedded = {};

  // The default as estafette.conf(5) and `estafette settings` print it.
  std::string_view default_text() const;
};

// Every setting, in the order of estafette.conf(5)'s sections.
std::span<const Setting> settings();
// The setting called `name` (or whose alias it is), or nullptr.
const Setting* find_setting(std::string_view name);
// The embedded default configuration (load_config("")): each setting whose `embedded` value
// differs from its default.
std::string embedded_default_config();
// `estafette settings`: a header line, then one line per name (aliases on their own line):
// NAME, DEFAULT, DESCRIPTION in columns that start where the header's words do.
std::string settings_listing();

}  // namespace estafette::config
