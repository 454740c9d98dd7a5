#include "lib/config/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <limits>
#include <sstream>
#include <utility>

#include <config.h>  // configure's: the installed paths ("config.h" is this directory's own)
#include "lib/base/paths.h"
#include "lib/config/settings.h"
#include "lib/config/values.h"
#include "lib/smtp/address.h"

#ifndef ESTAFETTE_SYSCONFDIR
#error "ESTAFETTE_SYSCONFDIR comes from config.h (configure)"
#endif

namespace estafette::config {

std::string HostPort::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Listener::to_string() const {
  return address().to_string() + " " + std::string(smtp::role_name(role)) +
         (tls_required ? " tls_required" : "") + (auth ? " auth" : "");
}

namespace {
// One spelling per address, so that "[::1]" and "[0:0::1]", or "Mail.Example" and
// "mail.example", are found to be the same listen address. Host names are not resolved.
std::string canonical_host(const std::string& host) {
  unsigned char bytes[16];
  char text[INET6_ADDRSTRLEN];
  for (int family : {AF_INET, AF_INET6})
    if (::inet_pton(family, host.c_str(), bytes) == 1 &&
        ::inet_ntop(family, bytes, text, sizeof text))
      return text;
  return lower(host);
}
}  // namespace

namespace {
bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// The words of one quoted entry, split at white space.
std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text) {
    if (is_space(c)) {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}
}  // namespace

std::vector<FilterSpec> parse_filters(std::string_view value, const std::string& base_dir,
                                      const std::string& where) {
  // Entries: unquoted ones end at a comma or white space; a quoted one is its words.
  std::vector<std::vector<std::string>> entries;
  std::vector<bool> quoted;
  for (std::size_t i = 0; i < value.size();) {
    char c = value[i];
    if (c == ',' || is_space(c)) {
      ++i;
      continue;
    }
    if (c == '"') {
      std::size_t end = value.find('"', i + 1);
      if (end == std::string_view::npos)
        throw std::invalid_argument("a quoted entry without its closing quote");
      auto words = words_of(value.substr(i + 1, end - i - 1));
      if (words.empty()) throw std::invalid_argument("an empty quoted entry");
      entries.push_back(std::move(words));
      quoted.push_back(true);
      i = end + 1;
      if (i < value.size() && value[i] != ',' && !is_space(value[i]))
        throw std::invalid_argument("text right after a quoted entry (separate entries with ,)");
      continue;
    }
    std::size_t end = i;
    while (end < value.size() && value[end] != ',' && !is_space(value[end])) {
      if (value[end] == '"')
        throw std::invalid_argument(
            "a quote inside an entry (quote the whole entry: \"module:/x.so arg ...\")");
      ++end;
    }
    entries.push_back({std::string(value.substr(i, end - i))});
    quoted.push_back(false);
    i = end;
  }
  std::vector<FilterSpec> out;
  for (std::size_t e = 0; e < entries.size(); ++e) {
    const std::string& item = entries[e].front();
    auto colon = item.find(':');
    std::string kind = item.substr(0, colon);
    const bool module = kind == "module" || kind == "module-inline" || kind == "module-isolated";
    const bool known = kind == "milter" || module || kind == "policy" || kind == "policy-data" ||
                       kind == "policy-eom";
    if (colon == std::string::npos || !known || colon + 1 == item.size()) {
      std::string why =
          "expected milter:SOCKET, module:PATH, module-inline:PATH, module-isolated:PATH or "
          "policy:SOCKET "
          "(policy-data:SOCKET, policy-eom:SOCKET), not '" +
          item + "'";
      if (!quoted[e] && !out.empty() && out.back().kind.starts_with("module"))
        why += " (arguments of a module go inside quotes with it: \"" + out.back().kind + ":" +
               out.back().target + " " + item + " ...\")";
      throw std::invalid_argument(why);
    }
    FilterSpec spec{kind, item.substr(colon + 1), where, {}};
    spec.args.assign(entries[e].begin() + 1, entries[e].end());
    if (!module && !spec.args.empty())
      throw std::invalid_argument("only a module takes arguments, not '" + item + "'");
    if (module) spec.target = resolve(base_dir, spec.target);
    out.push_back(std::move(spec));
  }
  return out;
}

std::vector<Listener> parse_listen(std::string_view value) {
  std::vector<Listener> out;
  bool role_given = false;  // for out.back()
  for (auto& item : split_list(value)) {
    if (auto role = smtp::role_from_name(item)) {
      if (out.empty()) throw std::invalid_argument("role '" + item + "' without an address");
      if (role_given)
        throw std::invalid_argument("two roles for " + out.back().address().to_string());
      out.back().role = *role;
      role_given = true;
      continue;
    }
    if (item == "tls_required" || item == "auth") {
      if (out.empty()) throw std::invalid_argument("option '" + item + "' without an address");
      bool& option = item == "auth" ? out.back().auth : out.back().tls_required;
      if (option)
        throw std::invalid_argument("option '" + item + "' twice for " +
                                    out.back().address().to_string());
      option = true;
      role_given = true;  // a role after an option would be ambiguous: it must come first
      continue;
    }
    auto hp = parse_host_port(item, 25);
    if (!hp) throw std::invalid_argument("bad address '" + item + "' (expected host:port [role])");
    for (const auto& l : out)
      if (canonical_host(l.host) == canonical_host(hp->host) && l.port == hp->port)
        throw std::invalid_argument(
            "address " + hp->to_string() + " listed twice" +
            (l.host == hp->host ? "" : " (as " + l.address().to_string() + ")"));
    out.push_back({hp->host, hp->port, smtp::ListenerRole::Mx});
    role_given = false;
  }
  if (out.empty()) throw std::invalid_argument("at least one address is needed");
  return out;
}

std::optional<HostPort> Routes::lookup(const std::string& domain) const {
  if (auto it = exact.find(domain); it != exact.end()) return it->second;
  for (std::size_t dot = domain.find('.'); dot != std::string::npos;
       dot = domain.find('.', dot + 1)) {
    if (auto it = suffix.find(domain.substr(dot + 1)); it != suffix.end()) return it->second;
  }
  return smarthost;
}

std::size_t resolve_processes(std::size_t configured, std::size_t cpus) {
  if (configured != kAutoProcesses) return configured;
  return std::clamp<std::size_t>(cpus, 1, kMaxProcesses);
}

std::size_t resolve_local_processes(std::size_t configured, std::size_t cpus) {
  if (configured != kAutoProcesses) return configured;
  return std::clamp<std::size_t>(4 * cpus, 4, 32);
}

std::size_t session_share(std::size_t max_sessions, std::size_t processes) {
  return std::max<std::size_t>(1, max_sessions / std::max<std::size_t>(1, processes));
}

bool Config::is_local_domain(const std::string& domain) const {
  return smtp::domain_listed(local_domains, domain);
}

void fail(const std::string& where, const std::string& why) {
  throw ConfigError(where + ": " + why);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

void for_each_line(const std::string& text, const std::string& name,
                   const std::function<void(const std::string& where, std::string_view body)>& fn) {
  std::istringstream in(text);
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    auto body = trim(line);
    if (body.empty() || body[0] == '#') continue;
    fn(name + ":" + std::to_string(lineno), body);
  }
}

std::optional<Millis> parse_duration(std::string_view text) {
  text = trim(text);
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return std::nullopt;
  auto n = parse_number<std::int64_t>(text.substr(0, i));
  if (!n) return std::nullopt;
  auto unit = text.substr(i);
  std::int64_t ms;
  if (unit == "ms")
    ms = 1;
  else if (unit == "s" || unit.empty())
    ms = 1000;
  else if (unit == "m")
    ms = 60'000;
  else if (unit == "h")
    ms = 3'600'000;
  else if (unit == "d")
    ms = 86'400'000;
  else
    return std::nullopt;
  if (*n > std::numeric_limits<std::int64_t>::max() / ms) return std::nullopt;  // would overflow
  return Millis(*n * ms);
}

std::optional<std::size_t> parse_size(std::string_view text) {
  text = trim(text);
  std::size_t mult = 1;
  if (!text.empty()) {
    switch (std::toupper(static_cast<unsigned char>(text.back()))) {
      case 'K':
        mult = 1024;
        break;
      case 'M':
        mult = 1024 * 1024;
        break;
      case 'G':
        mult = 1024 * 1024 * 1024;
        break;
      default:
        break;
    }
    if (mult != 1) text.remove_suffix(1);
  }
  auto n = parse_number<std::size_t>(text);
  if (!n || *n > std::numeric_limits<std::size_t>::max() / mult) return std::nullopt;
  return *n * mult;
}

std::optional<HostPort> parse_host_port(std::string_view text, std::uint16_t default_port) {
  text = trim(text);
  HostPort hp;
  hp.port = default_port;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    hp.host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':' && rest[0] != ',') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    auto sep = text.find_last_of(":,");
    // A bare IPv6 address has several colons and no port.
    if (sep != std::string_view::npos && text.find(':') == text.rfind(':')) {
      hp.host = text.substr(0, sep);
      port = text.substr(sep + 1);
    } else if (sep != std::string_view::npos && text[sep] == ',') {
      hp.host = text.substr(0, sep);
      port = text.substr(sep + 1);
    } else {
      hp.host = text;
    }
  }
  hp.host = std::string(trim(hp.host));
  if (hp.host.empty()) return std::nullopt;
  if (!port.empty() || text.find_last_of(":,") == text.size() - 1) {
    auto p = parse_number<unsigned>(trim(port));
    if (!p || *p == 0 || *p > 65535) return std::nullopt;
    hp.port = static_cast<std::uint16_t>(*p);
  }
  return hp;
}

