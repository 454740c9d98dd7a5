// metrics_file_fuzz.cc: libFuzzer harness for lib/metrics' reader of a daemon's metrics file
// (<state>/run/metrics/PROGRAM.PID, written by the unprivileged user) and the exposition of what
// it read. The input is the file's bytes. Checks the contract: a file parse() takes has the
// catalog's counter count, a valid program name and only valid names; its exposition renders,
// stays within its bound, and every line is a comment or "name[{labels}] value" without a raw
// newline or quote escaping out of a label.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "lib/metrics/exposition.h"
#include "lib/metrics/shm_file.h"

namespace {

using namespace estafette::metrics;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string why;
  auto s = parse(std::span<const unsigned char>(data, size), why);
  if (!s) {
    check(!why.empty());
    return 0;
  }
  check(size == file_size());
  check(s->counters.size() == slot_count());
  check(valid_program(s->program));
  check(s->pid > 0);
  check(s->names.size() == dynamic_family_count());
  for (const auto& table : s->names) {
    check(table.size() == kNameSlots);
    for (const auto& name : table) check(name.empty() || valid_name(name));
  }
  std::vector<Snapshot> processes = {*s, *s};
  auto text = render({processes, std::nullopt}, 1 << 22);
  check(text.has_value());
  std::size_t start = 0;
  while (start < text->size()) {
    std::size_t end = text->find('\n', start);
    check(end != std::string::npos);
    std::string_view line(text->data() + start, end - start);
    check(!line.empty());
    if (line[0] != '#') {
      check(line.starts_with("estafette_"));
      check(line.find(' ') != std::string_view::npos);
    }
    start = end + 1;
  }
  return 0;
}
