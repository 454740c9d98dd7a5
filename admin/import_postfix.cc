#include "admin/import_postfix.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

namespace estafette::admin::postfix {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string where(const std::string& file, int line) {
  return file + ":" + std::to_string(line);
}

// Splits text into logical lines: a line starting with white space continues the one above;
// blank lines and '#' lines are skipped (also between continuations, as Postfix does).
template <typename F>
void for_each_logical_line(const std::string& text, const std::string& file, F&& handle) {
  std::string current;
  int current_line = 0;
  auto flush = [&] {
    if (current_line) handle(std::string(trim(current)), current_line);
    current.clear();
    current_line = 0;
  };
  int number = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + at, end - at);
    at = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxLineLength)
      throw ImportError(where(file, number) + ": line longer than " +
                        std::to_string(kMaxLineLength) + " bytes");
    auto body = trim(line);
    if (body.empty() || body[0] == '#') continue;
    if (std::isspace(static_cast<unsigned char>(line[0]))) {
      if (!current_line)
        throw ImportError(where(file, number) +
                          ": a line starting with white space, but none above it to continue");
      if (current.size() + body.size() + 1 > kMaxLineLength)
        throw ImportError(where(file, current_line) + ": logical line longer than " +
                          std::to_string(kMaxLineLength) + " bytes");
      current += ' ';
      current += body;
      continue;
    }
    flush();
    current = std::string(body);
    current_line = number;
  }
  flush();
}

// Postfix's list syntax: items separated by white space or commas; "{ ... }" is one item.
std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',') {
      ++i;
      continue;
    }
    std::size_t start = i;
    int depth = 0;
    while (i < text.size()) {
      char d = text[i];
      if (d == '{') ++depth;
      if (d == '}' && depth > 0) --depth;
      if (depth == 0 && (std::isspace(static_cast<unsigned char>(d)) || d == ',')) break;
      ++i;
    }
    out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

// join() for the report: "(none)" for no items.
std::string listed(const std::vector<std::string>& items) {
  return items.empty() ? "(none)" : join(items);
}

// Whether a main.cf value names $name, ${name...} or $(name...).
bool references(const std::string& value, const std::string& name) {
  for (auto at = value.find('$'); at != std::string::npos; at = value.find('$', at + 1)) {
    std::size_t start = at + 1;
    if (start < value.size() && (value[start] == '{' || value[start] == '(')) ++start;
    if (value.compare(start, name.size(), name) != 0) continue;
    std::size_t end = start + name.size();
    if (end == value.size() ||
        !(std::isalnum(static_cast<unsigned char>(value[end])) || value[end] == '_'))
      return true;
  }
  return false;
}

bool is_ipv4(const std::string& s) {
  in_addr a;
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}
bool is_ipv6(const std::string& s) {
  in6_addr a;
  return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// A network as Estafette's relay_clients wants it (host bits clear), or nullopt.
std::optional<std::string> network(std::string item, bool* host_bits) {
  *host_bits = false;
  std::string prefix;
  if (auto slash = item.find('/'); slash != std::string::npos) {
    prefix = item.substr(slash + 1);
    item.erase(slash);
  }
  if (item.size() > 2 && item.front() == '[' && item.back() == ']')
    item = item.substr(1, item.size() - 2);
  unsigned char bytes[16];
  int family = ::inet_pton(AF_INET, item.c_str(), bytes) == 1    ? AF_INET
               : ::inet_pton(AF_INET6, item.c_str(), bytes) == 1 ? AF_INET6
                                                                 : 0;
  if (!family) return std::nullopt;
  int bits = family == AF_INET ? 32 : 128;
  if (!prefix.empty()) {
    if (prefix.size() > 3 || !std::all_of(prefix.begin(), prefix.end(), ::isdigit))
      return std::nullopt;
    int p = std::stoi(prefix);
    if (p > bits) return std::nullopt;
    for (int b = p; b < bits; ++b) {
      unsigned char mask = static_cast<unsigned char>(0x80 >> (b % 8));
      if (bytes[b / 8] & mask) *host_bits = true;
      bytes[b / 8] &= static_cast<unsigned char>(~mask);
    }
    bits = p;
  }
  char text[INET6_ADDRSTRLEN];
  ::inet_ntop(family, bytes, text, sizeof text);
  return std::string(text) + "/" + std::to_string(bits);
}

// "[host]:port", "host:port", "[host]", "host", "[v6]:port" -> host, port, bracketed.
struct NextHop {
  std::string host;
  int port = 25;
  bool bracketed = false;
};
std::optional<NextHop> parse_nexthop(std::string_view text, int default_port) {
  NextHop hop;
  hop.port = default_port;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    hop.host = text.substr(1, close - 1);
    hop.bracketed = true;
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    auto colon = text.rfind(':');
    hop.host = text.substr(0, colon);
    if (colon != std::string_view::npos) port = text.substr(colon + 1);
  }
  if (hop.host.empty()) return std::nullopt;
  for (char c : hop.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '_'))
      return std::nullopt;
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return std::nullopt;
    hop.port = std::stoi(std::string(port));
    if (hop.port < 1 || hop.port > 65535) return std::nullopt;
  }
  return hop;
}

bool is_domain(const std::string& d) {
  if (d.empty() || d.size() > 253) return false;
  for (char c : d)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'))
      return false;
  return d.front() != '-';
}

// Postfix's time units (s, m, h, d, w; a bare number takes the parameter's unit) -> Estafette's.
std::optional<std::string> duration(std::string v, char default_unit) {
  v = lower(trim(v));
  if (v.empty()) return std::nullopt;
  char unit = default_unit;
  if (std::isalpha(static_cast<unsigned char>(v.back()))) {
    unit = v.back();
    v.pop_back();
  }
  if (v.empty() || v.size() > 9 || !std::all_of(v.begin(), v.end(), ::isdigit)) return std::nullopt;
  long n = std::stol(v);
  if (unit == 'w') return std::to_string(n * 7) + "d";
  if (unit != 's' && unit != 'm' && unit != 'h' && unit != 'd') return std::nullopt;
  return std::to_string(n) + unit;
}

}  // namespace

