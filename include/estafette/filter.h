/* estafette/filter.h: the native C ABI of Estafette's in-process filters (issue 4).
 *
 * A filter module is a shared object that exports
 *
 *   const struct estafette_filter *estafette_filter_init(const struct estafette_host *host);
 *
 * esmtpd dlopen()s it once per process (config: `filters = module:/path/x.so`), calls
 * estafette_filter_init once, and keeps the returned table for the life of the process. The
 * table's callbacks then run once per SMTP session and phase, in SMTP order, with an opaque
 * per-session handle (estafette_ctx). Returning NULL from estafette_filter_init refuses loading.
 *
 * Threading: every callback (and every fd or timer callback below) runs on the esmtpd process's
 * event-loop thread; every host function must be called on that thread too. A callback must not
 * block: to answer later, return ESTAFETTE_PENDING and call host->resume(ctx, status) later from
 * an fd or timer callback (or from a thread of your own: make that thread wake an fd you watch).
 * One call per session is outstanding at a time; the next phase starts only after the previous
 * one answered.
 *
 * Lifetime: close() is the last callback of a session, also when the session is cancelled while
 * a call is PENDING. After close() returns the ctx is gone: never resume it, and every fd watch
 * and timer it registered has been removed by the host. fini() (optional) runs before dlclose.
 *
 * Versioning: both structs start with abi_version and struct_size. The host refuses a module
 * whose abi_version differs from ESTAFETTE_FILTER_ABI_VERSION or whose struct_size is smaller
 * than the version-1 layout. New members are only ever appended, with a new minor version
 * (ESTAFETTE_FILTER_ABI_MINOR; 1.1 added foreach_rcpt and message_size to the host, 1.2 its
 * flags); the major version stays 1, so a module built for 1.0 loads unchanged. A module that uses
 * a member added later checks that its host has it: ESTAFETTE_HOST_HAS(host, message_size).
 *
 * Pure C; no C++ types or exceptions cross this interface. */
#ifndef ESTAFETTE_FILTER_H
#define ESTAFETTE_FILTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ESTAFETTE_FILTER_ABI_VERSION 1
/* The minor version of the layout this header describes: 0 the first layout, 1 adds
 * foreach_rcpt and message_size to struct estafette_host, 2 adds flags. Define
 * ESTAFETTE_FILTER_ABI_1_0 before including this header to build against the 1.0 layout (the new
 * members hidden). */
#ifdef ESTAFETTE_FILTER_ABI_1_0
#define ESTAFETTE_FILTER_ABI_MINOR 0
#else
#define ESTAFETTE_FILTER_ABI_MINOR 2 /* 1.2 adds flags to struct estafette_host */
#endif
#define ESTAFETTE_FILTER_INIT_SYMBOL "estafette_filter_init"

/* The per-session handle: opaque, owned by the host. */
typedef struct estafette_ctx estafette_ctx;

/* What a phase callback answers. */
enum estafette_status {
  ESTAFETTE_CONTINUE = 0, /* go on with the next phase */
  ESTAFETTE_ACCEPT = 1,   /* accept: no more callbacks for this message (connect: session) */
  ESTAFETTE_REJECT = 2,   /* 5xx (setreply gives the text; default: esmtpd's own 550) */
  ESTAFETTE_TEMPFAIL = 3, /* 4xx (setreply gives the text; default: esmtpd's own 451) */
  ESTAFETTE_DISCARD = 4,  /* accept the message and drop it */
  ESTAFETTE_PENDING = 5   /* the answer comes later through host->resume() */
};

/* Client address family (connect). */
enum estafette_family {
  ESTAFETTE_FAMILY_UNKNOWN = 0,
  ESTAFETTE_FAMILY_INET = 1,
  ESTAFETTE_FAMILY_INET6 = 2,
  ESTAFETTE_FAMILY_UNIX = 3
};

/* fd events for watch_fd (a callback gets ESTAFETTE_FD_ERROR too on error/hang-up). */
#define ESTAFETTE_FD_READ 0x1
#define ESTAFETTE_FD_WRITE 0x2
#define ESTAFETTE_FD_ERROR 0x4

/* Host functions return 0 on success, -1 on failure (bad arguments, wrong phase, an action the
 * module may not take in this phase). */
#define ESTAFETTE_OK 0
#define ESTAFETTE_ERROR (-1)

