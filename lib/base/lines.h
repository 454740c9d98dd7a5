// lines.h: splitting a text file's contents into lines, for the small parsers that read one
// (passwd, sender_login_map). Pure; any thread.
#pragma once

#include <string_view>

namespace estafette::base {

// The first line of `text` without its "\n" or "\r\n", and `text` advanced past it; the last
// line needs no newline. Call while !text.empty().
inline std::string_view next_line(std::string_view& text) {
  auto end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace estafette::base
