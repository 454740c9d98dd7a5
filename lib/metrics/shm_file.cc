#include "lib/metrics/shm_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "lib/base/fd.h"
#include "lib/base/log.h"

namespace estafette::metrics {
namespace {

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t fingerprint;
  std::int64_t pid;
  std::uint32_t slot_count;
  std::uint32_t name_tables;
  std::uint32_t name_slots;
  std::uint32_t name_bytes;
  char program[kProgramBytes];
};
static_assert(sizeof(Header) == kHeaderSize);

std::size_t names_offset() {
  return kHeaderSize + slot_count() * sizeof(std::uint64_t);
}
std::size_t name_offset(std::size_t table, std::size_t slot) {
  return names_offset() + (table * kNameSlots + slot) * kNameBytes;
}

void write_header(unsigned char* base, std::string_view program) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.header_size = kHeaderSize;
  h.fingerprint = layout_fingerprint();
  h.pid = ::getpid();
  h.slot_count = static_cast<std::uint32_t>(slot_count());
  h.name_tables = static_cast<std::uint32_t>(dynamic_family_count());
  h.name_slots = kNameSlots;
  h.name_bytes = kNameBytes;
  std::memcpy(h.program, program.data(), std::min(program.size(), kProgramBytes - 1));
  std::memcpy(base, &h, sizeof(h));
}

std::runtime_error failure(const std::string& what, int err) {
  return std::runtime_error(what + ": " + base::errno_text(err));
}

std::optional<pid_t> pid_suffix(std::string_view file) {
  auto dot = file.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || !valid_program(file.substr(0, dot)))
    return std::nullopt;
  pid_t pid = 0;
  auto digits = file.substr(dot + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (ec != std::errc() || end != digits.data() + digits.size() || pid <= 0) return std::nullopt;
  return pid;
}

bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

std::size_t file_size() {
  return names_offset() + dynamic_family_count() * kNameSlots * kNameBytes;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() >= kNameBytes) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == ':' || c == '_' || c == '-' || c == '[' || c == ']' || c == ',';
  });
}

bool valid_program(std::string_view name) {
  if (name.empty() || name.size() >= kProgramBytes) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return (c >= 'a' && c <= 'z') || c == '-'; });
}

Writer::Writer(unsigned char* base, std::string path, std::string_view program)
    : base_(base), path_(std::move(path)), owner_(::getpid()), names_(dynamic_family_count()) {
  write_header(base_, program);
}

std::unique_ptr<Writer> Writer::create(const std::string& dir, std::string_view program) {
  if (!valid_program(program)) throw std::invalid_argument("metrics: bad program name");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw failure("mkdir " + dir, errno);
  base::UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) throw failure("open " + dir, errno);
  std::string name = std::string(program) + "." + std::to_string(::getpid());
  ::unlinkat(d.get(), name.c_str(), 0);  // a file left by an earlier process with our pid
  base::UniqueFd fd(
      ::openat(d.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) throw failure("create " + dir + "/" + name, errno);
  if (::ftruncate(fd.get(), static_cast<off_t>(file_size())) != 0)
    throw failure("size " + dir + "/" + name, errno);
  void* p = ::mmap(nullptr, file_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) throw failure("mmap " + dir + "/" + name, errno);
  return std::unique_ptr<Writer>(
      new Writer(static_cast<unsigned char*>(p), dir + "/" + name, program));
}

