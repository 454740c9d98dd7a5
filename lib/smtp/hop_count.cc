#include "lib/smtp/hop_count.h"

#include "lib/smtp/address.h"

namespace estafette::smtp {

void HopCounter::end_name() {
  std::string_view name(name_);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  if (name.size() == 8 && to_lower(name) == "received") ++received_;
  name_.clear();
  skip_line_ = true;
}

void HopCounter::feed(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size() && !done_; ++i) {
    char c = bytes[i];
    if (line_start_) {
      line_start_ = false;
      if (c == '\r' || c == '\n') {  // the empty line: the header section ends
        done_ = true;
        return;
      }
      skip_line_ = c == ' ' || c == '\t';  // a continuation line names no field
    }
    if (c == '\n') {
      name_.clear();
      skip_line_ = false;
      line_start_ = true;
      continue;
    }
    if (skip_line_) continue;
    if (c == ':') {
      end_name();
    } else if (name_.size() < kMaxName) {
      name_.push_back(c);
    } else {
      name_.clear();
      skip_line_ = true;
    }
  }
}

std::size_t count_received(std::string_view message) {
  HopCounter counter;
  counter.feed(message);
  return counter.received();
}

}  // namespace estafette::smtp
