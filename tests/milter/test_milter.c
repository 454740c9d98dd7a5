/* test_milter.c: a libmilter filter for the milter client tests (tests/unit/milter). Every
 * callback is registered, so the MTA side sends every stage.
 *   MAIL FROM:<reject@example.test>       -> 550 5.7.1 Rejected by test milter (at MAIL)
 *   MAIL FROM:<chgfrom@example.test>      -> at eom: smfi_chgfrom("<changed@example.test>")
 *   RCPT TO:<rewrite@example.test>        -> at eom: delrcpt it, addrcpt <rewritten@example.test>
 *   RCPT TO:<tempfail@example.test>       -> 451 4.7.1 (that recipient only)
 *   Subject: replace                      -> at eom: the body becomes "replaced body\r\n"
 *   Subject: quarantine                   -> at eom: quarantine "test quarantine"
 *   Subject: change                       -> at eom: chgheader Subject (1) to "changed"
 *   Subject: slow                         -> at eom: 4 x (sleep 0.2 s, smfi_progress)
 *   always at eom: "X-Test-Milter: ok", "X-Test-Macros: ..." (macros seen per stage),
 *   "X-Test-Body: <bytes> <chunks>", and inserts "X-Test-First: 1" at index 0.
 * With -n it negotiates: no reply for headers (SMFIP_NR_HDR), SMFIP_HDR_LEADSPC, and a macro
 * list for the connect stage ("j {client_addr}") via smfi_setsymlist.
 * Usage: test_milter [-n] inet:PORT@127.0.0.1   (foreground; SIGTERM stops it) */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int negotiate_mode = 0;

struct state {
  char macros[1024];
  char subject[256];
  char rewrite;
  char chgfrom;
  char leadspc_subject; /* the Subject value started with a space */
  unsigned long body_bytes;
  unsigned body_chunks;
};

static struct state* get(SMFICTX* ctx) {
  struct state* s = smfi_getpriv(ctx);
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    smfi_setpriv(ctx, s);
  }
  return s;
}

static void note(SMFICTX* ctx, const char* stage, const char* name) {
  struct state* s = get(ctx);
  const char* v = smfi_getsymval(ctx, (char*)name);
  size_t len = strlen(s->macros);
  snprintf(s->macros + len, sizeof s->macros - len, "%s%s:%s=%s", len ? " " : "", stage, name,
           v ? v : "-");
}

static void reset_message(struct state* s) {
  /* keep the connect/helo macros (first part up to " mail:") */
  char* m = strstr(s->macros, " mail:");
  if (m) *m = '\0';
  s->subject[0] = '\0';
  s->rewrite = s->chgfrom = s->leadspc_subject = 0;
  s->body_bytes = 0;
  s->body_chunks = 0;
}

static sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long* pf0, unsigned long* pf1,
                             unsigned long* pf2, unsigned long* pf3) {
  (void)f2;
  (void)f3;
  if (!negotiate_mode) return SMFIS_ALL_OPTS;
  *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT |
               SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_SETSYMLIST);
  *pf1 = f1 & (SMFIP_NR_HDR | SMFIP_HDR_LEADSPC);
  *pf2 = 0;
  *pf3 = 0;
  if (smfi_setsymlist(ctx, SMFIM_CONNECT, "j {client_addr}") != MI_SUCCESS) return SMFIS_REJECT;
  return SMFIS_CONTINUE;
}

static sfsistat on_connect(SMFICTX* ctx, char* host, _SOCK_ADDR* addr) {
  (void)addr;
  struct state* s = get(ctx);
  s->macros[0] = '\0';
  snprintf(s->macros, sizeof s->macros, "host=%s", host);
  note(ctx, "conn", "j");
  note(ctx, "conn", "{client_addr}");
  note(ctx, "conn", "{client_name}");
  note(ctx, "conn", "{daemon_name}");
  return SMFIS_CONTINUE;
}

static sfsistat on_helo(SMFICTX* ctx, char* helo) {
  struct state* s = get(ctx);
  size_t len = strlen(s->macros);
  snprintf(s->macros + len, sizeof s->macros - len, " helo=%s", helo);
  return SMFIS_CONTINUE;
}

static sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
  struct state* s = get(ctx);
  reset_message(s);
  if (strcasecmp(argv[0], "<reject@example.test>") == 0) {
    smfi_setreply(ctx, "550", "5.7.1", "Rejected by test milter");
    return SMFIS_REJECT;
  }
  s->chgfrom = strcasecmp(argv[0], "<chgfrom@example.test>") == 0;
  note(ctx, "mail", "{mail_addr}");
  size_t len = strlen(s->macros);
  snprintf(s->macros + len, sizeof s->macros - len, " args=%s", argv[1] ? argv[1] : "-");
  return SMFIS_CONTINUE;
}

static sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
  struct state* s = get(ctx);
  if (strcasecmp(argv[0], "<tempfail@example.test>") == 0) {
    smfi_setreply(ctx, "451", "4.7.1", "Try that one later");
    return SMFIS_TEMPFAIL;
  }
  if (strcasecmp(argv[0], "<rewrite@example.test>") == 0) s->rewrite = 1;
  note(ctx, "rcpt", "{rcpt_addr}");
  return SMFIS_CONTINUE;
}

static sfsistat on_data(SMFICTX* ctx) {
  note(ctx, "data", "i");
  return SMFIS_CONTINUE;
}

static sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
  struct state* s = get(ctx);
  if (strcasecmp(name, "Subject") == 0) {
    s->leadspc_subject = value[0] == ' ';
    snprintf(s->subject, sizeof s->subject, "%s", value + (value[0] == ' '));
  }
  return negotiate_mode ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat on_eoh(SMFICTX* ctx) {
  note(ctx, "eoh", "{eoh_macro}");
  return SMFIS_CONTINUE;
}

static sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len) {
  (void)chunk;
  struct state* s = get(ctx);
  s->body_bytes += len;
  s->body_chunks++;
  return SMFIS_CONTINUE;
}

static sfsistat on_eom(SMFICTX* ctx) {
  struct state* s = get(ctx);
  char buf[64];
  note(ctx, "eom", "{eom_macro}");
  if (strcmp(s->subject, "slow") == 0) {
    for (int i = 0; i < 4; i++) {
      usleep(200000);
      smfi_progress(ctx);
    }
  }
  if (smfi_addheader(ctx, "X-Test-Milter", "ok") != MI_SUCCESS) return SMFIS_TEMPFAIL;
  smfi_addheader(ctx, "X-Test-Macros", s->macros);
  snprintf(buf, sizeof buf, "%lu %u%s", s->body_bytes, s->body_chunks,
           s->leadspc_subject ? " leadspc" : "");
  smfi_addheader(ctx, "X-Test-Body", buf);
  smfi_insheader(ctx, 0, "X-Test-First", "1");
  if (s->rewrite) {
    smfi_delrcpt(ctx, "<rewrite@example.test>");
    smfi_addrcpt(ctx, "<rewritten@example.test>");
  }
  if (s->chgfrom) smfi_chgfrom(ctx, "<changed@example.test>", NULL);
  if (strcmp(s->subject, "replace") == 0) {
    static const char body[] = "replaced body\r\n";
    smfi_replacebody(ctx, (unsigned char*)body, sizeof body - 1);
  }
  if (strcmp(s->subject, "quarantine") == 0) smfi_quarantine(ctx, "test quarantine");
  if (strcmp(s->subject, "change") == 0) smfi_chgheader(ctx, "Subject", 1, "changed");
  reset_message(s);
  return SMFIS_CONTINUE;
}

static sfsistat on_abort(SMFICTX* ctx) {
  reset_message(get(ctx));
  return SMFIS_CONTINUE;
}

static sfsistat on_close(SMFICTX* ctx) {
  free(smfi_getpriv(ctx));
  smfi_setpriv(ctx, NULL);
  return SMFIS_CONTINUE;
}

static struct smfiDesc filter = {
    .xxfi_name = "estafette-test-milter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT |
                  SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_SETSYMLIST,
    .xxfi_connect = on_connect,
    .xxfi_helo = on_helo,
    .xxfi_envfrom = on_envfrom,
    .xxfi_envrcpt = on_envrcpt,
    .xxfi_header = on_header,
    .xxfi_eoh = on_eoh,
    .xxfi_body = on_body,
    .xxfi_eom = on_eom,
    .xxfi_abort = on_abort,
    .xxfi_close = on_close,
    .xxfi_data = on_data,
    .xxfi_negotiate = on_negotiate,
};

int main(int argc, char** argv) {
  int i = 1;
  if (i < argc && strcmp(argv[i], "-n") == 0) {
    negotiate_mode = 1;
    i++;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: test_milter [-n] inet:PORT@127.0.0.1\n");
    return 2;
  }
  if (smfi_setconn(argv[i]) == MI_FAILURE || smfi_register(filter) == MI_FAILURE) return 1;
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
