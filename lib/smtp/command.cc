#include "lib/smtp/command.h"

#include <algorithm>
#include <array>
#include <string>

#include "lib/smtp/address.h"

namespace estafette::smtp {
namespace {

struct VerbEntry {
  std::string_view name;
  Verb verb;
};

constexpr std::array<VerbEntry, 12> kVerbs = {{
    {"HELO", Verb::Helo},
    {"EHLO", Verb::Ehlo},
    {"MAIL", Verb::Mail},
    {"RCPT", Verb::Rcpt},
    {"DATA", Verb::Data},
    {"RSET", Verb::Rset},
    {"NOOP", Verb::Noop},
    {"QUIT", Verb::Quit},
    {"VRFY", Verb::Vrfy},
    {"HELP", Verb::Help},
    {"STARTTLS", Verb::Starttls},
    {"AUTH", Verb::Auth},
}};

constexpr std::string_view kMailSyntax = "501 5.5.4 Syntax: MAIL FROM:<address>";
constexpr std::string_view kRcptSyntax = "501 5.5.4 Syntax: RCPT TO:<address>";
constexpr std::string_view kBadSender = "501 5.1.7 Bad sender address syntax";
constexpr std::string_view kBadRecipient = "501 5.1.3 Bad recipient address syntax";
constexpr std::string_view kBadParams = "501 5.5.4 Syntax error in parameters";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && to_upper(a) == to_upper(b);
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool is_keyword_char(char c, bool first) {
  bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return alnum || (!first && c == '-');
}

// esmtp-value = 1*(%d33-60 / %d62-126)
bool is_value_char(char c) {
  return c >= 33 && c <= 126 && c != '=';
}

// Parses `SP esmtp-param *(SP esmtp-param)` (several spaces tolerated).
bool parse_params(std::string_view text, EsmtpParams& out) {
  while (true) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (text.empty()) return true;
    std::size_t end = text.find(' ');
    std::string_view param = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end);
    std::size_t eq = param.find('=');
    std::string_view keyword = param.substr(0, eq);
    if (keyword.empty()) return false;
    for (std::size_t i = 0; i < keyword.size(); ++i) {
      if (!is_keyword_char(keyword[i], i == 0)) return false;
    }
    std::string_view value;
    if (eq != std::string_view::npos) {
      value = param.substr(eq + 1);
      if (value.empty()) return false;
      for (char c : value) {
        if (!is_value_char(c)) return false;
      }
    }
    out.emplace_back(to_upper(keyword), std::string(value));
  }
}

// Length of a Domain or address literal at the start of text, stopping at one of `stops`.
std::size_t domain_length(std::string_view text, std::string_view stops) {
  if (!text.empty() && text[0] == '[') {
    std::size_t close = text.find(']');
    return close == std::string_view::npos ? text.size() : close + 1;
  }
  std::size_t end = text.find_first_of(stops);
  return end == std::string_view::npos ? text.size() : end;
}

enum class PathError { None, Syntax, Address };

// Parses a Path at the start of `text` ("<" [A-d-l ":"] Mailbox ">" or "<>" when allowed).
// On success stores the mailbox in `address` and the text after ">" in `rest`.
PathError parse_path(std::string_view text, bool allow_empty, bool allow_postmaster,
                     std::string& address, bool& source_route, std::string_view& rest) {
  if (text.empty() || text[0] != '<') return PathError::Syntax;
  std::size_t pos = 1;
  if (text.size() > 1 && text[1] == '>') {
    if (!allow_empty) return PathError::Address;
    address.clear();
    rest = text.substr(2);
    return PathError::None;
  }
  // Source route: "@" Domain *( "," "@" Domain ) ":" -- syntax checked, then dropped.
  if (pos < text.size() && text[pos] == '@') {
    source_route = true;
    while (true) {
      ++pos;  // the '@'
      std::size_t len = domain_length(text.substr(pos), ",:>");
      if (!is_valid_domain(text.substr(pos, len))) return PathError::Address;
      pos += len;
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        if (pos >= text.size() || text[pos] != '@') return PathError::Address;
        continue;
      }
      if (pos < text.size() && text[pos] == ':') {
        ++pos;
        break;
      }
      return PathError::Address;
    }
  }
  // Mailbox: the local part may be quoted (and then contain '>' or '@').
  std::size_t start = pos;
  std::string_view tail = text.substr(pos);
  std::size_t local_len = 0;
  if (!tail.empty() && tail[0] == '"') {
    bool closed = false;
    for (std::size_t i = 1; i < tail.size(); ++i) {
      if (tail[i] == '\\') {
        ++i;
      } else if (tail[i] == '"') {
        local_len = i + 1;
        closed = true;
        break;
      }
    }
    if (!closed) return PathError::Address;
  } else {
    std::size_t end = tail.find_first_of("@>");
    local_len = end == std::string_view::npos ? tail.size() : end;
  }
  pos += local_len;
  if (pos < text.size() && text[pos] == '@') {
    ++pos;
    pos += domain_length(text.substr(pos), ">");
  }
  if (pos >= text.size() || text[pos] != '>') return PathError::Syntax;
  std::string_view mailbox = text.substr(start, pos - start);
  if (pos + 1 > kMaxPath) return PathError::Address;
  if (allow_postmaster && start == 1 && iequals(mailbox, "postmaster")) {
    address = std::string(mailbox);
  } else {
    if (!parse_mailbox(mailbox)) return PathError::Address;
    address = std::string(mailbox);
  }
  rest = text.substr(pos + 1);
  return PathError::None;
}