MainCf parse_main_cf(const std::string& text, const std::string& file) {
  if (text.size() > kMaxMainCfSize)
    throw ImportError(file + ": larger than " + std::to_string(kMaxMainCfSize) + " bytes");
  MainCf cf;
  cf.file = file;
  for_each_logical_line(text, file, [&](const std::string& line, int number) {
    auto eq = line.find('=');
    if (eq == std::string::npos)
      throw ImportError(where(file, number) + ": expected 'name = value'");
    std::string name(trim(std::string_view(line).substr(0, eq)));
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        }))
      throw ImportError(where(file, number) + ": bad parameter name '" + name + "'");
    cf.params[name] = {std::string(trim(std::string_view(line).substr(eq + 1))), number};
  });
  return cf;
}

std::optional<std::string> default_value(const std::string& name, const System& system) {
  static const std::map<std::string, std::string> kDefaults = {
      {"mydomain", ""},  // computed below
      {"myorigin", "$myhostname"},
      {"mydestination", "$myhostname, localhost.$mydomain, localhost"},
      {"mynetworks", ""},  // computed from mynetworks_style
      {"mynetworks_style", "host"},
      {"relayhost", ""},
      {"relay_domains", ""},
      {"message_size_limit", "10240000"},
      {"virtual_maps", ""},
      {"virtual_alias_maps", "$virtual_maps"},
      {"virtual_alias_domains", "$virtual_alias_maps"},
      {"virtual_mailbox_maps", ""},
      {"virtual_mailbox_domains", "$virtual_mailbox_maps"},
      {"virtual_mailbox_base", ""},
      {"alias_maps", "hash:/etc/aliases"},
      {"alias_database", "hash:/etc/aliases"},
      {"local_recipient_maps", "proxy:unix:passwd.byname $alias_maps"},
      {"home_mailbox", ""},
      {"mailbox_command", ""},
      {"transport_maps", ""},
      {"smtpd_milters", ""},
      {"non_smtpd_milters", ""},
      {"milter_default_action", "tempfail"},
      {"smtpd_tls_security_level", ""},
      {"smtpd_use_tls", "no"},
      {"smtpd_enforce_tls", "no"},
      {"smtpd_tls_cert_file", ""},
      {"smtpd_tls_key_file", "$smtpd_tls_cert_file"},
      {"smtpd_tls_chain_files", ""},
      {"smtpd_client_restrictions", ""},
      {"smtpd_helo_restrictions", ""},
      {"smtpd_sender_restrictions", ""},
      {"smtpd_relay_restrictions",
       "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"},
      {"smtpd_recipient_restrictions", ""},
      {"smtpd_data_restrictions", ""},
      {"inet_interfaces", "all"},
      {"inet_protocols", "all"},
      {"compatibility_level", "0"},
      {"config_directory", system.config_directory},
      {"queue_directory", "/var/spool/postfix"},
      {"data_directory", "/var/lib/postfix"},
      {"daemon_directory", "/usr/lib/postfix/sbin"},
      {"command_directory", "/usr/sbin"},
      {"mail_name", "Postfix"},
      {"mail_owner", "postfix"},
      {"smtpd_banner", "$myhostname ESMTP $mail_name (Debian/GNU)"},
  };
  if (name == "myhostname") return system.hostname;
  if (name == "mydomain") return "";  // expand() derives it from myhostname
  auto it = kDefaults.find(name);
  if (it == kDefaults.end()) return std::nullopt;
  return it->second;
}

namespace {

class Expander {
 public:
  Expander(const MainCf& cf, const System& system, std::vector<std::string>* unknown)
      : cf_(cf), system_(system), unknown_(unknown) {}

  std::string value(const std::string& name, int depth, const std::string& from) {
    if (depth > kMaxExpansionDepth)
      throw ImportError(from + ": $" + name + ": expansion deeper than " +
                        std::to_string(kMaxExpansionDepth) + " levels (a loop?)");
    if (auto it = cf_.params.find(name); it != cf_.params.end())
      return run(it->second.value, depth + 1, from);
    if (name == "mydomain") {  // myhostname without its first label, else "localdomain"
      std::string host = value("myhostname", depth + 1, from);
      auto dot = host.find('.');
      return dot == std::string::npos || dot + 1 == host.size() ? "localdomain"
                                                                : host.substr(dot + 1);
    }
    auto d = default_value(name, system_);
    if (!d) {
      if (unknown_ && std::find(unknown_->begin(), unknown_->end(), name) == unknown_->end())
        unknown_->push_back(name);
      return "";
    }
    return run(*d, depth + 1, from);
  }

  std::string run(std::string_view text, int depth, const std::string& from) {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
      if (out.size() > kMaxExpansionSize)
        throw ImportError(from + ": expands to more than " + std::to_string(kMaxExpansionSize) +
                          " bytes");
      char c = text[i];
      if (c != '$') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 < text.size() && text[i + 1] == '$') {
        out += '$';
        i += 2;
        continue;
      }
      std::size_t start = i + 1;
      if (start < text.size() && (text[start] == '{' || text[start] == '(')) {
        char close = text[start] == '{' ? '}' : ')';
        // Find the matching close, counting nested opens (${a?${b}}).
        int nest = 0;
        std::size_t end = start + 1;
        for (; end < text.size(); ++end) {
          if (text[end] == text[start]) ++nest;
          if (text[end] == close) {
            if (nest == 0) break;
            --nest;
          }
        }
        if (end >= text.size())
          throw ImportError(from + ": '$" + std::string(1, text[start]) + "' without '" +
                            std::string(1, close) + "'");
        std::string_view inner = text.substr(start + 1, end - start - 1);
        auto op = inner.find_first_of("?:");
        std::string name(inner.substr(0, op));
        std::string v = value(name, depth, from);
        if (op == std::string_view::npos)
          out += v;
        else if ((inner[op] == '?') == !v.empty())
          out += run(inner.substr(op + 1), depth + 1, from);
        i = end + 1;
        continue;
      }
      std::size_t end = start;
      while (end < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
        ++end;
      if (end == start) {  // a lone '$': kept, as Postfix does
        out += '$';
        ++i;
        continue;
      }
      out += value(std::string(text.substr(start, end - start)), depth, from);
      i = end;
    }
    if (out.size() > kMaxExpansionSize)
      throw ImportError(from + ": expands to more than " + std::to_string(kMaxExpansionSize) +
                        " bytes");
    return out;
  }

 private:
  const MainCf& cf_;
  const System& system_;
  std::vector<std::string>* unknown_;
};

}  // namespace

std::string expand(const MainCf& cf, const std::string& name, const System& system,
                   std::vector<std::string>* unknown) {
  auto it = cf.params.find(name);
  std::string from = it != cf.params.end() ? where(cf.file, it->second.line)
                                           : cf.file + ": (default of " + name + ")";
  return Expander(cf, system, unknown).value(name, 0, from);
}

