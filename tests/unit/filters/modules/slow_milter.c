/* slow_milter.c: a libmilter-API filter for the shim tests, built with the shim into a module.
 *   MAIL FROM:<slow@example.test>  -> the callback sleeps 300 ms (blocking, as libmilter allows),
 *                                     then continues
 *   MAIL FROM:<bad@example.test>   -> answers an sfsistat that does not exist (99)
 *   MAIL FROM:<sleep-N@example.test> -> the session's eom sleeps N seconds (1..600), noting
 *                                     "eom-sleep" before and "eom-woke" after, then rejects the
 *                                     message (the shim's pool: test and bench/shim-pool.sh)
 *   header Subject: <text>         -> at eom: "X-Slow-Subject:<value as received>"
 *   every callback appends its name to the file given with -l (checks calls after a cancel);
 *   -S MS makes main() sleep that long at load (a module that hangs while loading). */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char* log_path = NULL;
static int leadspc = 0;

static void note(const char* what) {
  FILE* f;
  if (log_path == NULL) return;
  f = fopen(log_path, "a");
  if (f == NULL) return;
  fprintf(f, "%s\n", what);
  fclose(f);
}

static char subject[256];

static sfsistat slow_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                               unsigned long f3, unsigned long* pf0, unsigned long* pf1,
                               unsigned long* pf2, unsigned long* pf3) {
  (void)ctx;
  (void)f2;
  (void)f3;
  if (!leadspc) return SMFIS_ALL_OPTS;
  *pf0 = f0 & SMFIF_ADDHDRS;
  *pf1 = f1 & SMFIP_HDR_LEADSPC;
  *pf2 = 0;
  *pf3 = 0;
  return SMFIS_CONTINUE;
}

static sfsistat slow_envfrom(SMFICTX* ctx, char** argv) {
  int seconds = 0;
  note("envfrom");
  /* Per session (the filter's private pointer): sessions run in parallel. */
  if (sscanf(argv[0], "<sleep-%d@example.test>", &seconds) == 1 && seconds > 0 && seconds <= 600)
    smfi_setpriv(ctx, (void*)(long)seconds);
  else
    smfi_setpriv(ctx, NULL);
  if (strcasecmp(argv[0], "<slow@example.test>") == 0) {
    usleep(300000);
    note("envfrom-done");
  }
  if (strcasecmp(argv[0], "<bad@example.test>") == 0) return 99;
  return SMFIS_CONTINUE;
}

static sfsistat slow_header(SMFICTX* ctx, char* name, char* value) {
  (void)ctx;
  if (strcasecmp(name, "Subject") == 0) snprintf(subject, sizeof subject, "%s", value);
  return SMFIS_CONTINUE;
}

static sfsistat slow_eom(SMFICTX* ctx) {
  long seconds = (long)smfi_getpriv(ctx);
  note("eom");
  if (seconds > 0) {
    note("eom-sleep");
    sleep((unsigned)seconds);
    note("eom-woke");
    return SMFIS_REJECT;
  }
  smfi_addheader(ctx, "X-Slow-Subject", subject);
  return SMFIS_CONTINUE;
}

static sfsistat slow_close(SMFICTX* ctx) {
  (void)ctx;
  note("close");
  return SMFIS_CONTINUE;
}

static struct smfiDesc slow_filter = {
    .xxfi_name = "slow",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS,
    .xxfi_envfrom = slow_envfrom,
    .xxfi_header = slow_header,
    .xxfi_eom = slow_eom,
    .xxfi_close = slow_close,
    .xxfi_negotiate = slow_negotiate,
};

int main(int argc, char** argv) {
  int c;
  while ((c = getopt(argc, argv, "l:sS:")) != -1) {
    if (c == 'l') log_path = optarg;
    if (c == 'S') usleep((useconds_t)atoi(optarg) * 1000);
    if (c == 's') leadspc = 1;
  }
  if (smfi_register(slow_filter) == MI_FAILURE) return 1;
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
