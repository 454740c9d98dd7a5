// crash_log.cc: the fatal-signal handler and what it reads. Everything the handler touches is
// written before it can run (install) or published with a flag behind a signal fence (Context,
// code ranges).
#include "lib/base/crash_log.h"

#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace estafette::base::crash {

namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr std::size_t kAltStackSize = 128 * 1024;  // the handler's frame is a few KiB
constexpr std::size_t kMaxRanges = 32;
constexpr std::size_t kMaxRangeName = 64;

// Appends to a fixed buffer, dropping what does not fit. No allocation, no locale.
class Writer {
 public:
  Writer(char* out, std::size_t size) : out_(out), size_(size) {}
  void put(char c) {
    if (len_ < size_) out_[len_++] = c;
  }
  void put(std::string_view text) {
    for (char c : text) put(c);
  }
  // Control bytes as '?': the text may come from a module (its name).
  void put_printable(std::string_view text) {
    for (char c : text) {
      auto u = static_cast<unsigned char>(c);
      put(u < 0x20 || u == 0x7f ? '?' : c);
    }
  }
  void dec(std::int64_t value, int width = 0) {
    char digits[24];
    int n = 0;
    std::uint64_t v =
        value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    if (value < 0) put('-');
    for (int pad = n; pad < width; ++pad) put('0');
    while (n > 0) put(digits[--n]);
  }
  void hex(std::uintptr_t value) {
    static constexpr char kHex[] = "0123456789abcdef";
    char digits[2 * sizeof value];
    int n = 0;
    do {
      digits[n++] = kHex[value & 15];
      value >>= 4;
    } while (value != 0);
    put("0x");
    while (n > 0) put(digits[--n]);
  }
  std::size_t size() const { return len_; }

 private:
  char* out_;
  std::size_t size_;
  std::size_t len_ = 0;
};

// Days since 1970-01-01 -> year, month, day (H. Hinnant's civil_from_days).
void civil_from_days(std::int64_t days, std::int64_t& year, int& month, int& day) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  year = yoe + era * 400 + (month <= 2 ? 1 : 0);
}

// What install() sets once, before the handler can run.
struct Settings {
  int fd = -1;
  long utc_offset = 0;
  pid_t loop_tid = 0;
  char program[32] = {};
};
Settings g_settings;

// The calling thread's context (Context). Constant-initialized thread_local of the program's
// own static TLS: reading it in a signal handler allocates nothing.
struct Record {
  std::atomic<bool> active{false};
  char text[Context::kMaxText + 1];
};
thread_local Record t_record;

struct CodeRange {
  std::atomic<bool> used{false};
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  char name[kMaxRangeName] = {};
};
CodeRange g_ranges[kMaxRanges];
std::mutex g_ranges_mutex;  // adders and removers only; the handler reads `used` first

std::uintptr_t program_counter(void* context) {
  if (!context) return 0;
  auto* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
  (void)uc;
  return 0;
#endif
}

std::uintptr_t stack_pointer(void* context) {
  if (!context) return 0;
  auto* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.sp);
#else
  (void)uc;
  return 0;
#endif
}

// A fault in libc (strlen of a bad pointer, say) is in no module's code, yet a module called it:
// the first word on the faulting thread's stack (up to 16 KiB above its stack pointer) that
// points into a module's code is most likely the return address of that call. The words are
// read with process_vm_readv, which answers EFAULT where a plain read would fault again: so
// the scan stops at the end of the mapping instead. A heuristic (a stale word could match),
// hence the line's "probably".
const char* caller_on_stack(std::uintptr_t sp) {
  if (sp == 0) return nullptr;
  std::uintptr_t words[512];
  for (int chunk = 0; chunk < 4; ++chunk) {
    struct iovec local {
      words, sizeof words
    };
    struct iovec remote {
      reinterpret_cast<void*>(sp + chunk * sizeof words), sizeof words
    };
    ssize_t n = ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0);
    if (n <= 0) return nullptr;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof words[0]; ++i)
      if (const char* owner = code_owner(words[i])) return owner;
    if (static_cast<std::size_t>(n) < sizeof words) return nullptr;
  }
  return nullptr;
}

