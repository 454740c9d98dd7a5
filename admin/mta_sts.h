// mta_sts.h: `estafette mta-sts [--cached] DOMAIN`: the MTA-STS policy (RFC 8461) that applies to
// mail for DOMAIN, as esmtpclient would find it: the _mta-sts TXT record through the configured
// dns_servers, the policy cached in <state_dir>/mta-sts when its id is current, else a fetch over
// HTTPS (tls_ca_file or the system CAs, mta_sts_timeout) that is cached for the daemons;
// --cached looks only at the cache (no DNS, no network). Prints domain, policy (mode or none),
// source (fetched or cache), id, max_age, expires, one mx line per pattern, and a note or the
// reason there is none.
// Run as root with `user` set, it makes <state_dir>/mta-sts the user's and drops to the user
// before it touches the cache or the network, as esmtpclient runs. Blocking for the caller (it
// runs its own event loop until the answer); main thread of the estafette tool.
// Returns the exit code: 0 a policy applies (fetched or cached), 1 the domain publishes none,
// 3 one could not be had (DNS or the fetch failed, none cached), 2 usage or set-up error.
#pragma once

#include <cstdio>
#include <string>

#include "lib/config/config.h"

namespace estafette::admin {

int mta_sts(const config::Config& config, const std::string& domain, bool cached_only,
            std::FILE* out, std::FILE* err);

}  // namespace estafette::admin
