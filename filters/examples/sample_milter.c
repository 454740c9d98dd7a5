/* sample_milter.c: a complete mail filter written against libmilter's API. The same source
 * builds two ways:
 *   external milter: cc sample_milter.c -lmilter -lpthread -o sample_milter
 *                    ./sample_milter -p inet:8892@127.0.0.1      (filters = milter:inet:8892@...)
 *   esmtpd module:   cc -fPIC -shared -Wl,-Bsymbolic -I<prefix>/include/estafette sample_milter.c \
 *                      -lestafette_milter -lstdc++ -lpthread -o sample_milter.so
 *                                                                 (filters =
 * module:/path/sample_milter.so) What it does: MAIL FROM:<reject@example.test>  -> 550 5.7.1 sender
 * rejected by sample RCPT TO:<old@estafette.test>     -> at end of message: delrcpt it, addrcpt
 * <new@estafette.test> every message                    -> header "X-Estafette-Sample: ok", and
 *                                       "X-Estafette-Sample-Client: <{client_addr}> <i>" (macros:
 *                                       {client_addr} saved at connect, i as given at end of
 *                                       message) */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct sample_state {
  int rewrite;     /* this message has RCPT TO:<old@estafette.test> */
  char client[64]; /* {client_addr} at connect */
};

static struct sample_state* state(SMFICTX* ctx) {
  struct sample_state* s = smfi_getpriv(ctx);
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL || smfi_setpriv(ctx, s) != MI_SUCCESS) {
      free(s);
      return NULL;
    }
  }
  return s;
}

static sfsistat sample_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  struct sample_state* s = state(ctx);
  const char* client = smfi_getsymval(ctx, "{client_addr}");
  (void)hostname;
  (void)addr;
  if (s == NULL) return SMFIS_TEMPFAIL;
  snprintf(s->client, sizeof s->client, "%s", client ? client : "-");
  return SMFIS_CONTINUE;
}

static sfsistat sample_envfrom(SMFICTX* ctx, char** argv) {
  struct sample_state* s = state(ctx);
  if (s == NULL) return SMFIS_TEMPFAIL;
  s->rewrite = 0;
  if (strcasecmp(argv[0], "<reject@example.test>") == 0) {
    smfi_setreply(ctx, "550", "5.7.1", "sender rejected by sample");
    return SMFIS_REJECT;
  }
  return SMFIS_CONTINUE;
}

static sfsistat sample_envrcpt(SMFICTX* ctx, char** argv) {
  struct sample_state* s = state(ctx);
  if (s == NULL) return SMFIS_TEMPFAIL;
  if (strcasecmp(argv[0], "<old@estafette.test>") == 0) s->rewrite = 1;
  return SMFIS_CONTINUE;
}

static sfsistat sample_eom(SMFICTX* ctx) {
  struct sample_state* s = state(ctx);
  char client[256];
  const char* qid = smfi_getsymval(ctx, "i");
  if (s == NULL) return SMFIS_TEMPFAIL;
  if (smfi_addheader(ctx, "X-Estafette-Sample", "ok") != MI_SUCCESS) return SMFIS_TEMPFAIL;
  snprintf(client, sizeof client, "%s %s", s->client[0] ? s->client : "-", qid ? qid : "-");
  smfi_addheader(ctx, "X-Estafette-Sample-Client", client);
  if (s->rewrite) {
    if (smfi_delrcpt(ctx, "<old@estafette.test>") != MI_SUCCESS ||
        smfi_addrcpt(ctx, "<new@estafette.test>") != MI_SUCCESS)
      return SMFIS_TEMPFAIL;
  }
  s->rewrite = 0;
  return SMFIS_CONTINUE;
}

static sfsistat sample_abort(SMFICTX* ctx) {
  struct sample_state* s = smfi_getpriv(ctx);
  if (s != NULL) s->rewrite = 0;
  return SMFIS_CONTINUE;
}

static sfsistat sample_close(SMFICTX* ctx) {
  free(smfi_getpriv(ctx));
  smfi_setpriv(ctx, NULL);
  return SMFIS_CONTINUE;
}

static struct smfiDesc sample_filter = {
    .xxfi_name = "estafette-sample",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT,
    .xxfi_connect = sample_connect,
    .xxfi_envfrom = sample_envfrom,
    .xxfi_envrcpt = sample_envrcpt,
    .xxfi_eom = sample_eom,
    .xxfi_abort = sample_abort,
    .xxfi_close = sample_close,
};

int main(int argc, char** argv) {
  const char* conn = NULL;
  int c;
  while ((c = getopt(argc, argv, "p:")) != -1) {
    if (c == 'p') {
      conn = optarg;
    } else {
      fprintf(stderr, "usage: %s [-p inet:PORT@127.0.0.1]\n", argv[0]);
      return 2;
    }
  }
  if (conn != NULL && smfi_setconn((char*)conn) == MI_FAILURE) return 1;
  if (smfi_register(sample_filter) == MI_FAILURE) return 1;
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
