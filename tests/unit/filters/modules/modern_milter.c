/* modern_milter.c: a libmilter filter written as today's public milters are (smf-spf,
 * milter-greylist, opendkim's style): <stdbool.h> before <libmilter/mfapi.h>, bool/true/false,
 * __P prototypes, getopt() with -p (required), -f (foreground, else daemon()), -r ADDRESS to
 * reject at RCPT with smfi_setreply; smfi_setconn/smfi_settimeout/smfi_opensocket(true)/
 * smfi_version before smfi_main(). Under Estafette's shim (ESTAFETTE_MILTER_SHIM) it also adds
 * "X-Shim: estafette <version>" at end of message, to show a source can tell.
 * Test-only (tests/unit/filters/module_test.cc), built with libmilter and with the shim. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

static char* reject_rcpt = NULL;

static sfsistat smf_envrcpt __P((SMFICTX*, char**));
static sfsistat smf_eom __P((SMFICTX*));

static sfsistat smf_envrcpt(SMFICTX* ctx, char** args) {
  if (reject_rcpt != NULL && strcasecmp(args[0], reject_rcpt) == 0) {
    smfi_setreply(ctx, "550", "5.7.1", "Recipient refused by modern_milter");
    return SMFIS_REJECT;
  }
  return SMFIS_CONTINUE;
}

static sfsistat smf_eom(SMFICTX* ctx) {
#ifdef ESTAFETTE_MILTER_SHIM
  char value[64];
  snprintf(value, sizeof value, "estafette %d", ESTAFETTE_MILTER_SHIM);
  if (smfi_addheader(ctx, "X-Shim", value) != MI_SUCCESS) return SMFIS_TEMPFAIL;
#else
  (void)ctx;
#endif
  return SMFIS_CONTINUE;
}

static struct smfiDesc smfilter = {
    "modern_milter",
    SMFI_VERSION,
    SMFIF_ADDHDRS,
    NULL,        /* connect */
    NULL,        /* helo */
    NULL,        /* envfrom */
    smf_envrcpt, /* envrcpt */
    NULL,        /* header */
    NULL,        /* eoh */
    NULL,        /* body */
    smf_eom,     /* eom */
    NULL,        /* abort */
    NULL,        /* close */
    NULL,        /* unknown */
    NULL,        /* data */
    NULL,        /* negotiate */
};

int main(int argc, char** argv) {
  const char* conn = NULL;
  bool foreground = false;
  unsigned int major, minor, patch;
  int ch;

  while ((ch = getopt(argc, argv, "p:fr:")) != -1) {
    switch (ch) {
      case 'p':
        conn = optarg;
        break;
      case 'f':
        foreground = true;
        break;
      case 'r':
        reject_rcpt = optarg;
        break;
      default:
        fprintf(stderr, "usage: %s -p socket [-f] [-r address]\n", argv[0]);
        return EX_USAGE;
    }
  }
  if (conn == NULL) {
    fprintf(stderr, "%s: -p socket is required\n", argv[0]);
    exit(EX_USAGE);
  }
  if (smfi_version(&major, &minor, &patch) != MI_SUCCESS || major != 1) {
    fprintf(stderr, "%s: unexpected libmilter version\n", argv[0]);
    return EX_SOFTWARE;
  }
  if (smfi_setconn((char*)conn) == MI_FAILURE || smfi_settimeout(30) == MI_FAILURE) {
    fprintf(stderr, "%s: smfi_setconn failed\n", argv[0]);
    return EX_SOFTWARE;
  }
  if (smfi_register(smfilter) == MI_FAILURE) {
    fprintf(stderr, "%s: smfi_register failed\n", argv[0]);
    return EX_UNAVAILABLE;
  }
  if (smfi_opensocket(true) == MI_FAILURE) {
    fprintf(stderr, "%s: cannot open %s\n", argv[0], conn);
    return EX_UNAVAILABLE;
  }
  if (!foreground && daemon(0, 0) != 0) {
    perror("daemon");
    return EX_OSERR;
  }
  return smfi_main();
}