Table parse_table(const std::string& text, const std::string& file, bool aliases_format) {
  if (text.size() > kMaxTableSize)
    throw ImportError(file + ": larger than " + std::to_string(kMaxTableSize) + " bytes");
  Table table;
  table.file = file;
  std::set<std::string> seen;
  for_each_logical_line(text, file, [&](const std::string& line, int number) {
    std::string key, value;
    if (aliases_format) {
      std::size_t colon = line.find(':');
      if (!line.empty() && line[0] == '"') {  // "a quoted name": ...
        auto close = line.find('"', 1);
        colon = close == std::string::npos ? close : line.find(':', close);
      }
      if (colon == std::string::npos)
        throw ImportError(where(file, number) + ": expected 'name: value'");
      key = std::string(trim(std::string_view(line).substr(0, colon)));
      value = std::string(trim(std::string_view(line).substr(colon + 1)));
    } else {
      auto blank = line.find_first_of(" \t");
      key = line.substr(0, blank);
      if (blank != std::string::npos)
        value = std::string(trim(std::string_view(line).substr(blank)));
    }
    if (key.empty()) throw ImportError(where(file, number) + ": no key");
    key = lower(key);
    if (!seen.insert(key).second) return;  // postmap keeps the first
    table.entries.push_back({key, value, number});
  });
  return table;
}

std::string Import::report() const {
  std::string out = "# estafette import-postfix: what each Postfix setting became\n";
  out += "translated:\n";
  for (const auto& t : translated) out += "  " + t + "\n";
  out += "not translated:\n";
  for (const auto& n : not_translated) out += "  " + n + "\n";
  return out;
}

namespace {

// The translation, one Postfix concern per method; each records in the report what it did
// with every parameter it read.
class Translator {
 public:
  Translator(const MainCf& cf, const System& system, const Reader& read)
      : cf_(cf), system_(system), read_(read) {}

  Import run() {
    identity();
    local_domains();
    relay();
    tls_and_listen();
    hosted();
    aliases();
    transports();
    restrictions();
    milters();
    simple_settings();
    unknown_parameters();
    write_conf();
    return std::move(out_);
  }

 private:
  // ---- helpers
  std::string get(const std::string& name) {
    read_names_.insert(name);
    return expand(cf_, name, system_, &unknown_refs_);
  }
  bool given(const std::string& name) const { return cf_.params.count(name) > 0; }
  std::string shown(const std::string& name) {
    auto v = get(name);
    return name + " = " + v + (given(name) ? "" : " (Postfix's default)");
  }
  void yes(const std::string& text) { out_.translated.push_back(text); }
  void no(const std::string& text) { out_.not_translated.push_back(text); }
  void set(const std::string& key, const std::string& value) {
    for (auto& kv : conf_)
      if (kv.first == key) {
        kv.second = value;
        return;
      }
    conf_.emplace_back(key, value);
  }

  // A table reference "type:name" -> its entries, or nullopt (and why, in the report, for
  // `owner`). hash, btree, lmdb, cdb, dbm and texthash are built from (or are) a source file of
  // that name; proxy: is looked through.
  std::optional<Table> table(std::string ref, const std::string& owner, bool aliases_format) {
    if (ref.starts_with("proxy:")) ref = ref.substr(6);
    auto colon = ref.find(':');
    std::string type = colon == std::string::npos ? "" : ref.substr(0, colon);
    static const std::set<std::string> kFileTypes = {"hash", "btree", "lmdb",
                                                     "cdb",  "dbm",   "texthash"};
    if (!kFileTypes.count(type)) {
      no(owner + ": table " + ref + ": " +
         (type.empty() ? "not a table" : "a " + type + ": table cannot be read") +
         " (import-postfix reads hash:, btree:, lmdb:, cdb:, dbm: and texthash: sources)");
      return std::nullopt;
    }
    std::string path = ref.substr(colon + 1);
    if (path.empty() || path[0] != '/') {
      no(owner + ": table " + ref + ": not an absolute path");
      return std::nullopt;
    }
    std::string error;
    auto text = read_(path, kMaxTableSize, &error);
    if (!text) {
      no(owner + ": table " + ref + ": cannot read its source " + path + ": " + error);
      return std::nullopt;
    }
    return parse_table(*text, path, aliases_format);
  }

  // A domain list (mydestination, relay_domains, virtual_*_domains): domains, and the domain
  // keys of the tables it names.
  std::vector<std::string> domain_list(const std::string& name) {
    std::vector<std::string> out;
    for (auto& item : split_list(get(name))) {
      if (item.find(':') != std::string::npos) {
        if (auto t = table(item, name, false))
          for (const auto& e : t->entries)
            if (e.key.find('@') == std::string::npos && is_domain(e.key)) out.push_back(e.key);
        continue;
      }
      if (item[0] == '/') {
        no(name + ": " + item + ": a file of patterns is not read; list its domains");
        continue;
      }
      std::string d = lower(item);
      while (!d.empty() && d.back() == '.') d.pop_back();
      if (!is_domain(d)) {
        no(name + ": '" + item + "' is not a domain");
        continue;
      }
      if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
    }
    return out;
  }

  // compatibility_level's major number (0 when unset, as Postfix before 3.0 behaved).
  int compatibility_level() {
    try {
      return std::stoi(get("compatibility_level"));
    } catch (const std::exception&) {
      return 0;
    }
  }

  // ---- the concerns
  void identity() {
    auto host = get("myhostname");
    set("hostname", host);
    yes(shown("myhostname") + " -> hostname = " + host);
    auto origin = get("myorigin");
    if (origin == host)
      yes(shown("myorigin") + " -> the same as hostname (estafette-sendmail qualifies with it)");
    else
      no(shown("myorigin") +
         ": Estafette qualifies bare addresses of local submissions with hostname (" + host +
         "), not with a domain of their own");
    yes(shown("mydomain") + " -> used in the values above and below");
    yes(shown("compatibility_level") +
        " -> Postfix's defaults at this level (mynetworks_style, the subdomains of relay_domains)");
  }

