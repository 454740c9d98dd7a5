// validate.cc: checks of what filters hand back (see validate.h).
#include "filters/validate.h"

#include <cctype>

#include "lib/smtp/address.h"

namespace estafette::filters {

namespace {

bool digit(char c) {
  return c >= '0' && c <= '9';
}

// "<a@b>" or "a@b" -> "a@b".
std::string_view bare(std::string_view address) {
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
    address = address.substr(1, address.size() - 2);
  return address;
}

// Envelope text (addresses, ESMTP arguments) goes into queue records line by line.
std::string check_text(std::string_view what, std::string_view text, std::size_t max) {
  if (text.size() > max) return std::string(what) + " longer than " + std::to_string(max);
  for (char c : text)
    if ((c >= 0 && c < 32) || c == 127) return std::string(what) + " contains a control character";
  return "";
}

// A recipient a filter adds (or a sender it sets: null allowed): what RCPT TO / MAIL FROM
// would accept.
std::string check_address(std::string_view address, bool null_ok) {
  if (auto why = check_text("address", address, 512); !why.empty()) return why;
  std::string_view a = bare(address);
  if (a.empty()) return null_ok ? "" : "empty address";
  if (smtp::to_lower(a) == "postmaster") return "";
  if (!smtp::parse_mailbox(a)) return "address '" + std::string(a) + "' is not a mailbox";
  return "";
}

// "X.Y.Z" (RFC 3463: 1-3 digits after each dot) at the start of text: its class digit, else 0.
char enhanced_class(std::string_view t) {
  if (t.size() < 5 || !digit(t[0]) || t[1] != '.') return 0;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t start = i;
    while (i < t.size() && digit(t[i])) ++i;
    if (i == start || i - start > 3) return 0;
    if (part == 0) {
      if (i == t.size() || t[i] != '.') return 0;
      ++i;
    }
  }
  if (i < t.size() && t[i] != ' ') return 0;
  return t[0];
}

}  // namespace

std::string check_header_name(std::string_view name, const ModificationLimits& limits) {
  if (name.empty()) return "empty header name";
  if (name.size() > limits.max_header_name)
    return "header name longer than " + std::to_string(limits.max_header_name);
  for (char c : name)
    if (c <= 32 || c >= 127 || c == ':')
      return "header name contains a character other than printable ASCII or ':'";
  return "";
}

std::string check_header_value(std::string_view value, const ModificationLimits& limits) {
  if (value.size() > limits.max_header_value)
    return "header value longer than " + std::to_string(limits.max_header_value);
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\0') return "header value contains NUL";
    if (c == '\r' && (i + 1 == value.size() || value[i + 1] != '\n'))
      return "header value contains a bare CR";
    if (c != '\n') continue;
    // A line end: a continuation line must follow, white space first, then some text.
    std::size_t j = i + 1;
    if (j == value.size() || (value[j] != ' ' && value[j] != '\t'))
      return "header value has a line end not followed by white space (not folding)";
    while (j < value.size() && (value[j] == ' ' || value[j] == '\t')) ++j;
    if (j == value.size() || value[j] == '\r' || value[j] == '\n')
      return "header value has a continuation line of white space only";
  }
  return "";
}

std::string check_modification(const Modification& mod, const ModificationLimits& limits) {
  using K = Modification::Kind;
  switch (mod.kind) {
    case K::AddHeader:
    case K::ChangeHeader:
    case K::InsertHeader: {
      if (auto why = check_header_name(mod.name, limits); !why.empty()) return why;
      return check_header_value(mod.value, limits);
    }
    case K::AddRcpt:
      if (auto why = check_address(mod.address, false); !why.empty()) return why;
      return check_text("ESMTP arguments", mod.args, 1024);
    case K::DelRcpt:
      return check_text("address", mod.address, 512);
    case K::ChangeFrom:
      if (auto why = check_address(mod.address, true); !why.empty()) return why;
      return check_text("ESMTP arguments", mod.args, 1024);
    case K::ReplaceBody:
      if (mod.body.size() > limits.max_body)
        return "replacement body larger than " + std::to_string(limits.max_body);
      if (mod.body.find('\0') != std::string::npos) return "replacement body contains NUL";
      return "";
    case K::Quarantine:
      return "";  // any text: apply() sanitizes it (sanitize_reason)
  }
  return "unknown modification";
}

std::string check_modifications(const std::vector<Modification>& mods,
                                const ModificationLimits& limits) {
  if (mods.size() > limits.max_modifications)
    return std::to_string(mods.size()) + " modifications (at most " +
           std::to_string(limits.max_modifications) + ")";
  for (const auto& mod : mods)
    if (auto why = check_modification(mod, limits); !why.empty()) return why;
  return "";
}

std::string check_reply(std::string_view text) {
  constexpr std::size_t kMaxLines = 32, kMaxLine = 510;  // 512 with CRLF (RFC 5321 4.5.3.1.5)
  if (text.size() < 3 || (text[0] != '4' && text[0] != '5') || !digit(text[1]) || !digit(text[2]))
    return "reply does not start with a 4xx or 5xx code";
  std::string_view code = text.substr(0, 3);
  std::size_t lines = 0;
  for (;;) {
    std::size_t crlf = text.find("\r\n");
    std::string_view line = text.substr(0, crlf);
    bool last = crlf == std::string_view::npos;
    if (++lines > kMaxLines) return "reply has more than " + std::to_string(kMaxLines) + " lines";
    if (line.size() > kMaxLine) return "reply line longer than " + std::to_string(kMaxLine);
    if (line.substr(0, 3) != code) return "reply lines with different codes";
    if (line.size() > 3 && line[3] != (last ? ' ' : '-'))
      return last ? "last reply line not \"CODE text\"" : "reply line not \"CODE-text\"";
    if (line.size() == 3 && !last) return "reply line not \"CODE-text\"";
    for (char c : line)
      if ((c >= 0 && c < 32 && c != '\t') || c == 127 || c < 0)
        return "reply contains a character other than printable ASCII";
    if (line.size() > 4) {
      char cls = enhanced_class(line.substr(4));
      if (cls != 0 && cls != code[0]) return "enhanced status code of another class";
    }
    if (last) return "";
    text.remove_prefix(crlf + 2);
  }
}

}  // namespace estafette::filters