void parse_routes(const std::string& text, const std::string& name, Routes& routes,
                  std::vector<std::string>* warnings) {
  std::map<std::string, std::string> first_at;  // "domain" / ".domain" / "" -> file:line
  for_each_line(text, name, [&](const std::string& where, std::string_view line) {
    auto body = trim(line.substr(0, line.find('#')));  // a comment may follow the route
    if (body.empty()) return;
    auto colon = body.find(':');
    if (colon == std::string_view::npos) fail(where, "expected 'domain: host[,port]'");
    auto domain = lower(trim(body.substr(0, colon)));
    // "example.com 127.0.0.1:2525": the colon found is the port's; say what is missing.
    if (auto blank = domain.find_first_of(" \t"); blank != std::string::npos)
      fail(where,
           "expected 'domain: host[,port]' (no ':' after '" + domain.substr(0, blank) + "')");
    auto target = parse_host_port(body.substr(colon + 1), 25);
    if (!target) fail(where, "bad destination '" + std::string(trim(body.substr(colon + 1))) + "'");
    if (auto [it, first] = first_at.emplace(domain, where); !first) {
      if (warnings)
        warnings->push_back(where + ": '" + domain + "' given again (the route at " + it->second +
                            " is ignored)");
      it->second = where;
    }
    if (domain.empty()) {
      routes.smarthost = *target;
    } else if (domain[0] == '.') {
      if (!valid_domain(domain.substr(1))) fail(where, "bad domain '" + domain + "'");
      routes.suffix[domain.substr(1)] = *target;
    } else {
      if (!valid_domain(domain)) fail(where, "bad domain '" + domain + "'");
      routes.exact[domain] = *target;
    }
  });
}