typedef void (*estafette_fd_cb)(estafette_ctx* ctx, int fd, int events, void* arg);
typedef void (*estafette_timer_cb)(estafette_ctx* ctx, void* arg);
typedef uint64_t estafette_timer_id; /* 0 is never a valid id */

/* What the host offers the module; valid from estafette_filter_init until fini. Loop thread
 * only, during a callback or from an fd/timer
 * callback of the same session. Strings passed in are copied; strings returned stay valid until
 * the session's next phase. */
struct estafette_host {
  uint32_t abi_version; /* ESTAFETTE_FILTER_ABI_VERSION of the host */
  uint32_t struct_size; /* sizeof(struct estafette_host) of the host */

  /* Macros for the current session: "j", "i", "{client_addr}", "{client_name}",
   * "{client_port}", "{client_resolve}" (OK, FAIL, FORGED, TEMP), "{estafette_dnsbl_score}",
   * "{estafette_dnsbl_listed}" (zones, space-separated), "{estafette_ident}", "{mail_addr}",
   * "{rcpt_addr}", ... Values given at a phase stay until replaced. NULL when unknown.
   * The string returned is valid until the next phase starts (as libmilter's: copy it to
   * keep it longer). */
  const char* (*getsymval)(estafette_ctx* ctx, const char* name);
  /* Calls fn for every macro given with the current phase only (in order; earlier phases'
   * macros are not repeated). For a module that keeps macros per stage, as libmilter does.
   * The strings are valid as getsymval's. */
  int (*foreach_symval)(estafette_ctx* ctx,
                        void (*fn)(void* arg, const char* name, const char* value), void* arg);

  /* One pointer per session for the module's own state (NULL at connect). */
  void* (*getpriv)(estafette_ctx* ctx);
  int (*setpriv)(estafette_ctx* ctx, void* priv);

  /* The SMTP reply used when this phase answers REJECT (code 5xx) or TEMPFAIL (code 4xx).
   * code: 3 digits; xcode: enhanced status ("5.7.1") or NULL; text: may hold several lines
   * separated by CRLF (a multi-line reply), must not end with CRLF. */
  int (*setreply)(estafette_ctx* ctx, const char* code, const char* xcode, const char* text);

  /* Message changes: end of message (eom) only, applied by esmtpd in the order made.
   * Header values are the text after the colon exactly as it is to be written, so the usual
   * form has a leading space (" ok"). chgheader: the index-th (1-based, 0 as 1) header of that
   * name; value NULL or "" deletes it. insheader: index 0 puts it first. */
  int (*addheader)(estafette_ctx* ctx, const char* name, const char* value);
  int (*chgheader)(estafette_ctx* ctx, const char* name, int index, const char* value);
  int (*insheader)(estafette_ctx* ctx, int index, const char* name, const char* value);
  /* Addresses with angle brackets ("<a@example.test>"); args: ESMTP parameters or NULL. */
  int (*addrcpt)(estafette_ctx* ctx, const char* rcpt, const char* args);
  int (*delrcpt)(estafette_ctx* ctx, const char* rcpt);
  /* Replaces the whole body (CRLF line ends); several calls append. */
  int (*replacebody)(estafette_ctx* ctx, const unsigned char* body, size_t len);
  int (*quarantine)(estafette_ctx* ctx, const char* reason);
  int (*chgfrom)(estafette_ctx* ctx, const char* from, const char* args);

  /* Answers the phase that returned ESTAFETTE_PENDING (any status but PENDING), after its
   * callback returned. With nothing pending (called inside the callback before it returned
   * PENDING, after the phase was answered, after close, or twice) it does nothing and returns
   * ESTAFETTE_ERROR (a debug line in esmtpd's log): the callback's own return value answers. */
  int (*resume)(estafette_ctx* ctx, int status);

  /* Event-loop access, per session: removed by the host at close(). A module watches an fd at
   * most once per session; cb runs on the loop with the events seen. */
  int (*watch_fd)(estafette_ctx* ctx, int fd, int events, estafette_fd_cb cb, void* arg);
  int (*unwatch_fd)(estafette_ctx* ctx, int fd);
  /* One-shot timer; returns its id (0 on failure). */
  estafette_timer_id (*add_timer)(estafette_ctx* ctx, unsigned ms, estafette_timer_cb cb,
                                  void* arg);
  int (*cancel_timer)(estafette_ctx* ctx, estafette_timer_id id); /* also for fired ids */

