#include "lib/smtp/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace estafette::smtp {
namespace {

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_let_dig(char c) {
  return is_alpha(c) || is_digit(c);
}

bool is_atext(char c) {
  return is_let_dig(c) || (c != '\0' && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

// qtextSMTP: %d32-33 / %d35-91 / %d93-126
bool is_qtext(char c) {
  return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

// Length of the Quoted-string at the start of text (including both quotes), or 0 if there
// is none.
std::size_t quoted_string_length(std::string_view text) {
  if (text.empty() || text[0] != '"') return 0;
  for (std::size_t i = 1; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (i + 1 >= text.size() || text[i + 1] < 32 || text[i + 1] > 126) return 0;
      ++i;
    } else if (!is_qtext(c)) {
      return 0;
    }
  }
  return 0;
}

bool is_dot_string(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  char prev = '\0';
  for (char c : text) {
    if (c == '.' && prev == '.') return false;
    if (c != '.' && !is_atext(c)) return false;
    prev = c;
  }
  return true;
}

bool is_label(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabel) return false;
  if (!is_let_dig(label.front()) || !is_let_dig(label.back())) return false;
  for (char c : label) {
    if (!is_let_dig(c) && c != '-') return false;
  }
  return true;
}

bool is_ipv4(std::string_view text) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    int value = 0;
    while (i < text.size() && is_digit(text[i]) && i - start < 3)
      value = value * 10 + (text[i++] - '0');
    if (i == start || value > 255) return false;
    ++parts;
    if (i == text.size()) return parts == 4;
    if (text[i] != '.' || parts == 4) return false;
    ++i;
  }
}

}  // namespace

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string to_upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool is_valid_local_part(std::string_view local) {
  if (local.size() > kMaxLocalPart) return false;
  if (!local.empty() && local[0] == '"') return quoted_string_length(local) == local.size();
  return is_dot_string(local);
}

bool is_valid_address_literal(std::string_view literal) {
  if (literal.size() < 3 || literal.front() != '[' || literal.back() != ']') return false;
  std::string_view inner = literal.substr(1, literal.size() - 2);
  if (is_ipv4(inner)) return true;
  std::size_t colon = inner.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view tag = inner.substr(0, colon);
  std::string_view content = inner.substr(colon + 1);
  if (content.empty()) return false;
  if (to_lower(tag) == "ipv6") {
    std::string addr(content);
    unsigned char buf[16];
    return inet_pton(AF_INET6, addr.c_str(), buf) == 1;
  }
  // General-address-literal: Standardized-tag ":" 1*dcontent
  if (!is_let_dig(tag.back())) return false;
  for (char c : tag) {
    if (!is_let_dig(c) && c != '-') return false;
  }
  for (char c : content) {
    if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']') return false;
  }
  return true;
}

bool is_valid_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > kMaxDomain) return false;
  if (domain.front() == '[') return is_valid_address_literal(domain);
  std::size_t start = 0;
  while (true) {
    std::size_t dot = domain.find('.', start);
    std::string_view label =
        domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!is_label(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::optional<Address> parse_mailbox(std::string_view text) {
  std::size_t at;
  if (!text.empty() && text[0] == '"') {
    at = quoted_string_length(text);
    if (at == 0 || at >= text.size() || text[at] != '@') return std::nullopt;
  } else {
    at = text.find('@');
    if (at == std::string_view::npos) return std::nullopt;
  }
  std::string_view local = text.substr(0, at);
  std::string_view domain = text.substr(at + 1);
  if (!is_valid_local_part(local) || !is_valid_domain(domain)) return std::nullopt;
  return Address{std::string(local), std::string(domain)};
}

std::string domain_of(std::string_view address) {
  std::size_t from = 0;
  if (!address.empty() && address[0] == '"') {
    from = quoted_string_length(address);
    if (from == 0) return "";
  }
  std::size_t at = address.find('@', from);
  if (at == std::string_view::npos) return "";
  return to_lower(address.substr(at + 1));
}

bool domain_listed(const std::vector<std::string>& list, std::string_view domain) {
  for (const auto& entry : list) {
    if (entry == domain) return true;
    if (entry.size() > 1 && entry[0] == '.' && domain.size() > entry.size() &&
        domain.substr(domain.size() - entry.size()) == entry)
      return true;
  }
  return false;
}

std::string unquote_local(std::string_view local) {
  if (local.size() < 2 || local.front() != '"' || local.back() != '"') return std::string(local);
  std::string out;
  for (std::size_t i = 1; i + 1 < local.size(); ++i) {
    if (local[i] == '\\' && i + 2 < local.size()) ++i;
    out.push_back(local[i]);
  }
  return out;
}

}  // namespace estafette::smtp
