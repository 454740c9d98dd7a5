// commands.h: the admin requests to courierd that more than one program offers: `estafette
// mailq` / `sendmail -bp`, and `estafette flush` / `sendmail -q`. Each sends one request over
// courierd's socket and prints the answer to `out`. Throws CourierdDown when courierd is not
// running and std::runtime_error on a timeout or a malformed reply (callers exit 75).
#pragma once

#include <cstdio>
#include <string>

#include "lib/config/config.h"

namespace estafette::admin {

// The queue as courierd holds it, then a per-destination summary by age; --json as one document.
int mailq(const config::Config& config, bool json, std::FILE* out);
// target: "" = everything; a queue id (no '.', '[' or ':'); otherwise a domain or destination.
int flush(const config::Config& config, const std::string& target, std::FILE* out);

}  // namespace estafette::admin
