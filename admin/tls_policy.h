// tls_policy.h: `estafette tls-policy DOMAIN...`: what outbound transport security the mail
// exchangers of a domain can get, as Postfix's posttls-finger shows it. This part: DANE
// (RFC 7672): the MX hosts through the config's dns_servers (a validating resolver: the AD bit
// is believed), whether the MX RRset and each host's addresses are DNSSEC-secure, the TLSA
// records of each secure host (usable or not) and the verdict per host (lib/dns/dane.h). Other
// sections (MTA-STS) go into their own functions next to dane_report().
// Runs an event::Loop of its own on the calling thread until the lookups are done; no network
// traffic but DNS. Errors: none thrown for DNS (they are reported); std::runtime_error when the
// resolver cannot be set up.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "lib/config/config.h"

namespace estafette::admin {

// What the DANE lookups of one domain found, worst first: a temporary failure (a lookup failed:
// SERVFAIL for bogus DNSSEC, a timeout; a DANE delivery would be deferred), DANE not applicable
// to some MX host (insecure, no or only unusable TLSA records, no such domain), DANE for every
// MX host.
enum class DaneOutcome { TempFail, NotApplicable, Dane };

// Exit codes of `estafette tls-policy` (the worst outcome of its domains).
inline constexpr int kTlsPolicyDane = 0;           // DANE applies to every MX host
inline constexpr int kTlsPolicyNotApplicable = 1;  // DANE does not apply to some MX host
inline constexpr int kTlsPolicyTempFail = 75;      // EX_TEMPFAIL: a lookup failed

// Prints the DANE section for each domain (in order, one Resolver with the config's answer
// cache for all of them) and a last line with the resolver's cache counts; returns the exit
// code of the worst outcome.
int tls_policy(const config::Config& config, const std::vector<std::string>& domains,
               std::FILE* out);

}  // namespace estafette::admin