  void local_domains() {
    locals_ = domain_list("mydestination");
    if (!locals_.empty()) set("local_domains", join(locals_));
    yes(shown("mydestination") + " -> local_domains = " + listed(locals_));
    auto recipients = get("local_recipient_maps");
    if (locals_.empty()) {
      for (const char* n : {"local_recipient_maps", "home_mailbox", "mailbox_command"})
        if (given(n)) yes(shown(n) + " -> nothing: no local domains (mydestination is empty)");
      return;
    }
    if (trim(recipients).empty()) {
      set("local_mailboxes", "create");
      yes(shown("local_recipient_maps") +
          " -> local_mailboxes = create (every local part is accepted; Postfix bounces an "
          "unknown one later, Estafette delivers it to a new Maildir under maildir_root)");
    } else {
      set("local_mailboxes", "system");
      yes(shown("local_recipient_maps") +
          " -> local_mailboxes = system (system users and aliases are recipients; others get 550 "
          "at RCPT)");
    }
    auto home = get("home_mailbox");
    if (home == "Maildir/")
      yes(shown("home_mailbox") + " -> local_mailboxes = system delivers to ~USER/Maildir/");
    else
      no(shown("home_mailbox") + ": Estafette delivers local users to ~USER/Maildir/" +
         (home.empty() ? ", not to /var/mail/USER (mbox)" : ", not to " + home));
    if (auto cmd = get("mailbox_command"); !cmd.empty())
      no(shown("mailbox_command") + ": not run; a user's ~/.forward can name a program");
  }

  void relay() {
    std::vector<std::string> clients;
    if (given("mynetworks")) {
      for (auto& item : split_list(get("mynetworks"))) {
        bool host_bits = false;
        if (auto n = network(item, &host_bits)) {
          clients.push_back(*n);
          if (host_bits) yes("mynetworks: " + item + " has host bits set: written as " + *n);
        } else {
          no("mynetworks: '" + item +
             "': not an address or network (names, files and tables "
             "are not read)");
        }
      }
      yes(shown("mynetworks") + " -> relay_clients = " + listed(clients));
    } else {
      auto style = get("mynetworks_style");
      if (!given("mynetworks_style") && compatibility_level() < 2) style = "subnet";
      clients = {"127.0.0.0/8", "::1/128"};
      yes("mynetworks unset, mynetworks_style = " + style +
          " -> relay_clients = 127.0.0.0/8, ::1/128 (this host's other addresses" +
          (style == "host" ? "" : " and networks") + " are not added)");
    }
    if (!clients.empty()) set("relay_clients", join(clients));

    auto domains = domain_list("relay_domains");
    const int level = compatibility_level();
    std::vector<std::string> written = domains;
    if (level < 3)  // parent_domain_matches_subdomains still names relay_domains
      for (const auto& d : domains) written.push_back("." + d);
    if (!written.empty()) set("relay_domains", join(written));
    yes(shown("relay_domains") + " -> relay_domains = " + listed(written) +
        (level < 3 && !domains.empty()
             ? " (compatibility_level < 3: subdomains match too, as Postfix's "
               "parent_domain_matches_subdomains)"
             : ""));

    auto relayhost = get("relayhost");
    auto hosts = split_list(relayhost);
    if (!hosts.empty()) {
      auto hop = parse_nexthop(hosts[0], 25);
      if (!hop) {
        no(shown("relayhost") + ": '" + hosts[0] + "' is not [host]:port");
      } else {
        smarthost_ = hop->bracketed || hop->port != 25
                         ? "[" + hop->host + "]:" + std::to_string(hop->port)
                         : hop->host;
        set("smarthost", smarthost_);
        yes(shown("relayhost") + " -> smarthost = " + smarthost_ +
            (hop->bracketed ? ""
                            : " (Postfix looks up " + hop->host +
                                  "'s MX records; Estafette connects to its addresses)"));
        if (hosts.size() > 1)
          no("relayhost: " + join(std::vector<std::string>(hosts.begin() + 1, hosts.end())) +
             ": Estafette has one smarthost; only the first is used");
      }
    }
    auto size = get("message_size_limit");
    if (!size.empty() && std::all_of(size.begin(), size.end(), ::isdigit) && size.size() < 13) {
      auto n = std::stoull(size);
      if (n == 0) {
        no(shown("message_size_limit") + ": no limit; Estafette keeps its max_message_size");
      } else {
        set("max_message_size", size);
        std::string also;
        if (n > (256ull << 20)) {
          set("message_memory_budget", size);
          also = ", message_memory_budget = " + size + " (it must be at least the size)";
        }
        yes(shown("message_size_limit") + " -> max_message_size = " + size + also);
      }
    } else {
      no(shown("message_size_limit") + ": not a number of bytes");
    }
  }

  void tls_and_listen() {
    auto level = get("smtpd_tls_security_level");
    if (level.empty()) {
      level = get("smtpd_enforce_tls") == "yes" ? "encrypt"
              : get("smtpd_use_tls") == "yes"   ? "may"
                                                : "none";
    }
    bool tls = level == "may" || level == "encrypt";
    auto chain = split_list(get("smtpd_tls_chain_files"));
    auto cert = get("smtpd_tls_cert_file");
    auto key = get("smtpd_tls_key_file");
    if (!tls) {
      if (!cert.empty() || !chain.empty())
        no(shown("smtpd_tls_cert_file") + ": Postfix's smtpd offers no TLS (security level " +
           level + "); Estafette would offer STARTTLS with a certificate, so none is written");
    } else if (!chain.empty()) {
      set("tls_cert_file", join(chain));
      yes(shown("smtpd_tls_chain_files") + " -> tls_cert_file = " + join(chain) +
          " (each key in its file)");
    } else if (!cert.empty()) {
      set("tls_cert_file", cert);
      if (!key.empty() && key != cert) set("tls_key_file", key);
      yes(shown("smtpd_tls_cert_file") + " -> tls_cert_file = " + cert);
      yes(shown("smtpd_tls_key_file") + " -> " +
          (key.empty() || key == cert ? "the key in the certificate file"
                                      : "tls_key_file = " + key));
    } else {
      no("smtpd_tls_security_level = " + level +
         ": no certificate (smtpd_tls_cert_file), so no TLS");
      tls = false;
    }
    if (given("smtpd_tls_security_level") || given("smtpd_use_tls"))
      yes("smtpd_tls_security_level = " + level + " -> STARTTLS offered " +
          (level == "encrypt" ? "and required (listen option tls_required)"
           : tls              ? "when a certificate is set"
                              : "never"));

    std::vector<std::string> listen;
    auto protocols = get("inet_protocols");
    bool v4 = protocols.find("ipv4") != std::string::npos || protocols == "all";
    bool v6 = protocols.find("ipv6") != std::string::npos || protocols == "all";
    std::string option = level == "encrypt" && tls ? " mx tls_required" : " mx";
    for (auto& item : split_list(get("inet_interfaces"))) {
      item = lower(item);
      if (item == "all") {
        if (v4) listen.push_back("0.0.0.0:25" + option);
        if (v6) listen.push_back("[::]:25" + option);
      } else if (item == "loopback-only" || item == "localhost") {
        if (v4) listen.push_back("127.0.0.1:25" + option);
        if (v6) listen.push_back("[::1]:25" + option);
      } else if (is_ipv4(item)) {
        listen.push_back(item + ":25" + option);
      } else if (item.size() > 2 && item.front() == '[' &&
                 is_ipv6(item.substr(1, item.size() - 2))) {
        listen.push_back(item + ":25" + option);
      } else if (is_ipv6(item)) {
        listen.push_back("[" + item + "]:25" + option);
      } else {
        no("inet_interfaces: '" + item + "': a name is not resolved; give its address");
      }
    }
    if (!listen.empty()) set("listen", join(listen));
    yes(shown("inet_interfaces") + ", " + shown("inet_protocols") + " -> listen = " + join(listen) +
        " (master.cf is not read: port 25 for the smtp service is assumed; submission and "
        "other services are not translated)");
  }

