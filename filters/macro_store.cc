// macro_store.cc: see macro_store.h.
#include "filters/macro_store.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace estafette::filters {

namespace {
// Offsets are 32 bits; far beyond what a session's macros come to (esmtpd's are a few hundred
// bytes, a milter command's are bounded by its frame).
constexpr std::size_t kMaxArena = std::size_t{1} << 30;
}  // namespace

std::uint32_t MacroStore::append(std::string_view bytes) {
  const std::size_t at = arena_.size();
  if (at + bytes.size() + 1 > kMaxArena) throw std::length_error("milter macros over 1 GiB");
  if (arena_.capacity() < at + bytes.size() + 1)
    arena_.reserve(std::max<std::size_t>(512, 2 * (at + bytes.size() + 1)));
  // resize_and_overwrite would skip the zero fill; the names and values are a few bytes each.
  arena_.resize(at + bytes.size() + 1);
  if (!bytes.empty()) std::memcpy(arena_.data() + at, bytes.data(), bytes.size());
  arena_[at + bytes.size()] = '\0';
  return static_cast<std::uint32_t>(at);
}

void MacroStore::set(std::string_view name, std::string_view value) {
  // A value is read back as a C string: it ends at its first NUL, as a std::string's c_str().
  const std::uint32_t h = hash(name);
  const std::size_t found = find(name, h);
  if (found == entries_.size()) {
    if (entries_.capacity() == 0) {  // a session's usual macros, in one allocation each
      entries_.reserve(32);
      phase_.reserve(32);
    }
    Entry e;
    e.hash = h;
    e.name = append(name);
    e.name_size = static_cast<std::uint32_t>(name.size());
    e.value = append(value);
    e.value_size = static_cast<std::uint32_t>(value.size());
    entries_.push_back(e);
    live_ += name.size() + value.size() + 2;
    phase_.push_back(static_cast<std::uint32_t>(entries_.size() - 1));
    return;
  }
  Entry* it = &entries_[found];
  const auto index = static_cast<std::uint32_t>(found);
  const std::size_t old_size = it->value_size;
  if (value.size() <= old_size) {  // in place: nothing left behind but the shorter tail
    if (!value.empty()) std::memcpy(arena_.data() + it->value, value.data(), value.size());
    arena_[it->value + value.size()] = '\0';
  } else {
    it->value = append(value);
  }
  it->value_size = static_cast<std::uint32_t>(value.size());
  live_ = live_ - old_size + value.size();
  if (std::find(phase_.begin(), phase_.end(), index) == phase_.end()) phase_.push_back(index);
  if (arena_.size() > std::max(kMinCompact, 2 * live_)) compact();
}

std::uint32_t MacroStore::hash(std::string_view name) {
  // Not a hash table's: a tag that makes most comparisons one integer compare. The names are
  // esmtpd's ("{client_addr}", "{rcpt_addr}", "i"): their length and the letters just inside
  // the braces tell nearly all apart.
  if (name.empty()) return 0;
  const auto byte = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(name[i]));
  };
  const std::size_t n = name.size();
  return static_cast<std::uint32_t>(n & 0xff) | byte(n > 1 ? 1 : 0) << 8 |
         byte(n > 2 ? n - 2 : n - 1) << 16 | byte(n / 2) << 24;
}

std::size_t MacroStore::find(std::string_view name, std::uint32_t h) const {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.hash == h && e.name_size == name.size() &&
        (name.empty() || std::memcmp(at(e.name), name.data(), name.size()) == 0))
      return i;
  }
  return entries_.size();
}

const char* MacroStore::get(std::string_view name) const {
  const std::size_t i = find(name, hash(name));
  return i == entries_.size() ? nullptr : at(entries_[i].value);
}

void MacroStore::clear() {
  arena_.clear();
  entries_.clear();
  phase_.clear();
  live_ = 0;
}

void MacroStore::compact() {
  std::string old;
  old.swap(arena_);
  arena_.reserve(live_);
  for (Entry& e : entries_) {
    std::string_view name(old.data() + e.name, e.name_size);
    std::string_view value(old.data() + e.value, e.value_size);
    e.name = append(name);
    e.value = append(value);
  }
}

}  // namespace estafette::filters
