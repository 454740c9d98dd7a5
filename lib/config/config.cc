#include "lib/config/config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "lib/base/fd.h"
#include "lib/base/paths.h"
#include "lib/smtp/address.h"

#ifndef ESTAFETTE_SYSCONFDIR
#define ESTAFETTE_SYSCONFDIR "/usr/local/etc/estafette"
#endif

namespace estafette::config {

const char* const kDefaultConfig = R"(# Estafette embedded default configuration.
# Accepts mail on 127.0.0.1:2525 for the local test domain and delivers it to
# <state_dir>/maildir/<user>/. Nothing is relayed: to relay for 127.0.0.1 through a
# smarthost, use a config file with "smarthost = host:port" and "relay_clients = 127.0.0.0/8".
state_dir = ./estafette-state
listen = 127.0.0.1:2525
local_domains = estafette.test, localhost
# Any local part has a mailbox, made in <state_dir>/maildir/ on first delivery.
local_mailboxes = create
relay_clients =
smarthost =
# No reverse DNS or sender-domain lookups: this default also runs on machines without DNS.
rdns_check = no
BOFHCHECKDNS = no
MAXDELS = 100
MAXHOST = 10
MAXRCPT = 100
retry_base = 5m
queue_lifetime = 5d
log_level = information
)";

std::string HostPort::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
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

std::size_t session_share(std::size_t max_sessions, std::size_t processes) {
  return std::max<std::size_t>(1, max_sessions / std::max<std::size_t>(1, processes));
}

bool Config::is_local_domain(const std::string& domain) const {
  return smtp::domain_listed(local_domains, domain);
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> split_list(std::string_view value) {
  std::vector<std::string> out;
  std::string item;
  for (char c : value) {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      if (!item.empty()) out.push_back(std::move(item));
      item.clear();
    } else {
      item.push_back(c);
    }
  }
  if (!item.empty()) out.push_back(std::move(item));
  return out;
}

template <typename T>
std::optional<T> parse_number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253) return false;
  for (char c : d)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
      return false;
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open: " + base::errno_text(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return base_dir.empty() ? base::absolute_path(path) : base_dir + "/" + path;
}

}  // namespace

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
  if (!n) return std::nullopt;
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

