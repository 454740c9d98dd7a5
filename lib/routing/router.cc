#include "lib/routing/router.h"

#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "lib/smtp/address.h"

namespace estafette::routing {

namespace {

using config::fail;

// expand_into()'s answer when MailboxCheck::Defer meets a mailbox check (never a real reply).
constexpr std::string_view kDeferred = "\n(deferred)";

std::string local_of(const std::string& address) {
  auto at = address.rfind('@');
  return at == std::string::npos ? address : address.substr(0, at);
}

bool valid_domain_entry(std::string_view d) {
  if (d.starts_with('.')) d.remove_prefix(1);
  return smtp::is_valid_domain(d) && !d.starts_with('[');
}

std::string read_setting(const config::Config::FileRef& ref, const FileReader& read,
                         uid_t* owner = nullptr) {
  std::string error;
  auto content = read(ref.path, &error);
  if (!content) fail(ref.where.empty() ? ref.path : ref.where, ref.path + ": " + error);
  if (owner) *owner = content->owner;
  return content->text;
}

}  // namespace

void DomainSet::add(std::string domain) {
  if (domain.starts_with('.'))
    suffix_.insert(domain.substr(1));
  else
    exact_.insert(std::move(domain));
}

void DomainSet::merge(const DomainSet& other) {
  exact_.insert(other.exact_.begin(), other.exact_.end());
  suffix_.insert(other.suffix_.begin(), other.suffix_.end());
}

bool DomainSet::contains(std::string_view domain) const {
  std::string d(domain);
  if (exact_.count(d)) return true;
  for (auto dot = d.find('.'); dot != std::string::npos; dot = d.find('.', dot + 1))
    if (suffix_.count(d.substr(dot + 1))) return true;
  return false;
}

DomainSet parse_domains(const std::string& text, const std::string& name,
                        std::vector<std::string>* ignored, TransportMap* transports) {
  DomainSet set;
  std::unordered_map<std::string, std::string> first_at;
  config::for_each_line(text, name, [&](const std::string& where, std::string_view body) {
    // Courier's hosteddomains may carry a second field (an alias domain); we take the first,
    // and `transport=` (transport.h) anywhere after it.
    auto blank = body.find_first_of(" \t");
    auto domain = smtp::to_lower(body.substr(0, blank));
    if (!valid_domain_entry(domain)) fail(where, "bad domain '" + domain + "'");
    std::string rest;
    std::string_view words = blank == std::string_view::npos ? "" : body.substr(blank);
    while (!(words = config::trim(words)).empty()) {
      auto end = words.find_first_of(" \t");
      auto word = words.substr(0, end);
      words = end == std::string_view::npos ? "" : words.substr(end);
      if (word.starts_with("transport=")) {
        std::string why;
        auto t = config::parse_transport(word.substr(10), &why);
        if (!t) fail(where, why);
        if (transports) (*transports)[domain] = *t;
        continue;
      }
      rest += (rest.empty() ? "" : " ") + std::string(word);
    }
    if (ignored && !rest.empty())
      ignored->push_back(where + ": '" + rest + "' after the domain is ignored");
    if (auto [it, first] = first_at.emplace(domain, where); !first && ignored)
      ignored->push_back(where + ": '" + domain + "' listed again (first at " + it->second + ")");
    set.add(std::move(domain));
  });
  return set;
}

std::unordered_map<std::string, std::string> parse_mailbox_map(
    const std::string& text, const std::string& name, const std::string& root,
    std::unordered_map<std::string, std::string>* where_of) {
  std::unordered_map<std::string, std::string> map;
  std::unordered_map<std::string, std::string> first_at;
  config::for_each_line(text, name, [&](const std::string& where, std::string_view body) {
    auto sep = body.find_first_of(": \t");
    if (sep == std::string_view::npos) fail(where, "expected 'user@domain: mailbox'");
    auto key = smtp::to_lower(config::trim(body.substr(0, sep)));
    auto box = std::string(config::trim(body.substr(sep + 1)));
    if (!box.empty() && box[0] == ':') box = std::string(config::trim(box.substr(1)));
    auto addr = smtp::parse_mailbox(key);
    if (!addr) fail(where, "bad address '" + key + "'");
    if (box.empty() || box.find("..") != std::string::npos)
      fail(where, "bad mailbox '" + box + "'");
    if (box[0] != '/') box = root + "/" + box;
    while (box.size() > 1 && box.back() == '/') box.pop_back();
    if (auto [it, inserted] = first_at.emplace(key, where); !inserted)
      fail(where, "duplicate entry '" + key + "' (first at " + it->second + ")");
    map.emplace(key, std::move(box));
  });
  if (where_of) *where_of = std::move(first_at);
  return map;
}

std::optional<std::string> mailbox_name(std::string_view recipient) {
  auto at = recipient.rfind('@');
  std::string local = smtp::to_lower(
      smtp::unquote_local(at == std::string_view::npos ? recipient : recipient.substr(0, at)));
  if (local.empty() || local[0] == '.') return std::nullopt;
  for (char c : local) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || u < 0x20 || u == 0x7f) return std::nullopt;
  }
  return local;
}