void write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void on_fatal(int signo, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  char where[Context::kMaxText + 160];
  Writer w(where, sizeof where);
  const auto tid = static_cast<pid_t>(::syscall(SYS_gettid));
  if (t_record.active.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_acquire);
    w.put("in ");
    w.put(std::string_view(t_record.text));
  } else if (tid == g_settings.loop_tid) {
    w.put("on the loop thread, not in a filter callback");
  } else {
    w.put("on thread ");
    w.dec(tid);
    w.put(" (not the loop thread)");
  }
  if (const char* owner = code_owner(program_counter(context))) {
    w.put(", in the code of ");
    w.put(std::string_view(owner));
  } else if (const char* caller = caller_on_stack(stack_pointer(context))) {
    w.put(", probably called from the code of ");
    w.put(std::string_view(caller));
  }
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  LineParts parts;
  parts.epoch_seconds = now.tv_sec;
  parts.millis = static_cast<int>(now.tv_nsec / 1000000);
  parts.utc_offset = g_settings.utc_offset;
  parts.pid = ::getpid();
  parts.program = g_settings.program;
  parts.signo = signo;
  // si_addr means something only for a signal the kernel raised for a fault (si_code > 0), not
  // for one sent by kill() or raise().
  if (signo != SIGABRT && info && info->si_code > 0)
    parts.fault_address = reinterpret_cast<std::uintptr_t>(info->si_addr);
  parts.where = std::string_view(where, w.size());
  char line[Context::kMaxText + 400];
  std::size_t n = format_line(parts, line, sizeof line);
  write_all(g_settings.fd >= 0 ? g_settings.fd : STDERR_FILENO, line, n);
  errno = saved_errno;
  // SA_RESETHAND made the action the default again: the signal, blocked while this runs, ends
  // the process when the handler returns (a fault would also recur at the same instruction).
  ::raise(signo);
}

}  // namespace

const char* signal_name(int signo) {
  switch (signo) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    default:
      return "signal";
  }
}

std::size_t format_line(const LineParts& parts, char* out, std::size_t size) {
  if (size == 0) return 0;
  Writer w(out, size - 1);  // room for the line end
  const std::int64_t local = parts.epoch_seconds + parts.utc_offset;
  std::int64_t days = local / 86400;
  std::int64_t secs = local % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  std::int64_t year = 0;
  int month = 0, day = 0;
  civil_from_days(days, year, month, day);
  w.dec(year, 4);
  w.put('-');
  w.dec(month, 2);
  w.put('-');
  w.dec(day, 2);
  w.put('T');
  w.dec(secs / 3600, 2);
  w.put(':');
  w.dec(secs / 60 % 60, 2);
  w.put(':');
  w.dec(secs % 60, 2);
  w.put('.');
  w.dec(parts.millis, 3);
  w.put(" [");
  w.dec(parts.pid);
  w.put("] ");
  w.put(parts.program);
  w.put(": crash: ");
  w.put(signal_name(parts.signo));
  if (std::string_view(signal_name(parts.signo)) == "signal") {
    w.put(' ');
    w.dec(parts.signo);
  }
  if (parts.fault_address) {
    w.put(" (address ");
    w.hex(*parts.fault_address);
    w.put(')');
  }
  w.put(' ');
  w.put_printable(parts.where);
  w.put("; the process ends, every session of it is cut");
  std::size_t n = w.size();
  out[n++] = '\n';
  return n;
}

