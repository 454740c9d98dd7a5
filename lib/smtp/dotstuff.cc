#include "lib/smtp/dotstuff.h"

#include <cstring>

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
    std::size_t end = to_lf_ ? wire.find_first_of("\r\n", i) : wire.find('\n', i);
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
  const char* const base = plain.data();
  const std::size_t size = plain.size();
  std::size_t i = 0;
  std::size_t lf = 0;  // the next LF at or after i (size: none); found once per LF, not per CR
  bool lf_known = false;
  // One line per round, copied as a run (memchr, not byte by byte: this is the filtered
  // message's way to the queue).
  while (i < size) {
    if (base[i] == '.') out.push_back('.');
    if (!lf_known || lf < i) {
      const void* at = std::memchr(base + i, '\n', size - i);
      lf = at ? static_cast<std::size_t>(static_cast<const char*>(at) - base) : size;
      lf_known = true;
    }
    const void* cr = std::memchr(base + i, '\r', lf - i);
    const std::size_t end = cr ? static_cast<std::size_t>(static_cast<const char*>(cr) - base) : lf;
    out.append(base + i, end - i);
    out.append("\r\n");
    i = end + 1;
    if (end < size && base[end] == '\r' && i < size && base[i] == '\n') ++i;
  }
  return out;
}

}  // namespace estafette::smtp
