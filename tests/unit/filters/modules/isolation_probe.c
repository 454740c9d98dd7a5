/* isolation_probe.c: a native module (include/estafette/filter.h) that misbehaves on demand, for
 * tests/integration/module_isolated_test.py (`module-isolated:`, estafette-filterhost):
 *   MAIL FROM:<crash@...>  -> dereferences a null pointer (SIGSEGV) inside the callback
 *   MAIL FROM:<hang@...>   -> never returns from the callback (blocks its process's loop)
 *   end of message         -> adds "X-Isolation-Probe: <argv[1]> from=<sender> client=<addr>"
 *                             and "X-Isolation-Probe-Pid: <pid>" (which process ran it); and
 *                             "X-Isolation-Probe-Leak" if it sees {estafette_session}
 * Test-only: never load it into a process you care about. */
#include <estafette/filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const struct estafette_host* host; /* valid from init until fini */
static const char* tag = "untagged";

static int on_mail(estafette_ctx* ctx, const char* address, const char* const* args) {
  (void)args;
  if (strncasecmp(address, "<crash@", 7) == 0) {
    volatile int* nowhere = NULL;
    *nowhere = 1; /* SIGSEGV, on purpose */
  }
  if (strncasecmp(address, "<hang@", 6) == 0) {
    for (;;) pause(); /* blocks the loop for ever, on purpose */
  }
  char* copy = strdup(address);
  if (copy == NULL) return ESTAFETTE_TEMPFAIL;
  free(host->getpriv(ctx));
  host->setpriv(ctx, copy);
  return ESTAFETTE_CONTINUE;
}

static int on_eom(estafette_ctx* ctx) {
  const char* from = host->getpriv(ctx);
  const char* addr = host->getsymval(ctx, "{client_addr}");
  char value[512];
  snprintf(value, sizeof value, " %s from=%s client=%s", tag, from ? from : "-", addr ? addr : "-");
  if (host->addheader(ctx, "X-Isolation-Probe", value) != ESTAFETTE_OK) return ESTAFETTE_TEMPFAIL;
  /* esmtpd's client passes its session id to estafette-filterhost in this macro; the module
   * must not see it (in-process it does not). */
  if (host->getsymval(ctx, "{estafette_session}") != NULL &&
      host->addheader(ctx, "X-Isolation-Probe-Leak", " {estafette_session}") != ESTAFETTE_OK)
    return ESTAFETTE_TEMPFAIL;
  snprintf(value, sizeof value, " %ld", (long)getpid());
  if (host->addheader(ctx, "X-Isolation-Probe-Pid", value) != ESTAFETTE_OK)
    return ESTAFETTE_TEMPFAIL;
  return ESTAFETTE_CONTINUE;
}

static int on_close(estafette_ctx* ctx) {
  free(host->getpriv(ctx));
  host->setpriv(ctx, NULL);
  return ESTAFETTE_CONTINUE;
}

static const struct estafette_filter probe = {
    .abi_version = ESTAFETTE_FILTER_ABI_VERSION,
    .struct_size = sizeof(struct estafette_filter),
    .name = "isolation-probe",
    .mail = on_mail,
    .eom = on_eom,
    .close = on_close,
};

const struct estafette_filter* estafette_filter_init(const struct estafette_host* h) {
  if (h->abi_version != ESTAFETTE_FILTER_ABI_VERSION) return NULL;
  host = h;
  if (h->argc > 1) tag = h->argv[1];
  return &probe;
}
