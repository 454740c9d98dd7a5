#include "lib/smtp/esmtp_params.h"

#include <array>
#include <set>

#include "lib/smtp/address.h"
#include "lib/smtp/command.h"  // kMaxPath

namespace estafette::smtp {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // RFC 3461: upper-case hex digits only
}

bool is_xchar(char c) {
  return c >= '!' && c <= '~' && c != '+' && c != '=';
}

// Decoded ENVID and ORCPT values: printable US-ASCII (RFC 3461 4.2, 4.4), so they can go into a
// report line as they are.
bool printable(std::string_view text) {
  for (char c : text)
    if (c < ' ' || c > '~') return false;
  return true;
}

bool parse_size(std::string_view text, std::size_t& out) {
  if (text.empty()) return false;
  std::size_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    std::size_t digit = static_cast<std::size_t>(c - '0');
    value = value > (SIZE_MAX - digit) / 10 ? SIZE_MAX : value * 10 + digit;
  }
  out = value;
  return true;
}

struct NotifyWord {
  std::string_view name;
  NotifyFlag flag;
};
constexpr std::array<NotifyWord, 4> kNotifyWords = {{
    {"NEVER", kNotifyNever},
    {"SUCCESS", kNotifySuccess},
    {"FAILURE", kNotifyFailure},
    {"DELAY", kNotifyDelay},
}};

std::string duplicate(std::string_view keyword) {
  return "501 5.5.4 Duplicate parameter: " + std::string(keyword);
}

std::string unsupported(std::string_view keyword) {
  return "555 5.5.4 Unsupported option: " + std::string(keyword);
}

}  // namespace

std::optional<std::string> xtext_decode(std::string_view xtext) {
  std::string out;
  out.reserve(xtext.size());
  for (std::size_t i = 0; i < xtext.size(); ++i) {
    char c = xtext[i];
    if (c == '+') {
      if (i + 2 >= xtext.size()) return std::nullopt;
      int hi = hex_value(xtext[i + 1]), lo = hex_value(xtext[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (is_xchar(c)) {
      out.push_back(c);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string xtext_encode(std::string_view text) {
  constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (is_xchar(c)) {
      out.push_back(c);
    } else {
      auto u = static_cast<unsigned char>(c);
      out.push_back('+');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

std::optional<std::uint8_t> parse_notify(std::string_view value) {
  std::uint8_t flags = 0;
  while (true) {
    std::size_t comma = value.find(',');
    std::string word = to_upper(value.substr(0, comma));
    const NotifyWord* found = nullptr;
    for (const auto& w : kNotifyWords)
      if (w.name == word) found = &w;
    if (!found || (flags & found->flag)) return std::nullopt;
    flags |= found->flag;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  if ((flags & kNotifyNever) && flags != kNotifyNever) return std::nullopt;
  return flags;
}

std::string notify_text(std::uint8_t flags) {
  std::string out;
  for (const auto& w : kNotifyWords) {
    if (!(flags & w.flag)) continue;
    if (!out.empty()) out.push_back(',');
    out.append(w.name);
  }
  return out;
}

std::uint8_t notify_flags(std::string_view stored) {
  if (!stored.empty())
    if (auto flags = parse_notify(stored)) return *flags;
  return kNotifyFailure | kNotifyDelay;
}

std::optional<Orcpt> parse_orcpt(std::string_view value) {
  std::size_t semi = value.find(';');
  if (semi == std::string_view::npos || semi == 0) return std::nullopt;
  std::string_view type = value.substr(0, semi);
  for (char c : type) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return std::nullopt;
  }
  auto address = xtext_decode(value.substr(semi + 1));
  if (!address || address->empty() || address->size() > kMaxOrcpt || !printable(*address))
    return std::nullopt;
  return Orcpt{std::string(type), std::move(*address)};
}

std::string_view ret_text(DsnRet ret) {
  switch (ret) {
    case DsnRet::Full:
      return "FULL";
    case DsnRet::Hdrs:
      return "HDRS";
    case DsnRet::Unspecified:
      break;
  }
  return "";
}

DsnRet parse_ret_text(std::string_view text) {
  std::string upper = to_upper(text);
  if (upper == "FULL") return DsnRet::Full;
  if (upper == "HDRS") return DsnRet::Hdrs;
  return DsnRet::Unspecified;
}

MailParams parse_mail_params(const EsmtpParams& params) {
  MailParams out;
  std::set<std::string, std::less<>> seen;
  for (const auto& [keyword, value] : params) {
    if (!seen.insert(keyword).second) {
      out.error = duplicate(keyword);
    } else if (keyword == "SIZE") {
      if (!parse_size(value, out.size)) out.error = "501 5.5.4 Bad SIZE parameter syntax";
    } else if (keyword == "BODY") {
      out.body_type = to_upper(value);
      if (out.body_type != "7BIT" && out.body_type != "8BITMIME")
        out.error = "555 5.5.4 Unsupported BODY type: " + value;  // printable (parse_command)
    } else if (keyword == "RET") {
      out.ret = parse_ret_text(value);
      if (out.ret == DsnRet::Unspecified)
        out.error = "501 5.5.4 Bad RET parameter: expected RET=FULL or RET=HDRS";
    } else if (keyword == "ENVID") {
      auto decoded = xtext_decode(value);
      if (!decoded || decoded->empty() || !printable(*decoded) || value.size() > kMaxEnvid)
        out.error = "501 5.5.4 Bad ENVID parameter: expected xtext of at most 100 characters";
      out.envid = value;
    } else if (keyword == "REQUIRETLS") {
      if (!value.empty()) out.error = "501 5.5.4 REQUIRETLS takes no value";
      out.require_tls = true;
    } else if (keyword == "AUTH") {
      auto decoded = xtext_decode(value);
      if (!decoded || decoded->empty() || !printable(*decoded) || decoded->size() > kMaxPath)
        out.error = "501 5.5.4 Bad AUTH parameter: expected AUTH=<> or AUTH=xtext mailbox";
      else
        out.auth = std::move(*decoded);
    } else {
      out.error = unsupported(keyword);
    }
    if (!out.error.empty()) return out;
  }
  return out;
}

RcptParams parse_rcpt_params(const EsmtpParams& params) {
  RcptParams out;
  std::set<std::string, std::less<>> seen;
  for (const auto& [keyword, value] : params) {
    if (!seen.insert(keyword).second) {
      out.error = duplicate(keyword);
    } else if (keyword == "NOTIFY") {
      auto flags = parse_notify(value);
      if (!flags)
        out.error =
            "501 5.5.4 Bad NOTIFY parameter: expected NEVER or a list of SUCCESS, FAILURE, DELAY";
      else
        out.notify = notify_text(*flags);
    } else if (keyword == "ORCPT") {
      if (!parse_orcpt(value))
        out.error = "501 5.5.4 Bad ORCPT parameter: expected ORCPT=addr-type;xtext";
      out.orcpt = value;
    } else {
      out.error = unsupported(keyword);
    }
    if (!out.error.empty()) return out;
  }
  return out;
}

}  // namespace estafette::smtp