  void hosted() {
    std::vector<std::string> domains = domain_list("virtual_mailbox_domains");
    auto alias_domains = domain_list("virtual_alias_domains");
    for (const auto& d : alias_domains)
      if (std::find(domains.begin(), domains.end(), d) == domains.end()) domains.push_back(d);
    for (auto it = domains.begin(); it != domains.end();) {
      if (std::find(locals_.begin(), locals_.end(), *it) != locals_.end()) {
        no("virtual domain " + *it + ": also in mydestination (Postfix warns); it stays local");
        it = domains.erase(it);
      } else {
        ++it;
      }
    }
    hosted_ = domains;
    if (!domains.empty()) {
      std::string text;
      for (const auto& d : domains) text += d + "\n";
      out_.files["hosteddomains"] = text;
      set("hosteddomains", "hosteddomains");
    }
    yes(shown("virtual_mailbox_domains") + ", " + shown("virtual_alias_domains") +
        " -> hosteddomains: " + listed(domains) +
        " (an address there exists only when a mailbox or an alias names it)");

    auto base = get("virtual_mailbox_base");
    std::string mailboxes;
    int count = 0;
    for (auto& item : split_list(get("virtual_mailbox_maps"))) {
      auto t = table(item, "virtual_mailbox_maps", false);
      if (!t) continue;
      for (const auto& e : t->entries) {
        auto at = e.key.find('@');
        std::string loc = where(t->file, e.line);
        if (at == std::string::npos) continue;  // a domain key: virtual_mailbox_domains' lookup
        if (at == 0) {
          no(loc + ": " + e.key + ": a catch-all mailbox; Estafette has none");
          continue;
        }
        std::string domain = e.key.substr(at + 1);
        if (std::find(domains.begin(), domains.end(), domain) == domains.end()) {
          no(loc + ": " + e.key + ": " + domain + " is not a virtual mailbox domain");
          continue;
        }
        if (e.value.empty() || e.value[0] == '/' || e.value.find("..") != std::string::npos ||
            e.value.find_first_of(" \t") != std::string::npos) {
          no(loc + ": " + e.key + ": mailbox '" + e.value +
             "' is not a path under "
             "virtual_mailbox_base");
          continue;
        }
        if (e.value.back() != '/')
          no(loc + ": " + e.key + ": " + e.value +
             " is an mbox file for Postfix; Estafette writes a Maildir there instead");
        mailboxes += e.key + ": " + e.value + "\n";
        ++count;
      }
    }
    if (count) {
      out_.files["hosted_mailboxes"] = mailboxes;
      set("hosted_mailboxes", "hosted_mailboxes");
      if (!base.empty()) set("maildir_root", base);
    }
    yes(shown("virtual_mailbox_maps") + " -> hosted_mailboxes: " + std::to_string(count) +
        " mailboxes");
    if (count) yes(shown("virtual_mailbox_base") + " -> maildir_root = " + base);
    for (const char* n : {"virtual_uid_maps", "virtual_gid_maps", "virtual_minimum_uid"})
      if (given(n))
        no(shown(n) + ": Estafette writes hosted mailboxes as its own user (the user setting)");
  }

  // An alias target list: split on commas (double quotes keep them).
  static std::vector<std::string> targets(const std::string& value) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    for (char c : value) {
      if (c == '"') quoted = !quoted;
      if (c == ',' && !quoted) {
        if (auto t = trim(cur); !t.empty()) out.emplace_back(t);
        cur.clear();
        continue;
      }
      cur += c;
    }
    if (auto t = trim(cur); !t.empty()) out.emplace_back(t);
    return out;
  }

  // Adds "key: targets" to text; false when nothing was written (the reason is in the report).
  bool add_alias(const std::string& key, std::vector<std::string> values, const std::string& loc,
                 std::set<std::string>& keys, std::string& text, bool* programs) {
    std::vector<std::string> kept;
    for (auto& v : values) {
      std::string bare = v;
      if (bare.size() > 1 && bare.front() == '"' && bare.back() == '"')
        bare = bare.substr(1, bare.size() - 2);
      if (!bare.empty() && bare[0] == '/') {
        no(loc + ": " + key + ": target " + v + ": delivery to a file; Estafette has none");
        continue;
      }
      if (!bare.empty() && bare[0] == '|') *programs = true;
      kept.push_back(v);
    }
    if (kept.empty()) return false;
    if (!keys.insert(key).second) {
      no(loc + ": " + key +
         ": named before (virtual aliases come first, as Postfix applies them "
         "first); this one is left out");
      return false;
    }
    text += key + ": " + join(kept) + "\n";
    return true;
  }