void parse_routes(const std::string& text, const std::string& name, Routes& routes) {
  for_each_line(text, name, [&](const std::string& where, std::string_view line) {
    auto body = trim(line.substr(0, line.find('#')));  // a comment may follow the route
    if (body.empty()) return;
    auto colon = body.find(':');
    if (colon == std::string_view::npos) fail(where, "expected 'domain: host[,port]'");
    auto domain = lower(trim(body.substr(0, colon)));
    auto target = parse_host_port(body.substr(colon + 1), 25);
    if (!target) fail(where, "bad destination '" + std::string(trim(body.substr(colon + 1))) + "'");
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

Config parse_config(const std::string& text, const std::string& name, const std::string& base_dir) {
  Config c;
  c.source = name;
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  c.hostname = host;
  std::string routes_file;
  std::string routes_where;
  // Files named by settings, read after all settings: key -> (path, "file:line" of the key).
  std::map<std::string, std::pair<std::string, std::string>> files;
  auto file_setter = [&](const char* key) {
    return [&, key](const std::string& v) { files[key] = {resolve(base_dir, v), ""}; };
  };
  std::optional<HostPort> smarthost;
  // The routing files are read by lib/routing's Router (again on reload); here only their paths.
  std::string* routing_where = nullptr;
  auto routing_file = [&](Config::FileRef& field) {
    return [&](const std::string& v) {
      field.path = v.empty() ? "" : resolve(base_dir, v);
      routing_where = &field.where;
    };
  };

  using Setter = std::function<void(const std::string& value)>;
  auto size_setter = [](std::size_t& field, std::size_t min) {
    return [&field, min](const std::string& v) {
      auto n = parse_size(v);
      if (!n) throw std::invalid_argument("expected a size such as 1000, 64K or 10M");
      if (*n < min) throw std::invalid_argument("must be at least " + std::to_string(min));
      field = *n;
    };
  };
  // A count; with zero_means_none, 0 is allowed and means "no limit".
  auto count_setter = [](std::size_t& field, bool zero_means_none = false) {
    return [&field, zero_means_none](const std::string& v) {
      auto n = parse_number<std::size_t>(v);
      if (!n || (*n == 0 && !zero_means_none))
        throw std::invalid_argument(zero_means_none ? "expected a number (0 = no limit)"
                                                    : "expected a positive number");
      field = *n;
    };
  };
  auto processes_setter = [](std::size_t& field) {
    return [&field](const std::string& v) {
      if (lower(v) == "auto") {
        field = kAutoProcesses;
        return;
      }
      auto n = parse_number<std::size_t>(v);
      if (!n || *n < 1 || *n > kMaxProcesses)
        throw std::invalid_argument("expected auto or a number from 1 to " +
                                    std::to_string(kMaxProcesses));
      field = *n;
    };
  };
  auto millis_setter = [](Millis& field) {
    return [&field](const std::string& v) {
      auto d = parse_duration(v);
      if (!d) throw std::invalid_argument("expected a duration such as 250ms, 30s, 5m, 4h or 5d");
      field = *d;
    };
  };
  auto seconds_setter = [](Seconds& field) {
    return [&field](const std::string& v) {
      auto d = parse_duration(v);
      if (!d || d->count() < 1000) throw std::invalid_argument("expected a duration >= 1s");
      field = std::chrono::duration_cast<Seconds>(*d);
    };
  };
  auto bool_setter = [](bool& field) {
    return [&field](const std::string& v) {
      auto l = lower(v);
      if (l == "yes" || l == "true" || l == "on" || l == "1")
        field = true;
      else if (l == "no" || l == "false" || l == "off" || l == "0")
        field = false;
      else
        throw std::invalid_argument("expected yes or no");
    };
  };
  auto domains_setter = [](std::vector<std::string>& field) {
    return [&field](const std::string& v) {
      field.clear();
      for (auto& d : split_list(v)) {
        if (!valid_domain(d)) throw std::invalid_argument("bad domain '" + d + "'");
        field.push_back(lower(d));
      }
    };
  };
  auto hostports_setter = [](std::vector<HostPort>& field, std::uint16_t def) {
    return [&field, def](const std::string& v) {
      field.clear();
      for (auto& item : split_list(v)) {
        auto hp = parse_host_port(item, def);
        if (!hp) throw std::invalid_argument("bad address '" + item + "' (expected host:port)");
        field.push_back(*hp);
      }
    };
  };

  std::unordered_map<std::string, Setter> keys = {
      {"hostname",
       [&](const std::string& v) {
         if (!valid_domain(v)) throw std::invalid_argument("bad host name");
         c.hostname = v;
       }},
      {"state_dir",
       [&](const std::string& v) {
         if (v.empty()) throw std::invalid_argument("must not be empty");
         c.state_dir = resolve(base_dir, v);
       }},
      {"listen", hostports_setter(c.listen, 25)},
      {"local_domains", domains_setter(c.local_domains)},
      {"relay_domains", domains_setter(c.relay_domains)},
      {"relay_clients",
       [&](const std::string& v) {
         c.relay_clients.clear();
         for (auto& item : split_list(v)) {
           auto n = Cidr::parse(item);
           if (!n) throw std::invalid_argument("bad network '" + item + "'");
           c.relay_clients.push_back(*n);
         }
       }},
      {"smarthost",
       [&](const std::string& v) {
         smarthost.reset();
         if (v.empty()) return;
         smarthost = parse_host_port(v, 25);
         if (!smarthost) throw std::invalid_argument("bad smarthost (expected host[:port])");
       }},
      {"esmtproutes", [&](const std::string& v) { routes_file = resolve(base_dir, v); }},
      {"maildir_root", [&](const std::string& v) { c.maildir_root = resolve(base_dir, v); }},
      {"locals", routing_file(c.locals)},
      {"hosteddomains", routing_file(c.hosteddomains)},
      {"hosted_mailboxes", routing_file(c.hosted_mailboxes)},
      {"aliases", routing_file(c.aliases)},
      {"local_mailboxes",
       [&](const std::string& v) {
         if (v == "create")
           c.local_mailboxes = Config::LocalMailboxes::Create;
         else if (v == "existing")
           c.local_mailboxes = Config::LocalMailboxes::Existing;
         else if (v == "system")
           c.local_mailboxes = Config::LocalMailboxes::System;
         else
           throw std::invalid_argument("expected create, existing or system");
       }},
      {"max_mailbox_message_size", size_setter(c.max_mailbox_message_size, 0)},
      {"allow_program_delivery", bool_setter(c.allow_program_delivery)},
      {"program_user",
       [&](const std::string& v) {
         if (v.empty() || v == "root")
           throw std::invalid_argument("must name a user other than root");
         c.program_user = v;
       }},
      {"program_timeout", seconds_setter(c.program_timeout)},
      {"max_message_size", size_setter(c.max_message_size, 1024)},
      {"max_recipients", count_setter(c.max_recipients)},
      {"max_line_length", size_setter(c.max_line_length, 512)},
      {"smtpd_timeout", seconds_setter(c.smtpd_timeout)},
      {"max_sessions", count_setter(c.max_sessions)},
      {"MAXDAEMONS", count_setter(c.max_sessions)},
      {"MAXPERIP", count_setter(c.max_per_ip, true)},
      {"MAXPERC", count_setter(c.max_per_c, true)},
      {"rdns_check", bool_setter(c.rdns_check)},
      {"dnsbl", file_setter("dnsbl")},
      {"dnsbl_threshold",
       [&](const std::string& v) {
         auto n = parse_number<int>(v);
         if (!n || *n < 1) throw std::invalid_argument("expected a positive number");
         c.dnsbl_threshold = *n;
       }},
      {"dnsbl_action",
       [&](const std::string& v) {
         if (v == "reject_rcpt")
           c.dnsbl_action = DnsblAction::RejectRcpt;
         else if (v == "reject_greeting")
           c.dnsbl_action = DnsblAction::RejectGreeting;
         else
           throw std::invalid_argument("expected reject_rcpt or reject_greeting");
       }},
      {"ident_check", bool_setter(c.ident_check)},
      {"ident_timeout", millis_setter(c.ident_timeout)},
      {"greet_wait", millis_setter(c.greet_wait)},
      {"BOFHCHECKDNS", bool_setter(c.sender_dns_check)},
      {"dns_cache_size", count_setter(c.dns_cache_size, true)},
      {"smtpaccess", file_setter("smtpaccess")},
      {"filters",
       [&](const std::string& v) {
         c.filters.clear();
         for (auto& item : split_list(v)) {
           auto colon = item.find(':');
           std::string kind = item.substr(0, colon);
           if (colon == std::string::npos || (kind != "milter" && kind != "module") ||
               colon + 1 == item.size())
             throw std::invalid_argument("expected milter:SOCKET or module:PATH, not '" + item +
                                         "'");
           std::string target = item.substr(colon + 1);
           if (kind == "module") target = resolve(base_dir, target);
           c.filters.push_back({kind, target, ""});
         }
       }},
      {"milter_default_action",
       [&](const std::string& v) {
         if (v != "tempfail" && v != "accept" && v != "reject")
           throw std::invalid_argument("expected tempfail, accept or reject");
         c.milter_default_action = v;
       }},
      {"milter_connect_timeout", millis_setter(c.milter_connect_timeout)},
      {"milter_command_timeout", millis_setter(c.milter_command_timeout)},
      {"milter_content_timeout", millis_setter(c.milter_content_timeout)},
      {"queue_backend",
       [&](const std::string& v) {
         if (v != "segment" && v != "file") throw std::invalid_argument("expected segment or file");
         c.queue_backend = v;
       }},
      {"esmtpd_processes", processes_setter(c.esmtpd_processes)},
      {"esmtpclient_processes", processes_setter(c.esmtpclient_processes)},
      {"local_processes", processes_setter(c.local_processes)},
      {"MAXDELS", count_setter(c.max_deliveries)},
      {"MAXHOST", count_setter(c.max_per_host)},
      {"initial_host_concurrency", count_setter(c.initial_host_concurrency)},
      {"MAXRCPT", count_setter(c.max_rcpt)},
      {"retry_base", millis_setter(c.retry_base)},
      {"retry_max", millis_setter(c.retry_max)},
      {"host_backoff", millis_setter(c.host_backoff)},
      {"queue_lifetime", seconds_setter(c.queue_lifetime)},
      {"queuetime", seconds_setter(c.queue_lifetime)},  // Courier's name
      {"warntime", millis_setter(c.warn_time)},
      {"destinations", file_setter("destinations")},
      {"esmtp_port",
       [&](const std::string& v) {
         auto p = parse_number<unsigned>(v);
         if (!p || *p == 0 || *p > 65535) throw std::invalid_argument("expected a port number");
         c.esmtp_port = static_cast<std::uint16_t>(*p);
       }},
      {"connect_timeout", seconds_setter(c.connect_timeout)},
      {"greeting_timeout", seconds_setter(c.greeting_timeout)},
      {"mail_timeout", seconds_setter(c.mail_timeout)},
      {"rcpt_timeout", seconds_setter(c.rcpt_timeout)},
      {"data_timeout", seconds_setter(c.data_timeout)},
      {"data_block_timeout", seconds_setter(c.data_block_timeout)},
      {"data_end_timeout", seconds_setter(c.data_end_timeout)},
      {"idle_reuse", seconds_setter(c.idle_reuse)},
      {"dns_servers", hostports_setter(c.dns_servers, 53)},
      {"dns_timeout", millis_setter(c.dns_timeout)},
      {"dns_tries",
       [&](const std::string& v) {
         auto n = parse_number<int>(v);
         if (!n || *n < 1 || *n > 10) throw std::invalid_argument("expected 1 to 10");
         c.dns_tries = *n;
       }},
      {"user",
       [&](const std::string& v) {
         // POSIX portable user names; "" = stay as started.
         for (char ch : v)
           if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' ||
                 ch == '.'))
             throw std::invalid_argument("bad user name '" + v + "'");
         if (!v.empty() && v[0] == '-') throw std::invalid_argument("bad user name '" + v + "'");
         c.user = v;
       }},
      {"log_file", [&](const std::string& v) { c.log_file = resolve(base_dir, v); }},
      {"syslog", bool_setter(c.syslog)},
      {"log_level",
       [&](const std::string& v) {
         static const char* kLevels[] = {"fatal",  "critical",    "error", "warning",
                                         "notice", "information", "debug", "trace"};
         if (std::find(std::begin(kLevels), std::end(kLevels), v) == std::end(kLevels))
           throw std::invalid_argument(
               "expected one of error, warning, notice, information, debug");
         c.log_level = v;
       }},
  };

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
    std::string value(trim(raw));
    auto it = keys.find(key);
    if (it == keys.end()) fail(where, "unknown setting '" + key + "'");
    try {
      it->second(value);
    } catch (const std::invalid_argument& e) {
      fail(where, key + ": " + e.what());
    }
    if (key == "esmtproutes") routes_where = where;
    if (routing_where) *std::exchange(routing_where, nullptr) = where;
    if (auto f = files.find(key); f != files.end()) f->second.second = where;
    if (key == "filters")
      for (auto& f : c.filters) f.where = where;
  });

  c.state_dir = base::absolute_path(c.state_dir);
  if (c.maildir_root.empty()) c.maildir_root = c.state_dir + "/maildir";
  if (c.listen.empty()) fail(name, "listen: at least one address is needed");
  if (c.max_per_host > c.max_deliveries)
    fail(name, "MAXHOST (" + std::to_string(c.max_per_host) + ") exceeds MAXDELS (" +
                   std::to_string(c.max_deliveries) + ")");
  if (!routes_file.empty()) {
    std::string routes_text;
    try {
      routes_text = read_file(routes_file);
    } catch (const ConfigError& e) {
      fail(routes_where, std::string("esmtproutes: ") + e.what());
    }
    parse_routes(routes_text, routes_file, c.routes);
  }
  if (smarthost) c.routes.smarthost = smarthost;
  for (const auto& [key, file] : files) {
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
  return c;
}

Config load_config(const std::string& path) {
  if (path.empty()) return parse_config(kDefaultConfig, "(embedded default)", "");
  auto text = read_file(path);
  auto abs = base::absolute_path(path);
  return parse_config(text, path, abs.substr(0, abs.rfind('/')));
}

std::string default_config_path() {
  if (!base::running_installed()) return "";
  std::string path = std::string(ESTAFETTE_SYSCONFDIR) + "/estafette.conf";
  return ::access(path.c_str(), F_OK) == 0 ? path : "";
}

}  // namespace estafette::config
