#include "lib/auth/sender_login_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "lib/auth/passwd_file.h"  // read_auth_file
#include "lib/base/fd.h"
#include "lib/base/lines.h"

namespace estafette::auth {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

bool has_control(std::string_view text) {  // a tab separates, it is no control here
  for (unsigned char c : text)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
  return false;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Splits "a, b c,d" into its logins (Postfix splits owners on commas and white space).
void add_logins(std::string_view text, std::vector<std::string>& out) {
  std::size_t at = 0;
  while (at < text.size()) {
    if (text[at] == ',' || is_blank(text[at])) {
      ++at;
      continue;
    }
    std::size_t end = at;
    while (end < text.size() && text[end] != ',' && !is_blank(text[end])) ++end;
    out.emplace_back(text.substr(at, end - at));
    at = end;
  }
}

// Why key is not a usable key, or nullptr.
const char* bad_key(std::string_view key) {
  auto at = key.rfind('@');
  if (at == std::string_view::npos)
    return "a key is user@domain or @domain (a local part alone is not supported)";
  if (at + 1 == key.size()) return "no domain after '@'";
  return nullptr;
}

}  // namespace

std::optional<SenderLoginMap> SenderLoginMap::parse(std::string_view text, std::string_view name,
                                                    std::string* error) {
  SenderLoginMap map;
  std::vector<std::string>* last = nullptr;  // the entry a continuation line adds to
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    std::string_view line = base::next_line(text);
    auto bad = [&](const std::string& why) {
      if (error) *error = std::string(name) + ":" + std::to_string(line_no) + ": " + why;
      return std::nullopt;
    };
    auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    if (has_control(line)) return bad("control character");
    if (first > 0) {  // white space first: more owners for the entry above
      if (!last) return bad("a continuation line (white space first) with no entry above");
      add_logins(line, *last);
      continue;
    }
    auto key_end = line.find_first_of(" \t");
    std::string_view key = line.substr(0, key_end);
    if (const char* why = bad_key(key)) return bad(why);
    std::vector<std::string> logins;
    if (key_end != std::string_view::npos) add_logins(line.substr(key_end), logins);
    auto [it, added] = map.owners_.emplace(lower(key), std::move(logins));
    if (!added) return bad("key listed twice: " + std::string(key));
    last = &it->second;
  }
  for (const auto& [key, logins] : map.owners_)
    if (logins.empty()) {
      if (error) *error = std::string(name) + ": no login for " + key;
      return std::nullopt;
    }
  return map;
}

const std::vector<std::string>* SenderLoginMap::owners(std::string_view sender) const {
  if (sender.empty()) return nullptr;
  std::string key = lower(sender);
  if (auto it = owners_.find(key); it != owners_.end()) return &it->second;
  auto at = key.rfind('@');
  if (at == std::string::npos || at + 1 == key.size()) return nullptr;
  key.erase(0, at);  // "@domain"
  if (auto it = owners_.find(key); it != owners_.end()) return &it->second;
  return nullptr;
}

bool SenderLoginMap::owns(std::string_view login, std::string_view sender) const {
  const auto* logins = owners(sender);
  if (!logins || login.empty()) return false;
  for (const auto& l : *logins)
    if (l == login) return true;
  return false;
}

std::shared_ptr<const SenderLoginMap> load_sender_login_map(const std::string& path,
                                                            std::string* error) {
  auto read = read_auth_file(path, error);
  if (!read) return nullptr;
  const std::string& text = *read;
  auto map = SenderLoginMap::parse(text, path, error);
  if (!map) return nullptr;
  return std::make_shared<const SenderLoginMap>(std::move(*map));
}

}  // namespace estafette::auth
