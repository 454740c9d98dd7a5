/* misbehave.c: a test module (native C ABI) whose callbacks hold esmtpd's loop or crash when the
 * session asks for it, for tests/integration/filter_watch_test.py:
 *   HELO sleep-N                  helo sleeps N ms (usleep: the loop is held)
 *   HELO crash / abort            helo writes through NULL / calls abort()
 *   HELO overflow                 helo recurses until the loop thread's stack overflows
 *   MAIL FROM:<sleep-N@...>       mail sleeps N ms
 *   MAIL FROM:<timer-sleep-N@...> mail answers PENDING; a 1 ms timer sleeps N ms, then resumes
 *   MAIL FROM:<wait-N@...>        mail answers PENDING; an N ms timer resumes (the loop is free)
 *   MAIL FROM:<reject@...>        mail answers REJECT at once (550 5.7.1 "mail rejected at once")
 *   RCPT TO:<reject@...>          rcpt answers REJECT at once (550 5.7.1 "rcpt rejected at once")
 *   RCPT TO:<tempfail@...>        rcpt answers TEMPFAIL at once (no reply text: esmtpd's 451)
 *   RCPT TO:<crash@...>           rcpt writes through NULL (SIGSEGV)
 *   RCPT TO:<abort@...>           rcpt calls abort() (SIGABRT)
 *   RCPT TO:<thread-crash@...>    rcpt starts a thread that writes through NULL (SIGSEGV on a
 *                                 thread other than the loop's, in this module's code)
 *   RCPT TO:<thread-libc-crash@...> the same thread calls strlen() on address 16: the fault is in
 *                                 libc's code, called from this module's
 * Anything else continues. */
#include <estafette/filter.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct estafette_host* host;

static void crash_now(void) {
  volatile int* volatile p = NULL; /* volatile: the compiler keeps the store */
  *p = 1;
}

static void* crash_thread(void* arg) {
  (void)arg;
  crash_now();
  return NULL;
}

static size_t volatile length_seen;
static void* libc_crash_thread(void* arg) {
  const char* volatile bad = (const char*)16;
  (void)arg;
  length_seen = strlen(bad); /* faults inside libc */
  return NULL;
}

/* Recurses until the stack overflows (depth_limit is never reached): each frame keeps 4 KiB the
 * compiler cannot drop. */
static volatile int depth_limit = 1 << 30;
static int recurse(int depth) {
  volatile char frame[4096];
  frame[0] = (char)depth;
  if (depth >= depth_limit) return frame[0];
  return recurse(depth + 1) + frame[0];
}

/* "sleep-N" at the start of text (after prefix): N ms, else -1. */
static long sleep_ms(const char* text, const char* prefix) {
  size_t n = strlen(prefix);
  if (strncmp(text, prefix, n) != 0) return -1;
  return strtol(text + n, NULL, 10);
}

static int on_helo(estafette_ctx* ctx, const char* name) {
  long ms = sleep_ms(name, "sleep-");
  (void)ctx;
  if (ms >= 0) usleep((useconds_t)ms * 1000);
  if (strcmp(name, "crash") == 0) crash_now();
  if (strcmp(name, "abort") == 0) abort();
  if (strcmp(name, "overflow") == 0) return recurse(0);
  return ESTAFETTE_CONTINUE;
}

static void timer_sleep(estafette_ctx* ctx, void* arg) {
  usleep((useconds_t)(long)arg * 1000);
  host->resume(ctx, ESTAFETTE_CONTINUE);
}

static void timer_resume(estafette_ctx* ctx, void* arg) {
  (void)arg;
  host->resume(ctx, ESTAFETTE_CONTINUE);
}

static int on_mail(estafette_ctx* ctx, const char* address, const char* const* args) {
  long ms;
  (void)args;
  ms = sleep_ms(address, "<sleep-");
  if (ms >= 0) usleep((useconds_t)ms * 1000);
  ms = sleep_ms(address, "<timer-sleep-");
  if (ms >= 0) {
    if (host->add_timer(ctx, 1, timer_sleep, (void*)ms) == 0) return ESTAFETTE_TEMPFAIL;
    return ESTAFETTE_PENDING;
  }
  if (strncmp(address, "<reject@", 8) == 0) {
    host->setreply(ctx, "550", "5.7.1", "mail rejected at once");
    return ESTAFETTE_REJECT;
  }
  ms = sleep_ms(address, "<wait-");
  if (ms >= 0) {
    if (host->add_timer(ctx, (unsigned)ms, timer_resume, NULL) == 0) return ESTAFETTE_TEMPFAIL;
    return ESTAFETTE_PENDING;
  }
  return ESTAFETTE_CONTINUE;
}

static int on_rcpt(estafette_ctx* ctx, const char* address, const char* const* args) {
  (void)args;
  if (strncmp(address, "<reject@", 8) == 0) {
    host->setreply(ctx, "550", "5.7.1", "rcpt rejected at once");
    return ESTAFETTE_REJECT;
  }
  if (strncmp(address, "<tempfail@", 10) == 0) return ESTAFETTE_TEMPFAIL;
  if (strncmp(address, "<crash@", 7) == 0) crash_now();
  if (strncmp(address, "<abort@", 7) == 0) abort();
  if (strncmp(address, "<thread-crash@", 14) == 0) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, crash_thread, NULL) == 0) pthread_join(thread, NULL);
  }
  if (strncmp(address, "<thread-libc-crash@", 19) == 0) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, libc_crash_thread, NULL) == 0) pthread_join(thread, NULL);
  }
  return ESTAFETTE_CONTINUE;
}

static const struct estafette_filter filter = {
    .abi_version = ESTAFETTE_FILTER_ABI_VERSION,
    .struct_size = sizeof(struct estafette_filter),
    .name = "misbehave",
    .helo = on_helo,
    .mail = on_mail,
    .rcpt = on_rcpt,
};

const struct estafette_filter* estafette_filter_init(const struct estafette_host* h) {
  host = h;
  return &filter;
}
