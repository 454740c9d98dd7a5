/* faultinject.c: an LD_PRELOAD library for the integration tests that makes the calls a durable
 * writer depends on fail: write, pwrite, pwritev, fsync, fdatasync and rename (rename, renameat,
 * renameat2). Built by `make check` as tests/faultinject/libfaultinject.so; nothing installed
 * links it. Each process reads its settings once, from the environment:
 *
 *   ESTAFETTE_FAULT_CALLS    comma list of calls to fail: write,pwrite,pwritev,fsync,fdatasync,
 *                            rename (pwrite also covers pwrite64, pwritev pwritev64, rename
 *                            renameat and renameat2). Unset: the library does nothing.
 *   ESTAFETTE_FAULT_ERROR    EIO (default), ENOSPC, EDQUOT, or "short": a write call writes half
 *                            of what it was given (at least one byte less) and returns that.
 *   ESTAFETTE_FAULT_PATH     only files (or directories) whose path starts with this prefix; for
 *                            a rename the source path. Unset: every path.
 *   ESTAFETTE_FAULT_PROGRAM  only in the process whose program name (argv[0]'s last part) is this.
 *   ESTAFETTE_FAULT_AFTER    matching calls that pass before the first fault (default 0).
 *   ESTAFETTE_FAULT_COUNT    faults to inject, then none (default: no limit).
 *   ESTAFETTE_FAULT_SWITCH   a file: faults happen only while it exists, so a test clears the
 *                            fault by removing it (and may set it again).
 *   ESTAFETTE_FAULT_LOG      a file: one line "PROGRAM PID CALL PATH ERROR" per fault injected,
 *                            so a test can tell that the fault really happened.
 *
 * Any thread (counters are atomic). Errors: none of its own; an unknown call or error name is
 * ignored (the test then finds no fault in the log). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum call { kWrite = 1, kPwrite = 2, kPwritev = 4, kFsync = 8, kFdatasync = 16, kRename = 32 };

static struct {
  int ready;
  unsigned calls;
  int error; /* errno, or 0 for a short write */
  const char* path;
  const char* program;
  const char* switch_file;
  const char* log;
  long after;
  long count;
  long seen;     /* matching calls so far */
  long injected; /* faults so far */
} cfg;

static ssize_t (*real_write)(int, const void*, size_t);

static void setup(void) {
  if (__atomic_load_n(&cfg.ready, __ATOMIC_ACQUIRE)) return;
  real_write = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  const char* calls = getenv("ESTAFETTE_FAULT_CALLS");
  unsigned mask = 0;
  if (calls) {
    static const struct {
      const char* name;
      unsigned bit;
    } kNames[] = {{"write", kWrite}, {"pwrite", kPwrite}, {"pwritev", kPwritev},
                  {"fsync", kFsync}, {"fdatasync", kFdatasync}, {"rename", kRename}};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", calls);
    char* save = NULL;
    for (char* t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
      for (size_t i = 0; i < sizeof kNames / sizeof kNames[0]; ++i)
        if (strcmp(t, kNames[i].name) == 0) mask |= kNames[i].bit;
  }
  const char* error = getenv("ESTAFETTE_FAULT_ERROR");
  cfg.error = EIO;
  if (error && strcmp(error, "ENOSPC") == 0) cfg.error = ENOSPC;
  if (error && strcmp(error, "EDQUOT") == 0) cfg.error = EDQUOT;
  if (error && strcmp(error, "short") == 0) cfg.error = 0;
  cfg.path = getenv("ESTAFETTE_FAULT_PATH");
  cfg.program = getenv("ESTAFETTE_FAULT_PROGRAM");
  cfg.switch_file = getenv("ESTAFETTE_FAULT_SWITCH");
  cfg.log = getenv("ESTAFETTE_FAULT_LOG");
  const char* after = getenv("ESTAFETTE_FAULT_AFTER");
  const char* count = getenv("ESTAFETTE_FAULT_COUNT");
  cfg.after = after ? atol(after) : 0;
  cfg.count = count ? atol(count) : -1;
  if (cfg.program && strcmp(cfg.program, program_invocation_short_name) != 0) mask = 0;
  cfg.calls = mask;
  __atomic_store_n(&cfg.ready, 1, __ATOMIC_RELEASE);
}

/* The path of fd, or "" when it has none. */
static void fd_path(int fd, char* out, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, out, size - 1);
  out[n > 0 ? n : 0] = '\0';
}

/* The path of name relative to dirfd. */
static void at_path(int dirfd, const char* name, char* out, size_t size) {
  if (name[0] == '/' || dirfd == AT_FDCWD) {
    snprintf(out, size, "%s", name);
    return;
  }
  char dir[4096];
  fd_path(dirfd, dir, sizeof dir);
  snprintf(out, size, "%s/%s", dir, name);
}

