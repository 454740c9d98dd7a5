// protocol.cc: the policy delegation protocol's request, answer and actions (see protocol.h).
#include "filters/policy/protocol.h"

#include <algorithm>
#include <cctype>

namespace estafette::policy {

namespace {

using Kind = filters::Modification::Kind;
using Action = filters::Verdict::Action;

void append_clean(std::string& out, std::string_view text) {
  for (char c : text) out += c == '\r' || c == '\n' || c == '\0' ? ' ' : c;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string upper(std::string_view word) {
  std::string out(word);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The length of an RFC 3463 code ("4.7.1") at the start of text, 0 when there is none.
std::size_t enhanced_code(std::string_view text) {
  std::size_t i = 0;
  for (int part = 0; part < 3; ++part) {
    std::size_t start = i;
    while (i < text.size() && is_digit(text[i]) && i - start < 3) ++i;
    if (i == start || (part == 0 && i - start != 1)) return 0;
    if (part < 2) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  return i == text.size() || text[i] == ' ' ? i : 0;
}

// One line of printable ASCII, at most a reply line's worth: the text reaches the client.
std::string reply_text(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 450)) out += (c >= 32 && c < 127) || c == '\t' ? c : '?';
  return out;
}

// "CODE ENHANCED text": the server's enhanced code kept when of the code's class.
std::string make_reply(std::string_view code, std::string_view text, std::string_view fallback) {
  std::size_t n = enhanced_code(text);
  std::string enhanced = n != 0 && text[0] == code[0] ? std::string(text.substr(0, n))
                                                      : std::string(1, code[0]) + ".7.1";
  if (n != 0) text.remove_prefix(std::min(text.size(), n + 1));
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  if (text.empty()) text = fallback;
  return std::string(code) + " " + enhanced + " " + reply_text(text);
}

}  // namespace

std::string format_request(const Attributes& attributes) {
  std::string out;
  for (const auto& [name, value] : attributes) {
    append_clean(out, name);
    out += '=';
    append_clean(out, value);
    out += '\n';
  }
  out += '\n';
  return out;
}

ReplyReader::Status ReplyReader::fail(std::string why) {
  error_ = std::move(why);
  return Status::Error;
}

ReplyReader::Status ReplyReader::feed(std::string_view bytes) {
  if (!error_.empty()) return Status::Error;
  if (done_) return bytes.empty() ? Status::Done : fail("data after the answer");
  total_ += bytes.size();
  if (total_ > kMaxReply) return fail("answer longer than " + std::to_string(kMaxReply) + " bytes");
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      line_.append(bytes);
      return Status::NeedMore;
    }
    line_.append(bytes.substr(0, nl));
    bytes.remove_prefix(nl + 1);
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.empty()) {
      if (!bytes.empty()) return fail("data after the answer");
      if (!have_action_) return fail("answer without action=");
      done_ = true;
      return Status::Done;
    }
    std::size_t eq = line_.find('=');
    if (eq == std::string::npos) return fail("answer line without '='");
    // Other attributes are allowed and ignored (as Postfix does); the first action counts.
    if (line_.compare(0, eq, "action") == 0 && !have_action_) {
      action_ = line_.substr(eq + 1);
      have_action_ = true;
    }
    line_.clear();
  }
  return Status::NeedMore;
}

bool parse_action(std::string_view action, Decision& out, std::string* error) {
  out = Decision{};
  while (!action.empty() && (action.front() == ' ' || action.front() == '\t'))
    action.remove_prefix(1);
  while (!action.empty() && (action.back() == ' ' || action.back() == '\t'))
    action.remove_suffix(1);
  if (action.empty()) {
    *error = "empty action";
    return false;
  }
  std::size_t space = action.find_first_of(" \t");
  std::string word = upper(action.substr(0, space));
  std::string_view text =
      space == std::string_view::npos ? std::string_view() : action.substr(space + 1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);

  if (word.size() == 3 && (word[0] == '4' || word[0] == '5') && is_digit(word[1]) &&
      is_digit(word[2])) {
    out.verdict.action = Action::ReplyCode;
    out.verdict.text = make_reply(word, text, word[0] == '4' ? "Try again later" : "Rejected");
    return true;
  }
  if (!word.empty() && is_digit(word[0])) {
    *error = "reply code '" + reply_text(word) + "' is not 4NN or 5NN";
    return false;
  }
  if (word == "OK" || word == "DUNNO") return true;
  if (word == "REJECT") {
    out.verdict.action = Action::ReplyCode;
    out.verdict.text = make_reply("554", text, "Access denied");
    return true;
  }
  if (word == "DEFER" || word == "DEFER_IF_PERMIT") {
    out.verdict.action = Action::ReplyCode;
    out.verdict.text = make_reply("450", text, "Service unavailable");
    return true;
  }
  if (word == "DISCARD") {
    out.verdict.action = Action::Discard;
    out.note = "discard" + (text.empty() ? std::string() : ": " + reply_text(text));
    return true;
  }
  if (word == "PREPEND") {
    std::size_t colon = text.find(':');
    std::string_view name = text.substr(0, colon);
    if (colon == std::string_view::npos || name.empty()) {
      *error = "PREPEND without a header";
      return false;
    }
    // RFC 5322 field name: printable ASCII but ':'; the value must not end the line.
    bool bad_name =
        std::any_of(name.begin(), name.end(), [](char c) { return c <= 32 || c > 126; });
    if (bad_name || text.substr(colon + 1).find_first_of(std::string_view("\r\n\0", 3)) !=
                        std::string_view::npos) {
      *error = "PREPEND header with a control character or a bad name";
      return false;
    }
    filters::Modification mod;
    mod.kind = Kind::InsertHeader;
    mod.index = 0;
    mod.name = name;
    mod.value = text.substr(colon + 1);  // leading space kept, as written
    out.modifications.push_back(std::move(mod));
    return true;
  }
  if (word == "HOLD") {
    filters::Modification mod;
    mod.kind = Kind::Quarantine;
    mod.text = text.empty() ? "held by a policy service" : reply_text(text);
    out.modifications.push_back(std::move(mod));
    return true;
  }
  if (word == "WARN") {
    out.note = "warning: " + reply_text(text);
    return true;
  }
  out.note = "action " + reply_text(word) + " not supported, taken as DUNNO";
  return true;
}

}  // namespace estafette::policy