  void aliases() {
    std::string text;
    std::set<std::string> keys;
    bool programs = false;
    int virtual_count = 0, local_count = 0;
    auto origin = get("myorigin");
    for (auto& item : split_list(get("virtual_alias_maps"))) {
      auto t = table(item, "virtual_alias_maps", false);
      if (!t) continue;
      for (const auto& e : t->entries) {
        std::string loc = where(t->file, e.line);
        auto at = e.key.find('@');
        if (at == std::string::npos && e.key.find('.') != std::string::npos &&
            std::find(hosted_.begin(), hosted_.end(), e.key) != hosted_.end())
          continue;  // "domain anything": virtual_alias_domains' lookup
        if (at == 0) {
          no(loc + ": " + e.key + ": a catch-all alias; Estafette has none");
          continue;
        }
        if (at == std::string::npos)
          no(loc + ": " + e.key +
             ": a bare local part matches it in every local domain in "
             "Estafette (Postfix: in $myorigin, $mydestination and $inet_interfaces)");
        std::vector<std::string> values;
        for (auto& v : targets(e.value))  // Postfix appends @$myorigin to a bare result
          values.push_back(v.find('@') == std::string::npos && v[0] != '|' && v[0] != '/' &&
                                   v[0] != '"'
                               ? v + "@" + origin
                               : v);
        if (add_alias(e.key, values, loc, keys, text, &programs)) ++virtual_count;
      }
    }
    yes(shown("virtual_alias_maps") + " -> aliases: " + std::to_string(virtual_count) +
        " addresses (bare targets qualified with @" + origin + ")");
    if (!locals_.empty()) {
      for (auto& item : split_list(get("alias_maps"))) {
        auto t = table(item, "alias_maps", true);
        if (!t) continue;
        for (const auto& e : t->entries) {
          std::string loc = where(t->file, e.line);
          if (e.key.find('@') != std::string::npos) {
            no(loc + ": " + e.key + ": local aliases are local parts");
            continue;
          }
          if (add_alias(e.key, targets(e.value), loc, keys, text, &programs)) ++local_count;
        }
      }
      yes(shown("alias_maps") + " -> aliases: " + std::to_string(local_count) +
          " local parts (each in every local domain)");
    } else {
      get("alias_maps");
      no(shown("alias_maps") + ": no local domains (mydestination is empty), so no local aliases");
    }
    if (given("alias_database")) yes(shown("alias_database") + " -> (newaliases builds nothing)");
    if (!text.empty()) {
      out_.files["aliases"] = text;
      set("aliases", "aliases");
    }
    if (programs) {
      set("allow_program_delivery", "yes");
      yes("aliases with |command targets -> allow_program_delivery = yes");
    }
  }

  void transports() {
    std::string routes;
    int count = 0;
    for (auto& item : split_list(get("transport_maps"))) {
      auto t = table(item, "transport_maps", false);
      if (!t) continue;
      for (const auto& e : t->entries) {
        std::string loc = where(t->file, e.line) + ": " + e.key + " " + e.value;
        if (e.key.find('@') != std::string::npos) {
          no(loc + ": routes per address; Estafette routes domains");
          continue;
        }
        auto colon = e.value.find(':');
        std::string transport = e.value.substr(0, colon);
        std::string nexthop = colon == std::string::npos ? "" : e.value.substr(colon + 1);
        if (transport != "smtp" && transport != "relay") {
          no(loc + ": transport " + transport + ": Estafette routes only to SMTP hosts");
          continue;
        }
        if (nexthop.empty()) {
          if (smarthost_.empty() && e.key != "*")
            yes(loc + " -> no route: MX delivery, as without one");
          else
            no(loc +
               ": MX delivery for this domain despite the smarthost; Estafette has no "
               "route for that");
          continue;
        }
        auto hop = parse_nexthop(nexthop, 25);
        if (!hop) {
          no(loc + ": next hop '" + nexthop + "' is not [host]:port");
          continue;
        }
        std::string host = is_ipv6(hop->host) ? "[" + hop->host + "]" : hop->host;
        std::string target = host + "," + std::to_string(hop->port);
        std::string note = hop->bracketed ? ""
                                          : " (Postfix looks up MX records of " + hop->host +
                                                "; Estafette connects to its addresses)";
        if (e.key == "*") {
          smarthost_ = "[" + hop->host + "]:" + std::to_string(hop->port);
          set("smarthost", smarthost_);
          yes(loc + " -> smarthost = " + smarthost_ + " (it wins over relayhost)" + note);
          continue;
        }
        if (!is_domain(e.key[0] == '.' ? e.key.substr(1) : e.key)) {
          no(loc + ": '" + e.key + "' is not a domain");
          continue;
        }
        routes += e.key + ": " + target + "\n";
        ++count;
        yes(loc + " -> esmtproutes: " + e.key + ": " + target + note);
      }
    }
    if (!routes.empty()) {
      out_.files["esmtproutes"] = routes;
      set("esmtproutes", "esmtproutes");
    }
    yes(shown("transport_maps") + " -> esmtproutes: " + std::to_string(count) + " routes");
  }

  // "inet:host:port", "inet:port", "unix:path", "/path" -> Estafette's socket spec.
  std::optional<std::string> socket(std::string spec, const std::string& queue_dir) {
    if (spec.starts_with("inet:")) {
      std::string rest = spec.substr(5);
      if (rest.find(':') == std::string::npos) rest = "localhost:" + rest;
      auto hop = parse_nexthop(rest, 0);
      if (!hop || hop->port == 0) return std::nullopt;
      return std::string(is_ipv6(hop->host) ? "inet6:" : "inet:") + std::to_string(hop->port) +
             "@" + hop->host;
    }
    if (spec.starts_with("unix:") || spec.starts_with("local:"))
      spec = spec.substr(spec.find(':') + 1);
    if (spec.empty() || spec.find(':') != std::string::npos) return std::nullopt;
    if (spec[0] != '/') spec = queue_dir + "/" + spec;  // relative to the queue (private/...)
    return "unix:" + spec;
  }

