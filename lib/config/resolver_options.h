// resolver_options.h: the c-ares resolver settings of a config (dns_servers, dns_timeout,
// dns_tries, dns_cache_size), for every daemon that resolves. Pure.
#pragma once

#include "lib/config/config.h"
#include "lib/dns/resolver.h"

namespace estafette::config {

dns::ResolverOptions resolver_options(const Config& config);

}  // namespace estafette::config
