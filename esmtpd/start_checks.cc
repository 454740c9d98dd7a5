#include "esmtpd/start_checks.h"

#include "esmtpd/filtering.h"
#include "lib/checks/checks.h"

namespace estafette::esmtpd {

std::string dnsbl_filter_error(const config::DnsListSpec& spec) {
  if (checks::AnswerFilter::parse(spec.filter)) return "";
  return spec.where + ": bad answer filter '" + spec.filter +
         "' (expected e.g. 127.0.0.2 or 127.0.0.[2..11])";
}

std::vector<std::string> start_errors(const config::Config& config) {
  std::vector<std::string> errors;
  for (const auto& spec : config.dnsbl)
    if (auto e = dnsbl_filter_error(spec); !e.empty()) errors.push_back(std::move(e));
  for (auto& e : FilterSet::check(config)) errors.push_back(std::move(e));
  return errors;
}

}  // namespace estafette::esmtpd
