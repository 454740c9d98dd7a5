#include "lib/config/resolver_options.h"

namespace estafette::config {

dns::ResolverOptions resolver_options(const Config& config) {
  dns::ResolverOptions o;
  for (const auto& s : config.dns_servers) o.servers.push_back(s.to_string());
  o.timeout = config.dns_timeout;
  o.tries = config.dns_tries;
  o.cache_size = config.dns_cache_size;
  return o;
}

}  // namespace estafette::config
