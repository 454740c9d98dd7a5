#include "lib/smtp/dotstuff.h"

namespace estafette::smtp {

void Unstuffer::feed(std::string_view wire, std::string& out) {
  out.reserve(out.size() + wire.size());
  std::size_t i = 0;
  while (i < wire.size()) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (wire[i] == '\n') {
        out.push_back('\n');
        line_start_ = true;
        ++i;
        continue;
      }
      out.push_back('\r');
    }
    if (line_start_) {
      line_start_ = false;
      if (wire[i] == '.') {
        ++i;
        continue;
      }
    }
    // Copy the run up to the next CR (if converting) or LF.
    std::size_t end = wire.find_first_of(to_lf_ ? std::string_view("\r\n") : "\n", i);
    if (end == std::string_view::npos) {
      out.append(wire.substr(i));
      return;
    }
    out.append(wire.substr(i, end - i));
    if (wire[end] == '\r') {
      pending_cr_ = true;
    } else {
      out.push_back('\n');
      line_start_ = true;
    }
    i = end + 1;
  }
}

void Unstuffer::finish(std::string& out) {
  if (pending_cr_) out.push_back('\r');
  pending_cr_ = false;
  line_start_ = true;
}

void unstuff_append(std::string_view wire, std::string& out) {
  Unstuffer unstuffer(false);
  unstuffer.feed(wire, out);
  unstuffer.finish(out);
}

std::string stuff(std::string_view plain) {
  std::string out;
  out.reserve(plain.size() + plain.size() / 32 + 2);
  bool line_start = true;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    char c = plain[i];
    if (line_start && c == '.') out.push_back('.');
    line_start = false;
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < plain.size() && plain[i + 1] == '\n') ++i;
      out.append("\r\n");
      line_start = true;
    } else {
      out.push_back(c);
    }
  }
  if (!out.empty() && !line_start) out.append("\r\n");
  return out;
}

}  // namespace estafette::smtp
