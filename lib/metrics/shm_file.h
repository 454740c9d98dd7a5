// shm_file.h: one process's metrics as a shared-memory file, <state>/run/metrics/PROGRAM.PID,
// and its reader.
// The writer (each daemon) creates the file at start, maps it, and counts into it with relaxed
// atomic increments: no lock, no system call, any thread. It unlinks the file when destroyed; a
// file left by a process that died is ignored by the reader (its pid is gone) and removed.
// Layout (all little-endian as written by this host, 8-byte aligned):
//   header (kHeaderSize bytes): magic "ESTMTRC1", version, header size, the catalog's layout
//     fingerprint, pid, counter count, name tables, name slots, name bytes, program (NUL-padded)
//   uint64 counters[slot_count()]              (catalog.h: first_slot, cell_slot)
//   names[dynamic_family_count()][kNameSlots][kNameBytes]: byte 0 the length (0: free), then
//     the name; set once by the writer, length last.
// The files are written by the unprivileged user: to the reader (estafette-metrics) they are
// untrusted input. parse() checks every header field against the compiled catalog, the exact
// size, the program name and every name's length and characters, and refuses the file with the
// reason otherwise (never a partial result).
// Threads: Writer::add/observe from any thread; Writer::add_named from one thread (the loop
// that owns the names). The reader functions are pure (parse) or plain blocking reads (read_dir).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/metrics/catalog.h"

namespace estafette::metrics {

inline constexpr char kMagic[8] = {'E', 'S', 'T', 'M', 'T', 'R', 'C', '1'};
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 80;
inline constexpr std::size_t kProgramBytes = 32;

// The size a valid file has.
std::size_t file_size();
// A name the file may carry (and a label value may show): 1 to kNameBytes-1 bytes of
// [A-Za-z0-9.:_,-] or '[' ']' (an address literal; courierd's "mx:HOST,HOST" sites).
bool valid_name(std::string_view name);
// A program name: 1 to kProgramBytes-1 bytes of [a-z-].
bool valid_program(std::string_view name);

class Writer final {
 public:
  // Creates DIR/PROGRAM.PID (DIR made if missing, a stale file of the same name replaced) and
  // maps it. Throws std::runtime_error with the reason.
  static std::unique_ptr<Writer> create(const std::string& dir, std::string_view program);
  // Counts into private memory: metrics off (metrics_listen empty), and tests.
  static std::unique_ptr<Writer> anonymous(std::string_view program);
  // What a daemon calls at start: create(dir, program) when `enabled` (metrics_listen is set),
  // else anonymous(); a file that cannot be made is logged and counting goes to memory (metrics
  // never stop a daemon).
  static std::unique_ptr<Writer> open(bool enabled, const std::string& dir,
                                      std::string_view program);
  ~Writer();  // unlinks the file (only in the process that created it, not in a fork)
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void add(Metric m, std::size_t fixed = 0, std::uint64_t n = 1);
  // The cell of `name` (its slot, claimed on first use; "other" once all are taken or when the
  // name is not valid_name()). Owner thread only.
  void add_named(Metric m, std::size_t fixed, std::string_view name, std::uint64_t n = 1);
  // A histogram observation (in the family's unit of measure: seconds, records).
  void observe(Metric m, double value);

  const std::string& path() const { return path_; }  // "" when anonymous
  // The mapped bytes (tests read them back with parse()).
  std::span<const unsigned char> bytes() const;

 private:
  Writer(unsigned char* base, std::string path, std::string_view program);
  std::size_t name_slot(Metric m, std::string_view name);
  std::atomic_ref<std::uint64_t> counter(std::size_t slot);

  unsigned char* base_;
  std::string path_;
  pid_t owner_;
  std::vector<std::vector<std::string>> names_;  // per name table, the names claimed so far
};

// One process's numbers, read back.
struct Snapshot {
  std::string program;
  pid_t pid = 0;
  std::vector<std::uint64_t> counters;          // slot_count()
  std::vector<std::vector<std::string>> names;  // per name table, kNameSlots ("" = free)
};

// Checks and decodes a file's bytes; nullopt with `why` set when it is refused.
std::optional<Snapshot> parse(std::span<const unsigned char> bytes, std::string& why);

struct DirRead {
  std::vector<Snapshot> live;
  std::vector<std::string> refused;  // "FILE: reason", for the log
};
// Reads every PROGRAM.PID file of dir whose process is alive (at most max_files; a file is
// opened without following links, must be a regular file of file_size() bytes and name the pid
// of its file name). Files of processes that are gone are unlinked when `remove_dead`.
DirRead read_dir(const std::string& dir, std::size_t max_files, bool remove_dead);

}  // namespace estafette::metrics