Router::Router(const config::Config& config) : config_(config) {
  for (const auto& d : config.local_domains) locals_.add(d);
}

std::shared_ptr<const Router> Router::load(const config::Config& config, const FileReader& read) {
  auto r = std::make_shared<Router>(config);
  const auto& c = r->config_;
  if (!c.locals.path.empty())
    r->locals_.merge(parse_domains(read_setting(c.locals, read), c.locals.path, &r->ignored_lines_,
                                   &r->transports_));
  if (!c.hosteddomains.path.empty())
    r->hosted_ = parse_domains(read_setting(c.hosteddomains, read), c.hosteddomains.path,
                               &r->ignored_lines_, &r->transports_);
  if (!c.hosted_mailboxes.path.empty()) {
    std::unordered_map<std::string, std::string> where;
    r->hosted_mailboxes_ = parse_mailbox_map(read_setting(c.hosted_mailboxes, read),
                                             c.hosted_mailboxes.path, c.maildir_root, &where);
    // mailbox() looks a hosted address up here only for a hosted domain that is not local: any
    // other entry would never be used, and is most likely a domain missing from hosteddomains.
    for (const auto& [key, _] : r->hosted_mailboxes_) {
      auto domain = smtp::domain_of(key);
      if (r->is_local_domain(domain))
        fail(where[key], "'" + key + "': " + domain +
                             " is a local domain (hosted_mailboxes is for hosteddomains)");
      if (!r->is_hosted_domain(domain))
        fail(where[key], "'" + key + "': " + domain + " is not in hosteddomains" +
                             (c.hosteddomains.path.empty() ? " (none is set)" : ""));
    }
  }
  if (!c.aliases.path.empty()) {
    uid_t owner = 0;
    auto text = read_setting(c.aliases, read, &owner);
    r->aliases_ = AliasMap::parse(text, c.aliases.path, owner, read);
    r->check_loops();
  }
  return r;
}

bool Router::is_local_domain(std::string_view domain) const {
  return locals_.contains(domain);
}

bool Router::is_hosted_domain(std::string_view domain) const {
  return hosted_.contains(domain);
}

const config::Transport* Router::transport_of(std::string_view domain) const {
  if (!is_local_domain(domain) && !is_hosted_domain(domain)) return nullptr;
  // The line that names the domain, else the one of its closest ".parent" entry.
  std::string key(domain);
  if (auto it = transports_.find(key); it != transports_.end()) return &it->second;
  for (auto dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
    if (auto it = transports_.find(key.substr(dot)); it != transports_.end()) return &it->second;
  }
  return &config_.local_transport;
}

const Alias* Router::find_alias(const std::string& address) const {
  if (aliases_.size() == 0) return nullptr;
  std::string key = smtp::to_lower(address);
  if (const Alias* a = aliases_.find(key)) return a;
  if (is_local_domain(smtp::domain_of(key))) return aliases_.find(local_of(key));
  return nullptr;
}

