#include "lib/routing/aliases.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <unordered_set>

#include "lib/base/fd.h"
#include "lib/config/config.h"
#include "lib/smtp/address.h"

namespace estafette::routing {

namespace {

using config::fail;

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Sendmail's limit on alias recursion (MAXRCRSN). Loop detection alone does not bound the
// nesting: through a symlink (lists/lists -> .) every level is a new path to the same file.
constexpr std::size_t kMaxIncludeDepth = 10;

struct Parser {
  const FileReader& read;
  std::vector<std::string> include_stack;  // absolute paths being read, for include loops

  // One target item -> targets (an include yields its file's targets).
  void add_item(const std::string& where, const std::string& file, uid_t owner,
                const std::string& item, std::vector<AliasTarget>& out) {
    if (item.starts_with(":include:")) {
      std::string path(config::trim(std::string_view(item).substr(9)));
      if (path.empty()) fail(where, ":include: needs a file name");
      if (path[0] != '/') path = dir_of(file) + "/" + path;
      for (const auto& open : include_stack)
        if (open == path) fail(where, ":include: loop through " + path);
      if (include_stack.size() >= kMaxIncludeDepth)
        fail(where,
             ":include: nested more than " + std::to_string(kMaxIncludeDepth) + " deep at " + path);
      std::string error;
      auto content = read(path, &error);
      if (!content) fail(where, ":include:" + path + ": " + error);
      include_stack.push_back(path);
      std::istringstream in(content->text);
      std::string line;
      for (int lineno = 1; std::getline(in, line); ++lineno) {
        auto body = config::trim(line);
        if (body.empty() || body[0] == '#') continue;
        std::string here = path + ":" + std::to_string(lineno);
        auto items = split_targets(body);
        if (!items) fail(here, "unterminated quote");
        for (const auto& i : *items) add_item(here, path, content->owner, i, out);
      }
      include_stack.pop_back();
      return;
    }
    AliasTarget t;
    t.owner = owner;
    if (item[0] == '|') {
      t.kind = AliasTarget::Kind::Program;
      t.value = std::string(config::trim(std::string_view(item).substr(1)));
      if (t.value.empty()) fail(where, "empty program after '|'");
    } else {
      std::string_view addr = item;
      if (addr[0] == '\\') {
        t.no_expand = true;
        addr.remove_prefix(1);
      }
      if (addr.starts_with('<') && addr.ends_with('>')) addr = addr.substr(1, addr.size() - 2);
      if (addr.empty()) fail(where, "empty address");
      bool ok = addr.find('@') == std::string_view::npos ? smtp::is_valid_local_part(addr)
                                                         : smtp::parse_mailbox(addr).has_value();
      if (!ok) fail(where, "bad address '" + std::string(addr) + "'");
      t.value = smtp::to_lower(addr);
    }
    out.push_back(std::move(t));
  }
};

}  // namespace

std::optional<std::vector<std::string>> split_targets(std::string_view list) {
  std::vector<std::string> out;
  std::string item;
  bool quoted = false;
  auto flush = [&] {
    auto t = config::trim(item);
    if (!t.empty()) out.emplace_back(t);
    item.clear();
  };
  for (char c : list) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      flush();
    } else {
      item.push_back(c);
    }
  }
  if (quoted) return std::nullopt;
  flush();
  return out;
}

FileReader disk_reader() {
  return [](const std::string& path, std::string* error) -> std::optional<FileContent> {
    std::ifstream in(path, std::ios::binary);
    struct stat st {};
    if (!in || ::stat(path.c_str(), &st) != 0) {
      *error = "cannot open: " + std::string(base::errno_text(errno));
      return std::nullopt;
    }
    std::ostringstream s;
    s << in.rdbuf();
    return FileContent{s.str(), st.st_uid};
  };
}

const Alias* AliasMap::find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

AliasMap AliasMap::parse(const std::string& text, const std::string& name, uid_t owner,
                         const FileReader& read) {
  AliasMap map;
  Parser parser{read, {name}};
  // Join continuation lines first: (where, logical line).
  std::vector<std::pair<std::string, std::string>> entries;
  std::istringstream in(text);
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto body = config::trim(line);
    if (body.empty() || body[0] == '#') continue;
    if (line[0] == ' ' || line[0] == '\t') {
      if (entries.empty()) fail(name + ":" + std::to_string(lineno), "continuation line first");
      entries.back().second += ", ";  // a continuation line continues the target list
      entries.back().second += body;
      continue;
    }
    entries.emplace_back(name + ":" + std::to_string(lineno), std::string(body));
  }
  map.entries_.reserve(entries.size());
  for (const auto& [where, body] : entries) {
    auto colon = body.find(':');
    if (colon == std::string::npos) fail(where, "expected 'name: target, ...'");
    std::string key = smtp::to_lower(config::trim(std::string_view(body).substr(0, colon)));
    if (key.empty()) fail(where, "empty alias name");
    auto at = key.find('@');
    bool ok = at == std::string::npos ? smtp::is_valid_local_part(key)
                                      : smtp::parse_mailbox(key).has_value();
    if (!ok) fail(where, "bad alias name '" + key + "'");
    auto items = split_targets(std::string_view(body).substr(colon + 1));
    if (!items) fail(where, "unterminated quote");
    Alias alias;
    alias.where = where;
    for (const auto& item : *items) parser.add_item(where, name, owner, item, alias.targets);
    if (alias.targets.empty()) fail(where, "alias '" + key + "' has no targets");
    auto [it, inserted] = map.entries_.emplace(key, std::move(alias));
    if (!inserted) fail(where, "duplicate alias '" + key + "' (first at " + it->second.where + ")");
  }
  return map;
}

}  // namespace estafette::routing