static void log_fault(const char* call, const char* path) {
  if (!cfg.log) return;
  int fd = open(cfg.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return;
  char line[4400];
  int n = snprintf(line, sizeof line, "%s %d %s %s %s\n", program_invocation_short_name,
                   (int)getpid(), call, path,
                   cfg.error ? strerrorname_np(cfg.error) : "short");
  if (n > 0) real_write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  close(fd);
}

/* Whether this call fails now; path is the file it acts on. */
static int should_fail(unsigned call, const char* name, const char* path) {
  if (!(cfg.calls & call)) return 0;
  if (cfg.path && strncmp(path, cfg.path, strlen(cfg.path)) != 0) return 0;
  if (cfg.switch_file && access(cfg.switch_file, F_OK) != 0) return 0;
  if (__atomic_fetch_add(&cfg.seen, 1, __ATOMIC_RELAXED) < cfg.after) return 0;
  if (cfg.count >= 0 && __atomic_fetch_add(&cfg.injected, 1, __ATOMIC_RELAXED) >= cfg.count)
    return 0;
  log_fault(name, path);
  return 1;
}

static int fd_fails(unsigned call, const char* name, int fd) {
  setup();
  if (!(cfg.calls & call)) return 0;
  char path[4096];
  fd_path(fd, path, sizeof path);
  return should_fail(call, name, path);
}

/* A short write writes half (at least one byte less); other faults set errno. */
static size_t short_size(size_t n) {
  return n > 1 ? n / 2 : 0;
}

#define REAL(type, name, args) \
  static type(*real) args;     \
  if (!real) real = (type(*) args)dlsym(RTLD_NEXT, name)

ssize_t write(int fd, const void* buf, size_t n) {
  setup();
  if (n > 0 && fd_fails(kWrite, "write", fd)) {
    if (cfg.error) {
      errno = cfg.error;
      return -1;
    }
    n = short_size(n);
    if (n == 0) {
      errno = ENOSPC;
      return -1;
    }
  }
  return real_write(fd, buf, n);
}

static ssize_t do_pwrite(const char* name, int fd, const void* buf, size_t n, off_t offset) {
  REAL(ssize_t, "pwrite64", (int, const void*, size_t, off_t));
  if (n > 0 && fd_fails(kPwrite, name, fd)) {
    if (cfg.error) {
      errno = cfg.error;
      return -1;
    }
    n = short_size(n);
    if (n == 0) {
      errno = ENOSPC;
      return -1;
    }
  }
  return real(fd, buf, n, offset);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  return do_pwrite("pwrite", fd, buf, n, offset);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off_t offset) {
  return do_pwrite("pwrite", fd, buf, n, offset);
}

static ssize_t do_pwritev(int fd, const struct iovec* iov, int count, off_t offset) {
  REAL(ssize_t, "pwritev64", (int, const struct iovec*, int, off_t));
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  if (total > 0 && fd_fails(kPwritev, "pwritev", fd)) {
    if (cfg.error) {
      errno = cfg.error;
      return -1;
    }
    /* Short: the first half of the bytes, as one pwrite. */
    size_t want = short_size(total);
    if (want == 0) {
      errno = ENOSPC;
      return -1;
    }
    char* flat = malloc(want);
    if (!flat) {
      errno = ENOMEM;
      return -1;
    }
    size_t at = 0;
    for (int i = 0; i < count && at < want; ++i) {
      size_t take = iov[i].iov_len < want - at ? iov[i].iov_len : want - at;
      memcpy(flat + at, iov[i].iov_base, take);
      at += take;
    }
    REAL(ssize_t, "pwrite64", (int, const void*, size_t, off_t));
    ssize_t r = real(fd, flat, want, offset);
    free(flat);
    return r;
  }
  return real(fd, iov, count, offset);
}

ssize_t pwritev(int fd, const struct iovec* iov, int count, off_t offset) {
  return do_pwritev(fd, iov, count, offset);
}
ssize_t pwritev64(int fd, const struct iovec* iov, int count, off_t offset) {
  return do_pwritev(fd, iov, count, offset);
}

int fsync(int fd) {
  REAL(int, "fsync", (int));
  if (fd_fails(kFsync, "fsync", fd)) {
    errno = cfg.error ? cfg.error : EIO;
    return -1;
  }
  return real(fd);
}

int fdatasync(int fd) {
  REAL(int, "fdatasync", (int));
  if (fd_fails(kFdatasync, "fdatasync", fd)) {
    errno = cfg.error ? cfg.error : EIO;
    return -1;
  }
  return real(fd);
}

static int rename_fails(int dirfd, const char* from) {
  setup();
  if (!(cfg.calls & kRename)) return 0;
  char path[4400];
  at_path(dirfd, from, path, sizeof path);
  if (!should_fail(kRename, "rename", path)) return 0;
  errno = cfg.error ? cfg.error : EIO;
  return 1;
}

int rename(const char* from, const char* to) {
  REAL(int, "rename", (const char*, const char*));
  if (rename_fails(AT_FDCWD, from)) return -1;
  return real(from, to);
}

int renameat(int from_dir, const char* from, int to_dir, const char* to) {
  REAL(int, "renameat", (int, const char*, int, const char*));
  if (rename_fails(from_dir, from)) return -1;
  return real(from_dir, from, to_dir, to);
}

int renameat2(int from_dir, const char* from, int to_dir, const char* to, unsigned flags) {
  REAL(int, "renameat2", (int, const char*, int, const char*, unsigned));
  if (rename_fails(from_dir, from)) return -1;
  return real(from_dir, from, to_dir, to, flags);
}