std::unique_ptr<Writer> Writer::anonymous(std::string_view program) {
  if (!valid_program(program)) throw std::invalid_argument("metrics: bad program name");
  void* p = ::mmap(nullptr, file_size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw failure("mmap", errno);
  return std::unique_ptr<Writer>(new Writer(static_cast<unsigned char*>(p), "", program));
}

std::unique_ptr<Writer> Writer::open(bool enabled, const std::string& dir,
                                     std::string_view program) {
  if (enabled) {
    try {
      return create(dir, program);
    } catch (const std::exception& e) {
      base::log(std::string(program)).warning(std::string("metrics off: ") + e.what());
    }
  }
  return anonymous(program);
}

Writer::~Writer() {
  ::munmap(base_, file_size());
  if (!path_.empty() && ::getpid() == owner_) ::unlink(path_.c_str());
}

std::span<const unsigned char> Writer::bytes() const {
  return {base_, file_size()};
}

std::atomic_ref<std::uint64_t> Writer::counter(std::size_t slot) {
  auto* slots = reinterpret_cast<std::uint64_t*>(base_ + kHeaderSize);
  return std::atomic_ref<std::uint64_t>(slots[slot]);
}

void Writer::add(Metric m, std::size_t fixed, std::uint64_t n) {
  counter(cell_slot(m, fixed, 0)).fetch_add(n, std::memory_order_relaxed);
}

std::size_t Writer::name_slot(Metric m, std::string_view name) {
  if (!valid_name(name)) return kNameSlots;
  const std::size_t table = dynamic_index(m);
  auto& claimed = names_[table];
  for (std::size_t i = 0; i < claimed.size(); ++i)
    if (claimed[i] == name) return i;
  if (claimed.size() == kNameSlots) return kNameSlots;
  unsigned char* entry = base_ + name_offset(table, claimed.size());
  std::memcpy(entry + 1, name.data(), name.size());
  std::atomic_ref<unsigned char>(entry[0]).store(static_cast<unsigned char>(name.size()),
                                                 std::memory_order_release);
  claimed.emplace_back(name);
  return claimed.size() - 1;
}

void Writer::add_named(Metric m, std::size_t fixed, std::string_view name, std::uint64_t n) {
  counter(cell_slot(m, fixed, name_slot(m, name))).fetch_add(n, std::memory_order_relaxed);
}

void Writer::observe(Metric m, double value) {
  const Family& f = family(m);
  if (f.kind != Kind::Histogram) throw std::logic_error("metrics: observe on a counter");
  if (!(value >= 0)) value = 0;  // NaN and negative (a clock step) as 0
  const std::size_t first = cell_slot(m, 0, 0);
  std::size_t bucket = 0;
  while (bucket < f.buckets.size() && value > f.buckets[bucket]) ++bucket;
  counter(first + bucket).fetch_add(1, std::memory_order_relaxed);
  const double units = std::min(value / f.unit, 1e15);
  counter(first + f.buckets.size() + 1)
      .fetch_add(static_cast<std::uint64_t>(std::llround(units)), std::memory_order_relaxed);
}

std::optional<Snapshot> parse(std::span<const unsigned char> bytes, std::string& why) {
  if (bytes.size() != file_size()) {
    why = "size " + std::to_string(bytes.size()) + ", expected " + std::to_string(file_size());
    return std::nullopt;
  }
  Header h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) {
    why = "not a metrics file (bad magic)";
    return std::nullopt;
  }
  if (h.version != kVersion || h.header_size != kHeaderSize) {
    why = "version " + std::to_string(h.version) + " not supported";
    return std::nullopt;
  }
  if (h.fingerprint != layout_fingerprint() || h.slot_count != slot_count() ||
      h.name_tables != dynamic_family_count() || h.name_slots != kNameSlots ||
      h.name_bytes != kNameBytes) {
    why = "written by another layout (another build)";
    return std::nullopt;
  }
  if (h.pid <= 0 || h.pid > 0x7fffffff) {
    why = "bad pid";
    return std::nullopt;
  }
  const char* end = static_cast<const char*>(std::memchr(h.program, 0, kProgramBytes));
  std::string_view program(h.program, end ? static_cast<std::size_t>(end - h.program) : 0);
  if (!end || !valid_program(program)) {
    why = "bad program name";
    return std::nullopt;
  }
  Snapshot s;
  s.program = program;
  s.pid = static_cast<pid_t>(h.pid);
  s.counters.resize(slot_count());
  std::memcpy(s.counters.data(), bytes.data() + kHeaderSize, slot_count() * sizeof(std::uint64_t));
  s.names.assign(dynamic_family_count(), std::vector<std::string>(kNameSlots));
  for (std::size_t t = 0; t < dynamic_family_count(); ++t) {
    for (std::size_t i = 0; i < kNameSlots; ++i) {
      const unsigned char* entry = bytes.data() + name_offset(t, i);
      if (entry[0] == 0) continue;
      std::string_view name(reinterpret_cast<const char*>(entry + 1), entry[0]);
      if (entry[0] >= kNameBytes || !valid_name(name)) {
        why = "bad name in table " + std::to_string(t) + " slot " + std::to_string(i);
        return std::nullopt;
      }
      s.names[t][i] = name;
    }
  }
  return s;
}

DirRead read_dir(const std::string& dir, std::size_t max_files, bool remove_dead) {
  DirRead out;
  base::UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) {
    if (errno != ENOENT) out.refused.push_back(dir + ": " + base::errno_text(errno));
    return out;
  }
  int listing_fd = ::dup(d.get());
  DIR* listing = listing_fd >= 0 ? ::fdopendir(listing_fd) : nullptr;
  if (!listing) {
    if (listing_fd >= 0) ::close(listing_fd);
    out.refused.push_back(dir + ": " + base::errno_text(errno));
    return out;
  }
  std::size_t seen = 0;
  std::string buffer(file_size(), '\0');
  while (dirent* e = ::readdir(listing)) {
    std::string_view file = e->d_name;
    if (file == "." || file == "..") continue;
    if (++seen > max_files) {
      out.refused.push_back(dir + ": more than " + std::to_string(max_files) + " files");
      break;
    }
    const std::string where = dir + "/" + std::string(file);
    auto pid = pid_suffix(file);
    if (!pid) {
      out.refused.push_back(where + ": not PROGRAM.PID");
      continue;
    }
    if (!alive(*pid)) {
      if (remove_dead) ::unlinkat(d.get(), e->d_name, 0);
      continue;
    }
    base::UniqueFd fd(::openat(d.get(), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st;
    if (!fd || ::fstat(fd.get(), &st) != 0) {
      out.refused.push_back(where + ": " + base::errno_text(errno));
      continue;
    }
    if (!S_ISREG(st.st_mode) || static_cast<std::size_t>(st.st_size) != file_size()) {
      out.refused.push_back(where + ": not a regular file of " + std::to_string(file_size()) +
                            " bytes");
      continue;
    }
    // pread, not mmap: the writer may truncate its file, which would SIGBUS a mapping.
    ssize_t n = ::pread(fd.get(), buffer.data(), buffer.size(), 0);
    if (n < 0 || static_cast<std::size_t>(n) != buffer.size()) {
      out.refused.push_back(where + ": short read");
      continue;
    }
    std::string why;
    auto snapshot =
        parse({reinterpret_cast<const unsigned char*>(buffer.data()), buffer.size()}, why);
    if (!snapshot) {
      out.refused.push_back(where + ": " + why);
      continue;
    }
    if (snapshot->pid != *pid || file.substr(0, file.rfind('.')) != snapshot->program) {
      out.refused.push_back(where + ": names another process");
      continue;
    }
    out.live.push_back(std::move(*snapshot));
  }
  ::closedir(listing);
  return out;
}

}  // namespace estafette::metrics
