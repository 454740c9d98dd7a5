/* envelope_module.c: a native module that reads the recipients and the message size at end of
 * message (ABI 1.1: host->foreach_rcpt, host->message_size) and adds them as headers:
 *   X-Envelope-Abi: 1.1        (1.0 when built with -DESTAFETTE_FILTER_ABI_1_0, or when the
 *                               host is a 1.0 host: then nothing else is added)
 *   X-Envelope-Rcpts: <a@x>, <b@x>
 *   X-Envelope-Size: 1234
 *   X-Envelope-Before-Eom: -1 -1   (what both answered at DATA: -1, not valid yet)
 * A header "X-Envelope-Reject" is rejected at the header stage (550 5.7.1), so esmtpd's log
 * names phase=header; with a header "X-Envelope-Delete-All" every recipient is deleted at eom
 * (delrcpt for each one foreach_rcpt gives). Built twice by make check: envelope_module.so (1.1)
 * and envelope_module_v10.so (the 1.0 layout), which must load and work in a 1.1 host. */
#include <estafette/filter.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct estafette_host* host;

struct session {
  int before_rcpts; /* foreach_rcpt's answer at DATA */
  int before_size;  /* message_size's answer at DATA */
  int delete_all;   /* X-Envelope-Delete-All seen */
};

#ifndef ESTAFETTE_FILTER_ABI_1_0
struct rcpt_list {
  char text[4096];
  int count;
};

static void add_rcpt(void* arg, const char* rcpt) {
  struct rcpt_list* list = arg;
  size_t used = strlen(list->text);
  snprintf(list->text + used, sizeof list->text - used, "%s%s", list->count ? ", " : " ", rcpt);
  list->count++;
}

static void delete_rcpt(void* arg, const char* rcpt) {
  host->delrcpt((estafette_ctx*)arg, rcpt);
}

static void nop_rcpt(void* arg, const char* rcpt) {
  (void)arg;
  (void)rcpt;
}
#endif

static int on_connect(estafette_ctx* ctx, const char* hostname, int family, const char* address,
                      unsigned port) {
  (void)hostname;
  (void)family;
  (void)address;
  (void)port;
  struct session* s = calloc(1, sizeof *s);
  if (s == NULL) return ESTAFETTE_TEMPFAIL;
  host->setpriv(ctx, s);
  return ESTAFETTE_CONTINUE;
}

static int on_data(estafette_ctx* ctx) {
  struct session* s = host->getpriv(ctx);
  if (s == NULL) return ESTAFETTE_TEMPFAIL;
  s->before_rcpts = s->before_size = s->delete_all = 0;
#ifndef ESTAFETTE_FILTER_ABI_1_0
  if (ESTAFETTE_HOST_HAS(host, message_size)) {
    uint64_t size = 0;
    s->before_rcpts = host->foreach_rcpt(ctx, nop_rcpt, NULL);
    s->before_size = host->message_size(ctx, &size);
  }
#endif
  return ESTAFETTE_CONTINUE;
}

static int on_header(estafette_ctx* ctx, const char* name, const char* value) {
  struct session* s = host->getpriv(ctx);
  (void)value;
  if (s != NULL && strcasecmp(name, "X-Envelope-Delete-All") == 0) s->delete_all = 1;
  if (strcasecmp(name, "X-Envelope-Reject") != 0) return ESTAFETTE_CONTINUE;
  host->setreply(ctx, "550", "5.7.1", "rejected at the header stage");
  return ESTAFETTE_REJECT;
}

static int on_eom(estafette_ctx* ctx) {
  struct session* s = host->getpriv(ctx);
  if (s == NULL) return ESTAFETTE_TEMPFAIL;
#ifndef ESTAFETTE_FILTER_ABI_1_0
  if (ESTAFETTE_HOST_HAS(host, message_size)) {
    struct rcpt_list list = {"", 0};
    uint64_t size = 0;
    char value[64];
    if (host->foreach_rcpt(ctx, add_rcpt, &list) != ESTAFETTE_OK ||
        host->message_size(ctx, &size) != ESTAFETTE_OK)
      return ESTAFETTE_TEMPFAIL;
    host->addheader(ctx, "X-Envelope-Abi", " 1.1");
    host->addheader(ctx, "X-Envelope-Rcpts", list.text);
    snprintf(value, sizeof value, " %" PRIu64, size);
    host->addheader(ctx, "X-Envelope-Size", value);
    snprintf(value, sizeof value, " %d %d", s->before_rcpts, s->before_size);
    host->addheader(ctx, "X-Envelope-Before-Eom", value);
    if (s->delete_all) host->foreach_rcpt(ctx, delete_rcpt, ctx);
    return ESTAFETTE_CONTINUE;
  }
#endif
  host->addheader(ctx, "X-Envelope-Abi", " 1.0");
  return ESTAFETTE_CONTINUE;
}

static int on_close(estafette_ctx* ctx) {
  free(host->getpriv(ctx));
  host->setpriv(ctx, NULL);
  return ESTAFETTE_CONTINUE;
}

static const struct estafette_filter envelope_module = {
    .abi_version = ESTAFETTE_FILTER_ABI_VERSION,
    .struct_size = sizeof(struct estafette_filter),
#ifdef ESTAFETTE_FILTER_ABI_1_0
    .name = "envelope-1.0",
#else
    .name = "envelope-1.1",
#endif
    .connect = on_connect,
    .data = on_data,
    .header = on_header,
    .eom = on_eom,
    .close = on_close,
};

const struct estafette_filter* estafette_filter_init(const struct estafette_host* h) {
  host = h;
  return &envelope_module;
}