std::vector<DnsListSpec> parse_dnsbl(const std::string& text, const std::string& name) {
  std::vector<DnsListSpec> out;
  for_each_line(text, name, [&](const std::string& where, std::string_view body) {
    // zone, filter and weight are words; the reply is the rest of the line.
    std::vector<std::string_view> words;
    while (words.size() < 3 && !body.empty()) {
      auto end = body.find_first_of(" \t");
      words.push_back(body.substr(0, end));
      body = end == std::string_view::npos ? std::string_view() : trim(body.substr(end));
    }
    if (words.size() < 3) fail(where, "expected 'zone filter weight [reply]'");
    DnsListSpec spec;
    spec.zone = lower(words[0]);
    if (!valid_domain(spec.zone)) fail(where, "bad zone '" + spec.zone + "'");
    spec.filter = words[1] == "-" ? "" : std::string(words[1]);
    auto weight = parse_number<int>(words[2]);
    if (!weight || *weight == 0) fail(where, "bad weight '" + std::string(words[2]) + "'");
    spec.weight = *weight;
    spec.reply = std::string(body);
    spec.where = where;
    out.push_back(std::move(spec));
  });
  return out;
}

namespace {

// The checks across settings, and the files that settings name (read once every line is
// parsed, so that the order of lines does not matter). Errors in this order, as always.
void finish(ParseState& s, const std::string& name) {
  Config& c = s.config;
  c.state_dir = base::absolute_path(c.state_dir);
  if (c.maildir_root.empty()) c.maildir_root = c.state_dir + "/maildir";
  if (c.listen.empty()) fail(name, "listen: at least one address is needed");
  if (!c.tls_key_files.empty() && c.tls_key_files.size() != c.tls_cert_files.size())
    fail(name, "tls_key_file names " + std::to_string(c.tls_key_files.size()) + " files for " +
                   std::to_string(c.tls_cert_files.size()) + " tls_cert_file");
  if (!c.tls_client_ca_file.empty() && c.tls_cert_files.empty())
    fail(name, "tls_client_ca_file needs a certificate (tls_cert_file)");
  if (!c.relay_clientcerts.empty() && c.tls_client_ca_file.empty())
    fail(name, "relay_clientcerts needs tls_client_ca_file (only a verified certificate counts)");
  for (const auto& l : c.listen) {
    if (l.role == smtp::ListenerRole::Submissions && c.tls_cert_files.empty())
      fail(name, "listen: " + l.to_string() + " needs a certificate (tls_cert_file)");
    if (l.tls_required && c.tls_cert_files.empty())
      fail(name, "listen: " + l.to_string() + " needs a certificate (tls_cert_file)");
    if ((l.auth || l.role != smtp::ListenerRole::Mx) && c.auth_backend.empty())
      fail(name, "listen: " + l.to_string() + " needs an auth_backend (AUTH)");
  }
  if (c.message_memory_budget != 0 && c.message_memory_budget < c.max_message_size)
    fail(name, "message_memory_budget (" + std::to_string(c.message_memory_budget) +
                   ") is less than max_message_size (" + std::to_string(c.max_message_size) + ")");
  if (c.max_per_host > c.max_deliveries)
    fail(name, "MAXHOST (" + std::to_string(c.max_per_host) + ") exceeds MAXDELS (" +
                   std::to_string(c.max_deliveries) + ")");
  if (!s.routes_file.empty()) {
    std::string routes_text;
    try {
      routes_text = read_file(s.routes_file);
    } catch (const ConfigError& e) {
      fail(s.routes_where, std::string("esmtproutes: ") + e.what());
    }
    parse_routes(routes_text, s.routes_file, c.routes, &c.warnings);
    if (c.routes.smarthost && s.smarthost) {  // the setting wins over the file's ": host" line
      std::string why = ": smarthost overrides the route for all other domains in ";
      c.warnings.push_back(c.given["smarthost"] + why + s.routes_file);
    }
  }
  if (s.smarthost) c.routes.smarthost = s.smarthost;
  for (const auto& [key, file] : s.files) {
    if (file.first.empty()) continue;
    std::string content;
    try {
      content = read_file(file.first);
    } catch (const ConfigError& e) {
      fail(file.second, key + ": " + e.what());
    }
    if (key == "dnsbl")
      c.dnsbl = parse_dnsbl(content, file.first);
    else if (key == "destinations")
      c.destinations = parse_destinations(content, file.first);
    else
      c.access = AccessRules::parse(content, file.first);
  }
  for (const auto* entries : {&c.destinations.domains, &c.destinations.routes})
    for (const auto& [dest, limits] : *entries)
      if (limits.concurrency > c.max_deliveries)
        fail(c.destinations.where[dest], "concurrency (" + std::to_string(limits.concurrency) +
                                             ") exceeds MAXDELS (" +
                                             std::to_string(c.max_deliveries) + ")");
}

}  // namespace