void install(std::string_view program, const std::string& log_file) {
  int fd = STDERR_FILENO;
  if (!log_file.empty()) {
    fd = ::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
      throw std::runtime_error("crash log: cannot open " + log_file + ": " + std::strerror(errno));
  }
  // Installed twice (a test): the handler is not running, the old fd can go.
  if (g_settings.fd > STDERR_FILENO) ::close(g_settings.fd);
  g_settings.fd = fd;
  std::time_t now = std::time(nullptr);
  struct tm local {};
  // The offset of now: a daylight saving change later shifts the crash line's time by an hour.
  g_settings.utc_offset = ::localtime_r(&now, &local) ? local.tm_gmtoff : 0;
  g_settings.loop_tid = static_cast<pid_t>(::syscall(SYS_gettid));
  std::size_t n = std::min(program.size(), sizeof g_settings.program - 1);
  std::memcpy(g_settings.program, program.data(), n);
  g_settings.program[n] = '\0';

  // The alternate stack of this thread, kept for the life of the process.
  static std::unique_ptr<char[]> alt_stack;
  if (!alt_stack) {
    alt_stack = std::make_unique<char[]>(kAltStackSize);
    stack_t ss{};
    ss.ss_sp = alt_stack.get();
    ss.ss_size = kAltStackSize;
    if (::sigaltstack(&ss, nullptr) != 0)
      throw std::runtime_error(std::string("crash log: sigaltstack: ") + std::strerror(errno));
  }
  struct sigaction sa {};
  sa.sa_sigaction = &on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int signo : kSignals) {
    if (::sigaction(signo, &sa, nullptr) != 0)
      throw std::runtime_error(std::string("crash log: sigaction: ") + std::strerror(errno));
  }
}

Context::Context(std::initializer_list<std::string_view> parts) {
  Record& r = t_record;
  had_previous_ = r.active.load(std::memory_order_relaxed);
  if (had_previous_) std::memcpy(previous_, r.text, sizeof previous_);
  r.active.store(false, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::size_t n = 0;
  for (std::string_view part : parts) {
    std::size_t take = std::min(part.size(), kMaxText - n);
    std::memcpy(r.text + n, part.data(), take);
    n += take;
  }
  r.text[n] = '\0';
  std::atomic_signal_fence(std::memory_order_seq_cst);
  r.active.store(true, std::memory_order_relaxed);
}

Context::~Context() {
  Record& r = t_record;
  r.active.store(false, std::memory_order_relaxed);
  if (!had_previous_) return;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::memcpy(r.text, previous_, sizeof previous_);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  r.active.store(true, std::memory_order_relaxed);
}

std::string_view current_context() {
  return t_record.active.load(std::memory_order_relaxed) ? std::string_view(t_record.text)
                                                         : std::string_view();
}

namespace {
struct Search {
  std::uintptr_t address;
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
};

// The executable segments (their span) of the object one of whose loaded segments holds address.
int find_object(struct dl_phdr_info* info, std::size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  bool holds = false;
  std::uintptr_t start = UINTPTR_MAX, end = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    std::uintptr_t hi = lo + ph.p_memsz;
    if (s->address >= lo && s->address < hi) holds = true;
    if (ph.p_flags & PF_X) {
      start = std::min(start, lo);
      end = std::max(end, hi);
    }
  }
  if (!holds || end == 0) return 0;
  s->start = start;
  s->end = end;
  return 1;
}
}  // namespace

int add_code_range(const void* address, std::string_view name) {
  Search s{reinterpret_cast<std::uintptr_t>(address)};
  if (::dl_iterate_phdr(&find_object, &s) == 0) return -1;
  std::lock_guard lock(g_ranges_mutex);
  for (std::size_t i = 0; i < kMaxRanges; ++i) {
    CodeRange& r = g_ranges[i];
    if (r.used.load(std::memory_order_relaxed)) continue;
    r.start = s.start;
    r.end = s.end;
    std::size_t n = std::min(name.size(), kMaxRangeName - 1);
    std::memcpy(r.name, name.data(), n);
    r.name[n] = '\0';
    r.used.store(true, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void remove_code_range(int slot) {
  if (slot < 0 || static_cast<std::size_t>(slot) >= kMaxRanges) return;
  std::lock_guard lock(g_ranges_mutex);
  g_ranges[slot].used.store(false, std::memory_order_release);
}

const char* code_owner(std::uintptr_t address) {
  if (address == 0) return nullptr;
  for (const CodeRange& r : g_ranges) {
    if (!r.used.load(std::memory_order_acquire)) continue;
    if (address >= r.start && address < r.end) return r.name;
  }
  return nullptr;
}

}  // namespace estafette::base::crash