  void restrictions() {
    std::string dnsbl;
    bool sender_dns = false;
    static const std::set<std::string> kRelayRule = {"permit_mynetworks",
                                                     "permit_sasl_authenticated",
                                                     "reject_unauth_destination",
                                                     "defer_unauth_destination",
                                                     "permit",
                                                     "permit_auth_destination"};
    auto queue_dir = get("queue_directory");
    for (const char* name :
         {"smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
          "smtpd_relay_restrictions", "smtpd_recipient_restrictions", "smtpd_data_restrictions"}) {
      auto items = split_list(get(name));
      std::vector<std::string> done, relay_rule;
      std::string permit;  // the first permit_* before a check: Postfix skips the check then
      for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& r = items[i];
        bool has_arg = i + 1 < items.size();
        if (permit.empty() && r.starts_with("permit")) permit = r;
        std::string skipped = permit.empty() ? ""
                                             : ": Estafette asks it for every client; " + permit +
                                                   " before it does not skip it as in Postfix";
        if (kRelayRule.count(r)) {
          relay_rule.push_back(r);
        } else if ((r == "reject_rbl_client" || r == "permit_dnswl_client") && has_arg) {
          std::string arg = items[++i];
          auto eq = arg.find('=');
          std::string zone = arg.substr(0, eq);
          std::string filter = eq == std::string::npos ? "-" : arg.substr(eq + 1);
          bool allow = r == "permit_dnswl_client";
          dnsbl += zone + " " + filter + " " + (allow ? "-100" : "1") + "\n";
          done.push_back(r + " " + arg + " -> dnsbl: " + zone + " " + filter +
                         (allow ? " weight -100 (an allow list)" : " weight 1"));
          if (!skipped.empty() && !allow) no(std::string(name) + ": " + r + " " + arg + skipped);
        } else if (r == "check_policy_service" && has_arg) {
          std::string arg = items[++i];
          std::string spec = arg;
          if (spec.front() == '{') {  // { inet:..., timeout=..., default_action=... }
            auto inner = split_list(spec.substr(1, spec.size() - 2));
            spec = inner.empty() ? "" : inner[0];
            if (inner.size() > 1)
              no(std::string(name) + ": " + arg +
                 ": per-service options are not translated (policy_timeout and "
                 "policy_default_action apply to every service)");
          }
          if (auto s = socket(spec, queue_dir)) {
            policies_.push_back("policy:" + *s);
            done.push_back(r + " " + arg + " -> filters: policy:" + *s);
            if (!skipped.empty()) no(std::string(name) + ": " + r + " " + arg + skipped);
          } else {
            no(std::string(name) + ": check_policy_service " + arg + ": not inet: or unix:");
          }
        } else if (r == "reject_unknown_sender_domain") {
          sender_dns = true;
          done.push_back(r + " -> BOFHCHECKDNS = yes");
        } else {
          if (r.starts_with("check_") || r.starts_with("reject_rhsbl") ||
              r == "reject_rbl_client" || r == "permit_dnswl_client")
            if (has_arg) ++i;  // its table or zone
          no(std::string(name) + ": " + r + ": not translated (no such check in Estafette)");
        }
      }
      if (!relay_rule.empty())
        done.insert(done.begin(), join(relay_rule) +
                                      " -> Estafette's relay rule (relay_clients, authenticated "
                                      "clients and our domains may relay; others are refused)");
      if (!done.empty()) yes(shown(name) + ": " + join(done, "; "));
    }
    set("BOFHCHECKDNS", sender_dns ? "yes" : "no");
    if (!sender_dns)
      yes("no reject_unknown_sender_domain -> BOFHCHECKDNS = no (Postfix accepts any sender "
          "domain without it)");
    if (!dnsbl.empty()) {
      out_.files["dnsbl"] = dnsbl;
      set("dnsbl", "dnsbl");
      yes("DNS lists -> dnsbl, dnsbl_action = reject_rcpt (550 5.7.1 at RCPT; Postfix answers "
          "554 5.7.1), dnsbl_threshold = 1");
    }
  }

  void milters() {
    auto queue_dir = get("queue_directory");
    std::vector<std::string> filters;
    auto smtpd = get("smtpd_milters");
    for (auto& item : split_list(smtpd)) {
      std::string spec = item;
      if (spec.front() == '{') {
        auto inner = split_list(spec.substr(1, spec.size() - 2));
        spec = inner.empty() ? "" : inner[0];
        if (inner.size() > 1)
          no("smtpd_milters: " + item +
             ": per-milter options are not translated "
             "(milter_*_timeout and milter_default_action apply to every milter)");
      }
      if (auto s = socket(spec, queue_dir))
        filters.push_back("milter:" + *s);
      else
        no("smtpd_milters: '" + item + "': not inet: or unix:");
    }
    if (!filters.empty()) yes(shown("smtpd_milters") + " -> filters = " + join(filters));
    auto other = get("non_smtpd_milters");
    if (!other.empty()) {
      if (split_list(other) == split_list(smtpd))
        yes(shown("non_smtpd_milters") +
            " -> the same filters (Estafette's local submissions "
            "pass esmtpd's filters)");
      else
        no(shown("non_smtpd_milters") +
           ": Estafette runs the same filters (smtpd_milters) for "
           "local submissions");
    }
    if (!filters.empty()) {
      auto action = get("milter_default_action");
      if (action == "tempfail" || action == "accept" || action == "reject") {
        set("milter_default_action", action);
        yes(shown("milter_default_action") + " -> milter_default_action = " + action);
      } else {
        no(shown("milter_default_action") + ": Estafette knows tempfail, accept and reject");
      }
    }
    for (auto& p : policies_) filters.push_back(p);
    if (!filters.empty()) set("filters", join(filters));
  }

  // Parameters that map one to one, with a unit or a number.
  void simple_settings() {
    struct Simple {
      const char* postfix;
      const char* estafette;
      char unit;  // 0: a number
    };
    static const Simple kSimple[] = {
        {"milter_connect_timeout", "milter_connect_timeout", 's'},
        {"milter_command_timeout", "milter_command_timeout", 's'},
        {"milter_content_timeout", "milter_content_timeout", 's'},
        {"smtpd_policy_service_timeout", "policy_timeout", 's'},
        {"smtpd_timeout", "smtpd_timeout", 's'},
        {"maximal_queue_lifetime", "queuetime", 'd'},
        {"delay_warning_time", "warntime", 'h'},
        {"hopcount_limit", "max_hops", 0},
        {"smtpd_recipient_limit", "max_recipients", 0},
        {"header_size_limit", "max_header_size", 0},
        {"smtpd_client_connection_count_limit", "MAXPERIP", 0},
    };
    for (const auto& s : kSimple) {
      if (!given(s.postfix)) {
        if (std::string(s.postfix) == "delay_warning_time") {
          set("warntime", "0");
          yes("delay_warning_time = 0h (Postfix's default) -> warntime = 0 (no delay warnings)");
        }
        continue;
      }
      auto v = get(s.postfix);
      std::optional<std::string> e;
      if (s.unit)
        e = duration(v, s.unit);
      else if (!v.empty() && v.size() < 10 && std::all_of(v.begin(), v.end(), ::isdigit))
        e = v;
      if (e && *e == "0d" && std::string(s.estafette) == "queuetime") e.reset();
      if (e) {
        set(s.estafette, *e);
        yes(shown(s.postfix) + " -> " + s.estafette + " = " + *e);
      } else {
        no(shown(s.postfix) + ": not a value Estafette's " + s.estafette + " takes");
      }
    }
  }

  void unknown_parameters() {
    static const std::map<std::string, std::string> kWhy = {
        {"queue_directory", "Postfix's queue; Estafette's is under state_dir (set it)"},
        {"data_directory", "Postfix's own files"},
        {"command_directory", "Postfix's own files"},
        {"daemon_directory", "Postfix's own files"},
        {"config_directory", "Postfix's own files"},
        {"meta_directory", "Postfix's own files"},
        {"shlib_directory", "Postfix's own files"},
        {"manpage_directory", "Postfix's own files"},
        {"sample_directory", "Postfix's own files"},
        {"readme_directory", "Postfix's own files"},
        {"html_directory", "Postfix's own files"},
        {"sendmail_path", "Postfix's own files"},
        {"newaliases_path", "Postfix's own files"},
        {"mailq_path", "Postfix's own files"},
        {"setgid_group", "Postfix's own files"},
        {"mail_owner", "Estafette's daemons run as the user setting (set it)"},
        {"compatibility_level", "Postfix's defaults; the ones of this level were used"},
        {"biff", "Estafette does not notify comsat"},
        {"append_dot_mydomain", "Estafette does not rewrite addresses"},
        {"smtpd_banner", "Estafette's greeting names hostname"},
        {"readme_directory", "Postfix's own files"},
        {"recipient_delimiter", "Estafette has no address extensions"},
        {"mailbox_size_limit",
         "Estafette bounds a message (max_mailbox_message_size), not a "
         "mailbox"},
    };
    for (const auto& [name, p] : cf_.params) {
      if (read_names_.count(name)) continue;
      std::vector<std::string> users;  // the parameters read that expand it
      for (const auto& r : read_names_)
        if (auto it = cf_.params.find(r);
            it != cf_.params.end() && references(it->second.value, name))
          users.push_back(r);
      if (!users.empty()) {
        yes(where(cf_.file, p.line) + ": " + name + " = " + p.value + " -> expanded in " +
            join(users));
        continue;
      }
      try {  // for the $names it uses that Postfix would not know
        expand(cf_, name, system_, &unknown_refs_);
      } catch (const ImportError& e) {
        no(e.what());
      }
      auto it = kWhy.find(name);
      std::string why = it != kWhy.end() ? it->second : "import-postfix does not know it";
      no(where(cf_.file, p.line) + ": " + name + " = " + p.value + ": " + why);
    }
    for (const auto& name : unknown_refs_)
      no("$" + name + ": not a parameter import-postfix knows; expanded to nothing");
  }

  void write_conf() {
    std::string text =
        "# Written by `estafette import-postfix` from " + cf_.file +
        "; import-report.txt says what\n# each Postfix setting became. Set state_dir and user "
        "before starting Estafette.\n";
    for (const auto& [k, v] : conf_) text += k + " = " + v + "\n";
    out_.files["estafette.conf"] = text;
    out_.files["import-report.txt"] = out_.report();
  }

  const MainCf& cf_;
  const System& system_;
  const Reader& read_;
  Import out_;
  std::vector<std::pair<std::string, std::string>> conf_;
  std::set<std::string> read_names_;
  std::vector<std::string> unknown_refs_;
  std::vector<std::string> locals_, hosted_, policies_;
  std::string smarthost_;
};