Config parse_config(const std::string& text, const std::string& name, const std::string& base_dir) {
  Config c;
  c.source = name;
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  c.hostname = host;
  ParseState state{c, base_dir, "", {}, {}, {}, {}};
  for_each_line(text, name, [&](const std::string& where, std::string_view body) {
    auto eq = body.find('=');
    if (eq == std::string_view::npos) fail(where, "expected 'key = value'");
    std::string key(trim(body.substr(0, eq)));
    auto raw = body.substr(eq + 1);
    // "#" after white space starts a comment (values themselves never contain " #").
    for (std::size_t i = 1; i < raw.size(); ++i) {
      if (raw[i] == '#' && std::isspace(static_cast<unsigned char>(raw[i - 1]))) {
        raw = raw.substr(0, i);
        break;
      }
    }
    const Setting* setting = find_setting(key);
    if (!setting) fail(where, "unknown setting '" + key + "'");
    // Given twice: the last one wins, with a warning (Postfix's "overriding earlier entry").
    std::string name(setting->name);
    if (auto [it, first] = c.given.emplace(name, where); !first) {
      c.warnings.push_back(where + ": " + key + " given again (the value at " + it->second +
                           " is ignored)");
      it->second = where;
    }
    state.where = where;
    try {
      setting->parse(state, std::string(trim(raw)));
    } catch (const std::invalid_argument& e) {
      fail(where, key + ": " + e.what());
    }
  });
  finish(state, name);
  return c;
}

