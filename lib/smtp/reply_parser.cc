#include "lib/smtp/reply_parser.h"

namespace estafette::smtp {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Length of an RFC 3463 status code ("5.1.1") at the start of text followed by a space or the
// end, whose class matches the reply's; 0 when there is none.
std::size_t enhanced_length(std::string_view text, int code) {
  if (text.size() < 5 || text[0] != static_cast<char>('0' + code / 100) || text[1] != '.') return 0;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t digits = 0;
    while (i < text.size() && is_digit(text[i]) && digits < 4) {
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 3) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

}  // namespace

std::string Reply::text() const {
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) out += ' ';
    out += line;
  }
  return out;
}

std::string Reply::to_string() const {
  std::string out = std::to_string(code);
  if (!enhanced.empty()) out += ' ' + enhanced;
  std::string t = text();
  if (!t.empty()) out += ' ' + t;
  return out;
}

void ReplyParser::feed(std::string_view bytes) {
  if (error_ != Error::None) return;
  if (start_ > 0 && start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  buffer_.append(bytes);
}

void ReplyParser::fail(Error e) {
  error_ = e;
  buffer_.clear();
  start_ = 0;
  current_ = Reply{};
}

std::optional<Reply> ReplyParser::next() {
  while (error_ == Error::None) {
    std::size_t eol = buffer_.find('\n', start_);
    if (eol == std::string::npos) {
      if (current_size_ + (buffer_.size() - start_) > max_reply_) fail(Error::TooLong);
      return std::nullopt;
    }
    std::string_view line(buffer_.data() + start_, eol - start_);
    current_size_ += line.size() + 1;
    start_ = eol + 1;
    if (current_size_ > max_reply_) {
      fail(Error::TooLong);
      return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
        line[0] < '2' || line[0] > '5' || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      fail(Error::Malformed);
      return std::nullopt;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (current_.lines.empty()) {
      current_.code = code;
    } else if (code != current_.code) {
      fail(Error::CodeMismatch);
      return std::nullopt;
    }
    bool last = line.size() == 3 || line[3] == ' ';
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    std::size_t elen = enhanced_length(text, code);
    if (elen > 0) {
      if (current_.lines.empty()) current_.enhanced.assign(text.substr(0, elen));
      if (text.substr(0, elen) == current_.enhanced) {
        text.remove_prefix(elen);
        if (!text.empty()) text.remove_prefix(1);
      }
    }
    current_.lines.emplace_back(text);
    if (last) {
      Reply done = std::move(current_);
      current_ = Reply{};
      current_size_ = 0;
      return done;
    }
  }
  return std::nullopt;
}

std::string ReplyParser::error_text() const {
  switch (error_) {
    case Error::None:
      return "";
    case Error::Malformed:
      return "malformed reply line";
    case Error::CodeMismatch:
      return "reply lines with different codes";
    case Error::TooLong:
      return "reply too long";
  }
  return "";
}

}  // namespace estafette::smtp
