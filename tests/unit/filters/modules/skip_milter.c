/* skip_milter.c: a libmilter-API filter built with the shim, for shim_skip_test.py. It has body
 * and eom callbacks only (no envfrom: esmtpd skips MAIL for it). The body callback counts its
 * calls and answers SMFIS_SKIP when a chunk holds "skip-rest"; eom adds "X-Body-Calls: N" and
 * starts the count again. A SKIP ends the body of that message only: the next message of the
 * session is read again. */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct counts {
  int body_calls;
};

static struct counts* counts_of(SMFICTX* ctx) {
  struct counts* c = smfi_getpriv(ctx);
  if (c == NULL) {
    c = calloc(1, sizeof *c);
    if (c != NULL) smfi_setpriv(ctx, c);
  }
  return c;
}

static int contains(const unsigned char* bytes, size_t len, const char* needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; ++i)
    if (memcmp(bytes + i, needle, n) == 0) return 1;
  return 0;
}

static sfsistat on_body(SMFICTX* ctx, unsigned char* bytes, size_t len) {
  struct counts* c = counts_of(ctx);
  if (c == NULL) return SMFIS_TEMPFAIL;
  c->body_calls++;
  return contains(bytes, len, "skip-rest") ? SMFIS_SKIP : SMFIS_CONTINUE;
}

static sfsistat on_eom(SMFICTX* ctx) {
  struct counts* c = counts_of(ctx);
  char value[32];
  if (c == NULL) return SMFIS_TEMPFAIL;
  snprintf(value, sizeof value, "%d", c->body_calls);
  c->body_calls = 0;
  smfi_addheader(ctx, "X-Body-Calls", value);
  return SMFIS_CONTINUE;
}

static sfsistat on_close(SMFICTX* ctx) {
  free(smfi_getpriv(ctx));
  smfi_setpriv(ctx, NULL);
  return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
    .xxfi_name = "skip-milter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS,
    .xxfi_body = on_body,
    .xxfi_eom = on_eom,
    .xxfi_close = on_close,
};

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  if (smfi_register(desc) == MI_FAILURE) return 1;
  return smfi_main();
}
