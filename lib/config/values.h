// values.h: small text helpers shared by lib/config's parsers (estafette.conf's settings table,
// esmtproutes, dnsbl): lists, numbers, domains, paths relative to the config file. Internal to
// lib/config (the public value parsers, parse_duration/parse_size/parse_host_port, are in
// config.h). Pure apart from read_file and resolve (getcwd); any thread; read_file throws
// ConfigError "path: cannot open: reason", the others return nullopt/false for bad input.
#pragma once

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace estafette::config {

std::string lower(std::string_view s);
// Items separated by commas and/or white space; empty items are dropped.
std::vector<std::string> split_list(std::string_view value);
bool valid_domain(std::string_view d);
std::string read_file(const std::string& path);
// `path` made absolute against `base_dir` (the config file's directory; "": the working
// directory). "" stays "".
std::string resolve(const std::string& base_dir, const std::string& path);

// The whole of `s` as a T (no sign for unsigned T, no blanks), else nullopt.
template <typename T>
std::optional<T> parse_number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace estafette::config
