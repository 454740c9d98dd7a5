// start_checks.cc: the checks esmtpd makes at start, all at once (see start_checks.h).
#include "filters/start_checks.h"

#include <utility>

#include "filters/filter_set.h"
#include "lib/checks/checks.h"

namespace estafette::filters {

std::vector<std::string> start_errors(const config::Config& config) {
  std::vector<std::string> errors;
  for (const auto& spec : config.dnsbl)
    if (auto e = checks::dnsbl_filter_error(spec.where, spec.filter); !e.empty())
      errors.push_back(std::move(e));
  for (auto& e : FilterSet::check(config)) errors.push_back(std::move(e));
  return errors;
}

}  // namespace estafette::filters