  /* A line in esmtpd's log, tagged with the module's name. level: 0 error, 1 warning, 2 info,
   * 3 debug. */
  void (*log)(estafette_ctx* ctx, int level, const char* message);

  /* The module's arguments, argv-style (argv[0] is the module's path, argv[argc] is NULL). */
  int argc;
  char* const* argv;

#ifndef ESTAFETTE_FILTER_ABI_1_0
  /* ABI 1.1 (check ESTAFETTE_HOST_HAS(host, message_size) first). At eom only, while it runs or
   * is PENDING; ESTAFETTE_ERROR in any other phase. */

  /* Calls fn for every accepted recipient of the message, in RCPT order, with angle brackets
   * ("<a@example.test>"): the envelope's recipients at the end of DATA, after esmtpd's own
   * checks and every filter's rcpt verdict, but before any filter's addrcpt/delrcpt (every
   * filter sees the original message; the changes of all filters are applied after the last
   * one answers eom, this module's own included). */
  int (*foreach_rcpt)(estafette_ctx* ctx, void (*fn)(void* arg, const char* rcpt), void* arg);
  /* *size = the message's size in bytes as the filters see it: the client's message (CRLF line
   * ends, not dot-stuffed) with esmtpd's Received: header, as the {msg_size} macro. */
  int (*message_size)(estafette_ctx* ctx, uint64_t* size);

  /* ABI 1.2 (check ESTAFETTE_HOST_HAS(host, flags) first): ESTAFETTE_HOST_ON_LOOP and later
   * flags, set once before estafette_filter_init and constant afterwards. */
  uint32_t flags;
#endif
};

/* The admin listed the module as `module-inline:`: a module that would hand its work to
 * threads of its own (the libmilter shim) runs it in the callback, on esmtpd's event loop,
 * instead. Faster; a callback that blocks then stalls every session of that esmtpd process. */
#define ESTAFETTE_HOST_ON_LOOP 0x1u

/* Whether the host's table has a member added after 1.0 (true for every 1.0 member):
 * ESTAFETTE_HOST_HAS(host, message_size) before calling host->foreach_rcpt or message_size. */
#define ESTAFETTE_HOST_HAS(host, member) \
  ((host)->struct_size >= offsetof(struct estafette_host, member) + sizeof((host)->member))

/* What the module offers the host: every callback is optional (NULL: CONTINUE).
 * Strings passed in are valid during the call only. */
struct estafette_filter {
  uint32_t abi_version; /* ESTAFETTE_FILTER_ABI_VERSION the module was built for */
  uint32_t struct_size; /* sizeof(struct estafette_filter) */
  const char* name;     /* for logs and failure reasons; static storage */

  /* hostname: the verified reverse name or "[address]"; port in host order. */
  int (*connect)(estafette_ctx* ctx, const char* hostname, int family, const char* address,
                 unsigned port);
  int (*helo)(estafette_ctx* ctx, const char* name);
  /* address with angle brackets; args: NULL-terminated ESMTP parameters ("SIZE=100"). */
  int (*mail)(estafette_ctx* ctx, const char* address, const char* const* args);
  /* REJECT/TEMPFAIL from rcpt concern that recipient only. */
  int (*rcpt)(estafette_ctx* ctx, const char* address, const char* const* args);
  int (*data)(estafette_ctx* ctx);
  /* value: the text after the colon as in the message (leading space included). */
  int (*header)(estafette_ctx* ctx, const char* name, const char* value);
  int (*eoh)(estafette_ctx* ctx);
  /* Body bytes, CRLF line ends, not dot-stuffed, any number of chunks of any size. */
  int (*body)(estafette_ctx* ctx, const unsigned char* bytes, size_t len);
  int (*eom)(estafette_ctx* ctx);
  /* The message ends without eom (RSET, rejected): the answer is ignored. */
  int (*abort)(estafette_ctx* ctx);
  /* The session ends (also when cancelled during a PENDING call): the answer is ignored. */
  int (*close)(estafette_ctx* ctx);

  /* Before the module is unloaded (process exit); no session is open. */
  void (*fini)(void);
};

typedef const struct estafette_filter* (*estafette_filter_init_fn)(
    const struct estafette_host* host);

const struct estafette_filter* estafette_filter_init(const struct estafette_host* host);

#ifdef __cplusplus
}
#endif

#endif /* ESTAFETTE_FILTER_H */
