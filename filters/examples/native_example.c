/* native_example.c: a small filter against Estafette's native C ABI (include/estafette/filter.h).
 * Build: cc -fPIC -shared -I<prefix>/include native_example.c -o native_example.so
 * Config: filters = module:/path/native_example.so
 * What it does:
 *   MAIL FROM:<reject@example.test> -> 550 5.7.1 rejected by native example
 *   end of message                  -> waits 10 ms without blocking (PENDING + add_timer), then
 *                                      adds "X-Estafette-Native: <{client_addr}> <n>" where n
 * counts the session's messages. */
#include <estafette/filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct estafette_host* host; /* valid from init until fini */

struct session {
  unsigned messages;
  estafette_timer_id timer;
};

static int on_connect(estafette_ctx* ctx, const char* hostname, int family, const char* address,
                      unsigned port) {
  struct session* s = calloc(1, sizeof *s);
  (void)hostname;
  (void)family;
  (void)address;
  (void)port;
  if (s == NULL) return ESTAFETTE_TEMPFAIL;
  host->setpriv(ctx, s);
  return ESTAFETTE_CONTINUE;
}

static int on_mail(estafette_ctx* ctx, const char* address, const char* const* args) {
  (void)args;
  if (strcasecmp(address, "<reject@example.test>") == 0) {
    host->setreply(ctx, "550", "5.7.1", "rejected by native example");
    return ESTAFETTE_REJECT;
  }
  return ESTAFETTE_CONTINUE;
}

/* 10 ms after eom: add the header and answer. */
static void eom_later(estafette_ctx* ctx, void* arg) {
  struct session* s = host->getpriv(ctx);
  const char* addr = host->getsymval(ctx, "{client_addr}");
  char value[128];
  (void)arg;
  s->timer = 0;
  s->messages++;
  snprintf(value, sizeof value, " %s %u", addr ? addr : "-", s->messages);
  if (host->addheader(ctx, "X-Estafette-Native", value) != ESTAFETTE_OK) {
    host->resume(ctx, ESTAFETTE_TEMPFAIL);
    return;
  }
  host->resume(ctx, ESTAFETTE_CONTINUE);
}

static int on_eom(estafette_ctx* ctx) {
  struct session* s = host->getpriv(ctx);
  if (s == NULL) return ESTAFETTE_TEMPFAIL;
  s->timer = host->add_timer(ctx, 10, eom_later, NULL);
  return s->timer != 0 ? ESTAFETTE_PENDING : ESTAFETTE_TEMPFAIL;
}

static int on_close(estafette_ctx* ctx) {
  struct session* s = host->getpriv(ctx);
  /* The host removes the timer anyway; cancelling it is good manners. */
  if (s != NULL && s->timer != 0) host->cancel_timer(ctx, s->timer);
  free(s);
  host->setpriv(ctx, NULL);
  return ESTAFETTE_CONTINUE;
}

static const struct estafette_filter native_example = {
    .abi_version = ESTAFETTE_FILTER_ABI_VERSION,
    .struct_size = sizeof(struct estafette_filter),
    .name = "native-example",
    .connect = on_connect,
    .mail = on_mail,
    .eom = on_eom,
    .close = on_close,
};

const struct estafette_filter* estafette_filter_init(const struct estafette_host* h) {
  if (h->abi_version != ESTAFETTE_FILTER_ABI_VERSION) return NULL;
  host = h;
  return &native_example;
}