// Reads a regular file of at most `max` bytes.
std::optional<std::string> read_bounded(const std::string& path, std::size_t max,
                                        std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  struct stat st;
  std::string text;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = "not a regular file";
    ::close(fd);
    return std::nullopt;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max) {
      *error = "larger than " + std::to_string(max) + " bytes";
      ::close(fd);
      return std::nullopt;
    }
  }
  ::close(fd);
  return text;
}

}  // namespace

Import translate(const MainCf& cf, const System& system, const Reader& read) {
  return Translator(cf, system, read).run();
}

int import_postfix(const std::string& postfix_dir, const std::string& out_dir, std::FILE* out,
                   std::FILE* err) {
  namespace fs = std::filesystem;
  Import result;
  try {
    System system;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) system.hostname = host;
    system.config_directory = postfix_dir;
    std::string main_cf = postfix_dir + "/main.cf";
    std::string error;
    auto text = read_bounded(main_cf, kMaxMainCfSize, &error);
    if (!text) throw ImportError(main_cf + ": " + error);
    result = translate(parse_main_cf(*text, main_cf), system, read_bounded);
  } catch (const ImportError& e) {
    std::fprintf(err, "estafette import-postfix: %s\n", e.what());
    return 1;
  }
  std::error_code ec;
  {  // never into POSTFIX_DIR: OUT_DIR may not be it or lie below it
    auto src = fs::weakly_canonical(postfix_dir, ec).lexically_normal();
    auto dst = fs::weakly_canonical(out_dir, ec).lexically_normal();
    auto rel = dst.lexically_relative(src);
    if (!ec && (rel.empty() || rel == "." || *rel.begin() != "..")) {
      std::fprintf(err, "estafette import-postfix: %s is inside %s; give a directory elsewhere\n",
                   out_dir.c_str(), postfix_dir.c_str());
      return 1;
    }
  }
  if (fs::exists(out_dir, ec) && !fs::is_empty(out_dir, ec)) {
    std::fprintf(err, "estafette import-postfix: %s is not empty; give a new directory\n",
                 out_dir.c_str());
    return 1;
  }
  fs::create_directories(out_dir, ec);
  if (ec) {
    std::fprintf(err, "estafette import-postfix: %s: %s\n", out_dir.c_str(), ec.message().c_str());
    return 1;
  }
  for (const auto& [name, content] : result.files) {
    std::string path = out_dir + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    for (std::size_t at = 0; ok && at < content.size();) {
      ssize_t n = ::write(fd, content.data() + at, content.size() - at);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) at += static_cast<std::size_t>(n);
    }
    int saved = errno;
    if (fd >= 0 && ::close(fd) != 0) ok = false;
    if (!ok) {
      std::fprintf(err, "estafette import-postfix: %s: %s\n", path.c_str(), std::strerror(saved));
      return 1;
    }
  }
  std::fputs(result.report().c_str(), out);
  std::fprintf(out, "written: %s/estafette.conf", out_dir.c_str());
  for (const auto& [name, content] : result.files)
    if (name != "estafette.conf") std::fprintf(out, ", %s", name.c_str());
  std::fprintf(out, "\n");
  return 0;
}

}  // namespace estafette::admin::postfix
