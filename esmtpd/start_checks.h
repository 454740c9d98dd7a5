// start_checks.h: what esmtpd checks in the config only when it starts, beyond what
// config::load_config checked: each DNS list's answer filter, each filter (milter spec, module
// that loads). esmtpd stops on the first error; `estafette check-config` prints them all.
// Any thread; FilterSet::check dlopen()s each module and closes it again.
#pragma once

#include <string>
#include <vector>

#include "lib/config/config.h"

namespace estafette::esmtpd {

// "file:line: bad answer filter ..." for a DNS list whose filter does not parse, or "".
std::string dnsbl_filter_error(const config::DnsListSpec& spec);

// Every error esmtpd would stop on at start, in config order: DNS lists, then filters.
std::vector<std::string> start_errors(const config::Config& config);

}  // namespace estafette::esmtpd