std::optional<Program> Router::program_of(const std::string& address,
                                          std::string_view command) const {
  if (!config_.allow_program_delivery || command.empty()) return std::nullopt;
  const Alias* alias = find_alias(address);
  if (!alias) return std::nullopt;
  for (const auto& t : alias->targets) {
    if (t.kind != AliasTarget::Kind::Program) continue;
    if (t.value == command) return Program{t.owner, t.value};
    // The pre-0.2 form "UID COMMAND": only the command is compared.
    auto space = command.find(' ');
    if (space != std::string_view::npos && space > 0 &&
        command.find_first_not_of("0123456789") == space && command.substr(space + 1) == t.value)
      return Program{t.owner, t.value};
  }
  return std::nullopt;
}

std::string Router::default_domain() const {
  for (const auto& d : config_.local_domains)
    if (!d.empty() && d[0] != '.') return d;
  return config_.hostname.empty() ? "localhost" : smtp::to_lower(config_.hostname);
}

Expansion Router::expand(const std::string& given, MailboxCheck check) const {
  if (given.find('@') == std::string::npos) return expand(given + "@" + default_domain(), check);
  const std::string& address = given;
  Expansion e;
  auto domain = smtp::domain_of(address);
  e.ours = is_local_domain(domain) || is_hosted_domain(domain) || find_alias(address) != nullptr;
  std::unordered_set<std::string> seen;
  // An address no alias rewrites keeps its case (the local part is the user's to interpret).
  e.reply = expand_into(address, false, 0, check, e.targets, seen);
  if (e.reply == kDeferred) {
    Expansion deferred;
    deferred.deferred = true;
    return deferred;
  }
  if (e.reply.starts_with("550 5.4.6"))  // name the RCPT address, not where the loop turned
    e.reply = "550 5.4.6 <" + address + ">: alias loop or nesting deeper than " +
              std::to_string(kMaxAliasDepth);
  if (!e.reply.empty()) e.targets.clear();
  return e;
}

std::string Router::expand_into(const std::string& address, bool no_expand, std::size_t depth,
                                MailboxCheck check, std::vector<Target>& out,
                                std::unordered_set<std::string>& seen) const {
  if (depth > kMaxAliasDepth)
    return "550 5.4.6 <" + address + ">: alias loop or nesting deeper than " +
           std::to_string(kMaxAliasDepth);
  const Alias* alias = no_expand ? nullptr : find_alias(address);
  if (!alias) {
    auto domain = smtp::domain_of(address);
    if (is_local_domain(domain) || is_hosted_domain(domain)) {
      // The address itself must name a mailbox; a missing one further down an alias is
      // bounced at delivery, as Postfix does, so one stale list member does not refuse the list.
      if (depth == 0 && check != MailboxCheck::Skip) {
        if (check == MailboxCheck::Defer && mailbox_needs_io(address))
          return std::string(kDeferred);
        auto box = mailbox(address);
        if (!box.reply.empty()) return box.reply;
      }
    }
    if (seen.insert(address).second) out.push_back({address, std::nullopt});
    return {};
  }
  auto domain = smtp::domain_of(address);
  for (const auto& t : alias->targets) {
    if (t.kind == AliasTarget::Kind::Program) {
      if (!config_.allow_program_delivery)
        return "550 5.7.1 <" + address + ">: delivery to programs is disabled" +
               " (allow_program_delivery = no)";
      if (seen.insert(address + "\n|" + t.value).second)
        out.push_back({address, Program{t.owner, t.value}});
      continue;
    }
    std::string next = t.value.find('@') == std::string::npos ? t.value + "@" + domain : t.value;
    auto r = expand_into(next, t.no_expand, depth + 1, check, out, seen);
    if (!r.empty()) return r;
  }
  return {};
}