Config load_config(const std::string& path) {
  if (path.empty()) return parse_config(embedded_default_config(), "(embedded default)", "");
  auto text = read_file(path);
  auto abs = base::absolute_path(path);
  return parse_config(text, path, abs.substr(0, abs.rfind('/')));
}

std::vector<std::string> ignored_settings(const Config& c) {
  bool milters = std::any_of(c.filters.begin(), c.filters.end(),
                             [](const FilterSpec& f) { return f.kind == "milter"; });
  bool policies = std::any_of(c.filters.begin(), c.filters.end(),
                              [](const FilterSpec& f) { return f.kind.rfind("policy", 0) == 0; });
  bool modules = std::any_of(c.filters.begin(), c.filters.end(),
                             [](const FilterSpec& f) { return f.kind == "module"; });
  bool system = c.local_mailboxes == Config::LocalMailboxes::System;
  struct Rule {
    std::string_view setting;
    bool ignored;
    std::string_view why;
  };
  const Rule rules[] = {
      {"program_user", !c.allow_program_delivery, "allow_program_delivery = no"},
      {"program_timeout", !c.allow_program_delivery, "allow_program_delivery = no"},
      {"milter_default_action", !milters, "no milter in filters"},
      {"milter_connect_timeout", !milters, "no milter in filters"},
      {"milter_command_timeout", !milters, "no milter in filters"},
      {"milter_content_timeout", !milters, "no milter in filters"},
      {"filter_callback_warn_time", !modules, "no module in filters"},
      {"policy_timeout", !policies, "no policy service in filters"},
      {"policy_default_action", !policies, "no policy service in filters"},
      {"dnsbl_threshold", c.dnsbl.empty(), "no dnsbl file (or an empty one)"},
      {"dnsbl_action", c.dnsbl.empty(), "no dnsbl file (or an empty one)"},
      {"ident_timeout", !c.ident_check, "ident_check = no"},
      {"auth_allow_plaintext", c.auth_backend.empty(), "no auth_backend"},
      {"auth_fail_limit", c.auth_backend.empty(), "no auth_backend"},
      {"auth_fail_window", c.auth_backend.empty(), "no auth_backend"},
      {"sender_login_map", c.auth_backend.empty(), "no auth_backend"},
      {"client_auth_plaintext", c.client_credentials.empty(), "no client_credentials"},
      {"tls_report_contact", !c.tls_reporting, "tls_reporting = no"},
      {"tls_report_organization", !c.tls_reporting, "tls_reporting = no"},
      {"mta_sts_timeout", !c.mta_sts, "mta_sts = no"},
      {"mta_sts_cache_size", !c.mta_sts, "mta_sts = no"},
      {"hosted_mailboxes", c.hosteddomains.path.empty(), "no hosteddomains"},
      {"maildir_root", system && c.hosted_mailboxes.path.empty(),
       "local_mailboxes = system (~user/Maildir) and no hosted_mailboxes"},
  };
  std::vector<std::pair<std::string, std::string>> found;  // (where, text)
  for (const auto& r : rules) {
    auto it = c.given.find(std::string(r.setting));
    if (r.ignored && it != c.given.end())
      found.emplace_back(it->second, it->second + ": " + std::string(r.setting) +
                                         ": ignored: " + std::string(r.why));
  }
  // In the file's order: "file:N" sorts by N as a number.
  auto line_of = [](const std::string& where) {
    auto n = parse_number<long>(std::string_view(where).substr(where.rfind(':') + 1));
    return n.value_or(0);
  };
  std::stable_sort(found.begin(), found.end(), [&](const auto& a, const auto& b) {
    return line_of(a.first) < line_of(b.first);
  });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::string default_config_path() {
  if (!base::running_installed()) return "";
  std::string path = std::string(ESTAFETTE_SYSCONFDIR) + "/estafette.conf";
  return ::access(path.c_str(), F_OK) == 0 ? path : "";
}

}  // namespace estafette::config
