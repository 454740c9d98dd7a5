#include "filters/message_edit.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "lib/smtp/dotstuff.h"

namespace estafette::filters {

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A field name: printable ASCII except ":" (RFC 5322 2.2), at least one character.
bool field_name(std::string_view line, std::size_t& colon) {
  colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  for (std::size_t i = 0; i < colon; ++i)
    if (line[i] <= 32 || line[i] >= 127) return false;
  return true;
}

std::string crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += c;
    if (c == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) out += '\n';
  }
  return out;
}

std::string field_value(std::string_view value) {
  std::string v = crlf(value);
  if (v.empty() || (v[0] != ' ' && v[0] != '\t')) v.insert(v.begin(), ' ');
  return v;
}

std::string bare(std::string_view address) {
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
    address = address.substr(1, address.size() - 2);
  return std::string(address);
}

}  // namespace

namespace {
// The header fields of `plain` into m.headers; returns where the body starts.
std::size_t parse_header(std::string_view plain, ParsedMessage& m) {
  std::size_t at = 0;
  m.headers.reserve(16);  // a usual message's fields without a reallocation
  while (at < plain.size()) {
    std::size_t eol = plain.find("\r\n", at);
    std::size_t next = eol == std::string_view::npos ? plain.size() : eol + 2;
    std::string_view line =
        plain.substr(at, (eol == std::string_view::npos ? plain.size() : eol) - at);
    if (line.empty()) return next;  // the empty line: the body follows it
    std::size_t colon = 0;
    if ((line[0] == ' ' || line[0] == '\t') && !m.headers.empty()) {
      m.headers.back().value += "\r\n";
      m.headers.back().value += line;
    } else if (field_name(line, colon)) {
      m.headers.push_back(
          {std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
    } else {
      return at;  // not a header line: the body starts here
    }
    at = next;
  }
  return at;
}
}  // namespace

ParsedMessage parse_message(std::string_view plain) {
  ParsedMessage m;
  m.body = std::string(plain.substr(parse_header(plain, m)));
  return m;
}

ParsedMessage parse_message_in_place(std::string&& plain) {
  ParsedMessage m;
  std::size_t body = parse_header(plain, m);
  m.body = std::move(plain);
  m.body.erase(0, body);
  return m;
}

bool write_wire(const ParsedMessage& message, const std::function<bool(std::string_view)>& sink) {
  constexpr std::size_t kPiece = 64 * 1024;
  std::string head;
  for (const auto& h : message.headers) {
    head += h.name;
    head += ':';
    head += h.value;
    head += "\r\n";
  }
  head += "\r\n";
  if (!sink(smtp::stuff(head))) return false;
  std::string_view body = message.body;
  while (!body.empty()) {
    // Cut after a line end, so that the next piece starts a line (stuff() treats it as one).
    std::size_t cut = body.size() <= kPiece ? std::string_view::npos : body.find('\n', kPiece);
    std::size_t n = cut == std::string_view::npos ? body.size() : cut + 1;
    if (!sink(smtp::stuff(body.substr(0, n)))) return false;
    body.remove_prefix(n);
  }
  return true;
}

std::string sanitize_reason(std::string_view reason) {
  constexpr std::size_t kMax = 200;
  std::string out(reason.substr(0, kMax));
  for (char& c : out)
    if (c < 32 || c > 126 || c == '"' || c == '\\') c = '?';
  return out.empty() ? "quarantined by a filter" : out;
}

std::string render_message(const ParsedMessage& message) {
  std::string out;
  std::size_t size = message.body.size() + 2;
  for (const auto& h : message.headers) size += h.name.size() + h.value.size() + 3;
  out.reserve(size);
  for (const auto& h : message.headers) {
    out += h.name;
    out += ':';
    out += h.value;
    out += "\r\n";
  }
  out += "\r\n";
  out += message.body;
  return out;
}

void apply(const std::vector<Modification>& mods, ParsedMessage& message, Envelope& envelope) {
  using K = Modification::Kind;
  for (const auto& mod : mods) {
    switch (mod.kind) {
      case K::AddHeader:
        message.headers.push_back({mod.name, field_value(mod.value)});
        break;
      case K::ChangeHeader: {
        std::uint32_t seen = 0;
        auto it = std::find_if(message.headers.begin(), message.headers.end(), [&](const auto& h) {
          return iequal(h.name, mod.name) && ++seen == std::max<std::uint32_t>(mod.index, 1);
        });
        if (it == message.headers.end()) {
          if (!mod.value.empty()) message.headers.push_back({mod.name, field_value(mod.value)});
        } else if (mod.value.empty()) {
          message.headers.erase(it);
        } else {
          it->value = field_value(mod.value);
        }
        break;
      }
      case K::InsertHeader: {
        auto pos = std::min<std::size_t>(mod.index, message.headers.size());
        message.headers.insert(message.headers.begin() + static_cast<std::ptrdiff_t>(pos),
                               {mod.name, field_value(mod.value)});
        break;
      }
      case K::AddRcpt: {
        auto rcpt = bare(mod.address);
        if (std::none_of(envelope.recipients.begin(), envelope.recipients.end(),
                         [&](const auto& r) { return iequal(r, rcpt); }))
          envelope.recipients.push_back(rcpt);
        break;
      }
      case K::DelRcpt: {
        auto rcpt = bare(mod.address);
        std::erase_if(envelope.recipients, [&](const auto& r) { return iequal(r, rcpt); });
        break;
      }
      case K::ReplaceBody:
        message.body = crlf(mod.body);
        break;
      case K::Quarantine:
        envelope.quarantine = sanitize_reason(mod.text);
        break;
      case K::ChangeFrom:
        envelope.sender = bare(mod.address);
        break;
    }
  }
}

}  // namespace estafette::filters
