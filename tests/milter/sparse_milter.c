/* sparse_milter.c: a libmilter filter for the milter client tests (tests/unit/milter) that
 * registers only MAIL FROM, end-of-message and abort, so libmilter asks the MTA to skip every
 * other stage (SMFIP_NOCONNECT, NOHELO, NORCPT, NOHDRS, NOEOH, NOBODY, NOUNKNOWN, NODATA): the
 * shape of the small single-purpose filters sites write.
 *   MAIL FROM:<reject@example.test>  -> at eom: 550 5.7.1 Rejected by sparse milter
 *   any other message                -> at eom: adds "X-Sparse-Milter: ok"
 * Usage: sparse_milter inet:PORT@127.0.0.1   (foreground; SIGTERM stops it) */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <strings.h>

/* The only per-message state is "reject at eom", kept as a non-NULL private pointer. */
static char reject_mark;

static sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
  int reject = strcasecmp(argv[0], "<reject@example.test>") == 0;
  smfi_setpriv(ctx, reject ? &reject_mark : NULL);
  return SMFIS_CONTINUE;
}

static sfsistat on_eom(SMFICTX* ctx) {
  int reject = smfi_getpriv(ctx) != NULL;
  smfi_setpriv(ctx, NULL);
  if (reject) {
    smfi_setreply(ctx, "550", "5.7.1", "Rejected by sparse milter");
    return SMFIS_REJECT;
  }
  return smfi_addheader(ctx, "X-Sparse-Milter", "ok") == MI_SUCCESS ? SMFIS_CONTINUE
                                                                    : SMFIS_TEMPFAIL;
}

static sfsistat on_abort(SMFICTX* ctx) {
  smfi_setpriv(ctx, NULL);
  return SMFIS_CONTINUE;
}

int main(int argc, char** argv) {
  struct smfiDesc desc = {
      .xxfi_name = "sparse-milter",
      .xxfi_version = SMFI_VERSION,
      .xxfi_flags = SMFIF_ADDHDRS,
      .xxfi_envfrom = on_envfrom,
      .xxfi_eom = on_eom,
      .xxfi_abort = on_abort,
  };
  if (argc != 2) {
    fprintf(stderr, "usage: sparse_milter inet:PORT@127.0.0.1\n");
    return 2;
  }
  if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) return 1;
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
