// start_checks.h: what esmtpd checks in the config only when it starts, beyond what
// config::load_config checked: each DNS list's answer filter (checks::dnsbl_filter_error) and each
// filter (FilterSet::check: the milter spec parses, the module loads). esmtpd stops on the first
// error; `estafette check-config` (admin/check_config) prints them all. It lives in filters/, the
// lowest component that knows both, so neither esmtpd nor the admin tool includes the other.
// Any thread; dlopen()s each module and closes it again. Never throws for a bad entry.
#pragma once

#include <string>
#include <vector>

#include "lib/config/config.h"

namespace estafette::filters {

// Every error esmtpd would stop on at start, in config order: DNS lists, then filters;
// "file:line: reason" each, none when all is well.
std::vector<std::string> start_errors(const config::Config& config);

}  // namespace estafette::filters
