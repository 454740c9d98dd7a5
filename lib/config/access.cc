#include "lib/config/access.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "lib/config/cidr.h"
#include "lib/config/config.h"

namespace estafette::config {

namespace {

// Courier writes networks as dotted prefixes ("10.1" = 10.1.0.0/16); CIDR is also accepted.
std::optional<Cidr> parse_network(std::string_view text) {
  if (text.find('/') == std::string_view::npos && text.find(':') == std::string_view::npos) {
    auto dots = std::count(text.begin(), text.end(), '.');
    if (dots < 3 && !text.empty() && text.back() != '.') {
      std::string full(text);
      for (auto i = dots; i < 3; ++i) full += ".0";
      return Cidr::parse(full + "/" + std::to_string(8 * (dots + 1)));
    }
  }
  return Cidr::parse(text);
}

std::optional<bool> on_off(std::string_view v) {
  if (v == "on" || v == "yes" || v == "1") return true;
  if (v == "off" || v == "no" || v == "0") return false;
  return std::nullopt;
}

}  // namespace

AccessRules AccessRules::parse(const std::string& text, const std::string& name) {
  AccessRules out;
  for_each_line(text, name, [&](const std::string& where, std::string_view body) {
    auto fail = [&](const std::string& why) { throw ConfigError(where + ": " + why); };
    auto ws = body.find_first_of(" \t");
    if (ws == std::string_view::npos) fail("expected 'network action[,option...]'");
    AccessRule rule;
    rule.where = where;
    auto net = parse_network(body.substr(0, ws));
    if (!net) fail("bad network '" + std::string(body.substr(0, ws)) + "'");
    if (auto why = host_bits_error(*net, body.substr(0, ws)); !why.empty()) fail(why);
    rule.network = *net;
    auto rest = trim(body.substr(ws));
    auto end = rest.find_first_of(" \t");
    auto actions = rest.substr(0, end);
    rule.reply = end == std::string_view::npos ? "" : std::string(trim(rest.substr(end)));
    bool first = true;
    while (!actions.empty()) {
      auto comma = actions.find(',');
      auto item = actions.substr(0, comma);
      actions = comma == std::string_view::npos ? "" : actions.substr(comma + 1);
      if (first) {
        if (item == "allow")
          rule.allow = true;
        else if (item == "deny")
          rule.allow = false;
        else
          fail("expected allow or deny, not '" + std::string(item) + "'");
        first = false;
        continue;
      }
      if (item == "RELAYCLIENT") {
        rule.relay_client = true;
        continue;
      }
      auto eq = item.find('=');
      auto key = item.substr(0, eq);
      auto value =
          eq == std::string_view::npos ? std::optional<bool>() : on_off(item.substr(eq + 1));
      std::optional<bool>* field = key == "rdns"           ? &rule.rdns
                                   : key == "dnsbl"        ? &rule.dnsbl
                                   : key == "ident"        ? &rule.ident
                                   : key == "BOFHCHECKDNS" ? &rule.sender_dns
                                                           : nullptr;
      if (!field) fail("unknown option '" + std::string(item) + "'");
      if (!value) fail("expected " + std::string(key) + "=on or =off");
      *field = value;
    }
    if (!rule.reply.empty() && rule.allow) fail("a reply text is only for deny");
    out.rules_.push_back(std::move(rule));
  });
  // Most specific first; stable, so the first of two equal networks wins.
  std::stable_sort(out.rules_.begin(), out.rules_.end(), [](const auto& a, const auto& b) {
    return a.network.prefix() > b.network.prefix();
  });
  return out;
}

const AccessRule* AccessRules::lookup(std::string_view ip) const {
  for (const auto& rule : rules_)
    if (rule.network.contains(ip)) return &rule;
  return nullptr;
}

}  // namespace estafette::config
