/* bad_abi.c: a module built for a future ABI version 2; esmtpd must refuse it. */
#include <estafette/filter.h>

static const struct estafette_filter bad_abi = {
    .abi_version = 2,
    .struct_size = sizeof(struct estafette_filter),
    .name = "bad-abi",
};

const struct estafette_filter* estafette_filter_init(const struct estafette_host* host) {
  (void)host;
  return &bad_abi;
}
