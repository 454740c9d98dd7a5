// macro_store.h: a session's milter macros as an in-process module sees them (getsymval,
// foreach_symval): every phase's, merged (a later value replaces an earlier one), plus which
// of them the current phase gave.
// Names and values live NUL-terminated in one byte arena, so that a session's macros cost a
// couple of allocations in all, not one per name and value, and a lookup answers a C string.
// A pointer from get() or for_each_phase() stays valid until the next set() or clear().
// Replaced values leave their old bytes behind; set() compacts the arena when they exceed the
// live bytes (and kMinCompact), so its size is bounded by about twice the live macros.
// Any thread, one at a time (no locking).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::filters {

class MacroStore final {
 public:
  static constexpr std::size_t kMinCompact = 4096;

  // A new phase: for_each_phase() lists only what set() gives from now on.
  void begin_phase() { phase_.clear(); }
  void set(std::string_view name, std::string_view value);
  // nullptr when not set.
  const char* get(std::string_view name) const;
  template <typename Fn>  // fn(const char* name, const char* value), in the order given
  void for_each_phase(Fn fn) const {
    for (std::uint32_t i : phase_) fn(at(entries_[i].name), at(entries_[i].value));
  }
  void clear();

  std::size_t size() const { return entries_.size(); }
  std::size_t arena_bytes() const { return arena_.size(); }

 private:
  struct Entry {
    std::uint32_t hash = 0;  // of the name: most comparisons stop here
    std::uint32_t name = 0;  // offsets into arena_
    std::uint32_t name_size = 0;
    std::uint32_t value = 0;
    std::uint32_t value_size = 0;
  };
  static std::uint32_t hash(std::string_view name);
  // entries_.size() when absent.
  std::size_t find(std::string_view name, std::uint32_t h) const;
  const char* at(std::uint32_t offset) const { return arena_.data() + offset; }
  std::uint32_t append(std::string_view bytes);  // with a NUL after it
  void compact();

  std::string arena_;
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> phase_;  // indexes into entries_
  std::size_t live_ = 0;              // bytes of the current names and values, NULs included
};

}  // namespace estafette::filters