bool Router::mailbox_needs_io(const std::string& address) const {
  // As mailbox() below: hosted addresses and bad names are answered from memory.
  auto domain = smtp::domain_of(smtp::to_lower(address));
  if (!is_local_domain(domain) && is_hosted_domain(domain)) return false;
  if (const auto* t = transport_of(domain); t && t->lmtp()) return false;
  if (!mailbox_name(address)) return false;
  return config_.local_mailboxes != config::Config::LocalMailboxes::Create;
}

Mailbox Router::mailbox(const std::string& address) const {
  Mailbox box;
  std::string addr = smtp::to_lower(address);
  auto domain = smtp::domain_of(addr);
  auto no_such = [&] {
    box.reply = "550 5.1.1 <" + address + ">: no such mailbox";
    return box;
  };
  if (const auto* t = transport_of(domain); t && t->lmtp()) {
    box.lmtp = true;  // the LMTP server knows its users: its RCPT reply decides at delivery
    return box;
  }
  if (!is_local_domain(domain) && is_hosted_domain(domain)) {
    auto it = hosted_mailboxes_.find(addr);
    if (it == hosted_mailboxes_.end()) return no_such();
    box.path = it->second;
    box.create = true;  // listed in the map: the admin made it exist
    return box;
  }
  auto name = mailbox_name(address);
  if (!name) {
    box.reply = "550 5.1.1 <" + address + ">: bad mailbox name";
    return box;
  }
  using Mode = config::Config::LocalMailboxes;
  switch (config_.local_mailboxes) {
    case Mode::Create:
      box.path = config_.maildir_root + "/" + *name;
      box.create = true;
      return box;
    case Mode::Existing: {
      box.path = config_.maildir_root + "/" + *name;
      struct stat st {};
      if (::stat(box.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return no_such();
      return box;
    }
    case Mode::System: {
      struct passwd pw {};
      struct passwd* found = nullptr;
      std::vector<char> buf(16384);
      if (::getpwnam_r(name->c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found ||
          pw.pw_uid == 0)
        return no_such();  // root reads its mail through an alias (postmaster: someone)
      box.home = pw.pw_dir;
      box.user = pw.pw_name;
      box.path = box.home + "/Maildir";
      box.create = true;
      box.uid = pw.pw_uid;
      box.gid = pw.pw_gid;
      return box;
    }
  }
  return no_such();
}

std::vector<std::string> Router::strict_warnings() const {
  using Mode = config::Config::LocalMailboxes;
  std::vector<std::pair<std::string, std::string>> found;  // (where, text)
  for (const auto& [key, alias] : aliases_.entries()) {
    if (key.find('@') == std::string::npos && locals_.size() == 0) {  // find_alias never sees it
      found.emplace_back(alias.where,
                         alias.where + ": " + key + ": ignored: no local domain for a bare name");
      continue;
    }
    std::string address = key.find('@') == std::string::npos ? key + "@" + default_domain() : key;
    std::vector<Target> targets;
    std::unordered_set<std::string> seen;
    auto reply = expand_into(address, false, 0, MailboxCheck::Skip, targets, seen);
    if (!reply.empty()) {  // without its "550 5.x.y" (this is no SMTP reply)
      auto text = reply.substr(std::min(reply.size(), reply.find(' ', reply.find(' ') + 1) + 1));
      found.emplace_back(alias.where, alias.where + ": " + key + ": " + text);
      continue;
    }
    for (const auto& t : targets) {
      auto domain = smtp::domain_of(smtp::to_lower(t.address));
      if (t.program || !(is_local_domain(domain) || is_hosted_domain(domain))) continue;
      auto box = mailbox(t.address);
      if (box.reply.empty()) continue;
      std::string why;
      if (!is_local_domain(domain))
        why = "not in hosted_mailboxes";
      else if (config_.local_mailboxes == Mode::System)
        why = "local_mailboxes = system: no such user, or root, which never has one";
      else if (config_.local_mailboxes == Mode::Existing)
        why = "local_mailboxes = existing: no directory " + config_.maildir_root + "/" +
              mailbox_name(t.address).value_or("?");
      else
        why = "a bad mailbox name";
      found.emplace_back(alias.where, alias.where + ": " + key + ": " + t.address +
                                          " has no mailbox (" + why + ")");
    }
  }
  // "file:line": by file, then by line as a number; several targets of one alias in order.
  auto split = [](const std::string& where) {
    auto colon = where.rfind(':');
    auto line = std::strtol(where.c_str() + colon + 1, nullptr, 10);
    return std::make_pair(where.substr(0, colon), line);
  };
  std::stable_sort(found.begin(), found.end(),
                   [&](const auto& a, const auto& b) { return split(a.first) < split(b.first); });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  out.insert(out.end(), ignored_lines_.begin(), ignored_lines_.end());
  return out;
}

void Router::check_loops() const {
  // Depth-first over alias keys; an edge goes from a key to the keys its address targets can
  // match: a qualified target's full address (and its bare local part when its domain is
  // local); an unqualified one's bare name and the name in the key's domain, or for a bare
  // key in each local domain listed exactly (".suffix" domains cannot be listed: expansion's
  // depth limit covers those). Each key's height (the longest chain below it) is kept, so the
  // walk is O(aliases + targets) and also finds chains deeper than expansion would follow.
  constexpr int kOpen = -1;
  std::unordered_map<const Alias*, int> height;
  height.reserve(aliases_.size());
  std::vector<std::string> path;
  std::function<int(const std::string&, const Alias&)> visit = [&](const std::string& key,
                                                                   const Alias& alias) -> int {
    height[&alias] = kOpen;
    path.push_back(key);
    int h = 1;
    auto at = key.find('@');
    for (const auto& t : alias.targets) {
      if (t.kind != AliasTarget::Kind::Address || t.no_expand) continue;
      std::vector<std::string> next;
      if (t.value.find('@') == std::string::npos) {
        next.push_back(t.value);
        if (at != std::string::npos)
          next.push_back(t.value + key.substr(at));
        else
          for (const auto& d : locals_.exact()) next.push_back(t.value + "@" + d);
      } else {
        next.push_back(t.value);
        if (is_local_domain(smtp::domain_of(t.value))) next.push_back(local_of(t.value));
      }
      for (const auto& n : next) {
        const Alias* a = aliases_.find(n);
        if (!a) continue;
        auto m = height.find(a);
        int below;
        if (m == height.end()) {
          below = visit(n, *a);
        } else if (m->second == kOpen) {
          std::string chain;
          bool in = false;
          for (const auto& p : path) {
            if (p == n) in = true;
            if (in) chain += p + " -> ";
          }
          fail(a->where, "alias loop: " + chain + n);
        } else {
          below = m->second;
        }
        h = std::max(h, below + 1);
      }
    }
    if (static_cast<std::size_t>(h) > kMaxAliasDepth)
      fail(alias.where,
           "aliases nested deeper than " + std::to_string(kMaxAliasDepth) + " (from " + key + ")");
    path.pop_back();
    height[&alias] = h;
    return h;
  };
  for (const auto& [key, alias] : aliases_.entries())
    if (!height.count(&alias)) visit(key, alias);
}

ExpandedRecipients expand_recipients(const Router& router,
                                     const std::vector<std::string>& addresses,
                                     MailboxCheck check) {
  ExpandedRecipients out;
  std::unordered_set<std::string> seen;
  for (std::size_t from = 0; from < addresses.size(); ++from) {
    const std::string& address = addresses[from];
    auto e = router.expand(address, check == MailboxCheck::Defer ? MailboxCheck::Now : check);
    if (!e.reply.empty() || e.targets.empty()) e.targets = {{address, std::nullopt}};
    for (auto& t : e.targets) {
      std::string key = t.address + (t.program ? "\n|" + t.program->command : "");
      if (!seen.insert(key).second) continue;
      if (t.program) out.programs[out.recipients.size()] = t.program->command;
      out.recipients.push_back(std::move(t.address));
      out.origin.push_back(from);
    }
  }
  return out;
}

}  // namespace estafette::routing