void parse_mail_rcpt(Command& cmd, std::string_view args) {
  const bool mail = cmd.verb == Verb::Mail;
  const std::string_view syntax = mail ? kMailSyntax : kRcptSyntax;
  const std::string_view prefix = mail ? "FROM:" : "TO:";
  if (args.size() < prefix.size() || !iequals(args.substr(0, prefix.size()), prefix)) {
    cmd.error = syntax;
    return;
  }
  args.remove_prefix(prefix.size());
  if (!args.empty() && args[0] == ' ') args.remove_prefix(1);  // "MAIL FROM: <a@b>" (Postfix)
  std::string_view rest;
  switch (parse_path(args, mail, !mail, cmd.address, cmd.source_route, rest)) {
    case PathError::None:
      break;
    case PathError::Syntax:
      cmd.error = syntax;
      return;
    case PathError::Address:
      cmd.error = mail ? kBadSender : kBadRecipient;
      return;
  }
  if (!rest.empty() && rest[0] != ' ') {
    cmd.address.clear();
    cmd.source_route = false;
    cmd.error = syntax;
    return;
  }
  if (!parse_params(rest, cmd.params)) {
    cmd.address.clear();
    cmd.source_route = false;
    cmd.params.clear();
    cmd.error = kBadParams;
  }
}

}  // namespace

std::string_view verb_name(Verb verb) {
  for (const auto& entry : kVerbs) {
    if (entry.verb == verb) return entry.name;
  }
  return "UNKNOWN";
}

Command parse_command(std::string_view line) {
  Command cmd;
  std::size_t space = line.find(' ');
  std::string_view word = line.substr(0, space);
  std::string_view args = space == std::string_view::npos ? std::string_view() : line.substr(space);
  args = trim(args);
  for (const auto& entry : kVerbs) {
    if (iequals(word, entry.name)) {
      cmd.verb = entry.verb;
      break;
    }
  }
  if (cmd.verb == Verb::Unknown) return cmd;
  cmd.argument = std::string(args);
  switch (cmd.verb) {
    case Verb::Helo:
    case Verb::Ehlo:
      if (args.empty()) {
        cmd.error = cmd.verb == Verb::Helo ? "501 5.5.4 Syntax: HELO hostname"
                                           : "501 5.5.4 Syntax: EHLO hostname";
      } else if (args.size() > kMaxHeloArgument) {
        cmd.error = "501 5.5.2 Error: " + std::string(verb_name(cmd.verb)) +
                    " argument longer than " + std::to_string(kMaxHeloArgument) + " characters";
      } else if (std::any_of(args.begin(), args.end(), [](char c) {
                   return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                 })) {
        cmd.error = "501 5.5.2 Error: control characters in the " +
                    std::string(verb_name(cmd.verb)) + " argument";
      }
      if (!cmd.ok()) cmd.argument.clear();
      break;
    case Verb::Mail:
    case Verb::Rcpt:
      parse_mail_rcpt(cmd, args);
      break;
    case Verb::Vrfy:
      if (args.empty()) cmd.error = "501 5.5.4 Syntax: VRFY address";
      break;
    case Verb::Data:
    case Verb::Rset:
    case Verb::Quit:
    case Verb::Starttls:
      if (!args.empty()) cmd.error = "501 5.5.4 Syntax: " + std::string(verb_name(cmd.verb));
      break;
    case Verb::Auth: {
      // RFC 4954 4: "AUTH" SP sasl-mech [SP initial-response]; the mechanism is 1*20 of
      // [A-Z0-9-_], the response base64 or "=" (checked by the SASL exchange).
      auto [mechanism, initial] = auth_argument(args);
      bool mechanism_ok = !mechanism.empty() && mechanism.size() <= 20 &&
                          std::all_of(mechanism.begin(), mechanism.end(),
                                      [](char c) { return is_keyword_char(c, false) || c == '_'; });
      bool initial_ok =
          !initial || (!initial->empty() && initial->find(' ') == std::string_view::npos);
      if (!mechanism_ok || !initial_ok) {
        cmd.error = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
        cmd.argument.clear();
      }
      break;
    }
    case Verb::Noop:
    case Verb::Help:
    case Verb::Unknown:
      break;
  }
  return cmd;
}

AuthArgument auth_argument(std::string_view argument) {
  AuthArgument out;
  std::size_t space = argument.find(' ');
  out.mechanism = argument.substr(0, space);
  if (space != std::string_view::npos) {
    std::string_view rest = argument.substr(space);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    out.initial_response = rest;
  }
  return out;
}

}  // namespace estafette::smtp
