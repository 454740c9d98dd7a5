#include "admin/tls_policy.h"

#include <memory>

#include "lib/config/resolver_options.h"
#include "lib/dns/dane.h"
#include "lib/dns/resolver.h"
#include "lib/event/loop.h"

namespace estafette::admin {

namespace {

constexpr unsigned kSmtpPort = 25;

const char* secure_word(bool authenticated) {
  return authenticated ? "secure (DNSSEC)" : "insecure";
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : " ") + i;
  return out;
}

// Runs loop until *done.
void run_until(event::Loop& loop, const bool& done) {
  if (!done) loop.run();
}

// The DANE section for one domain: MX hosts, their addresses and TLSA records, the verdicts.
DaneOutcome dane_report(event::Loop& loop, dns::Resolver& resolver, const std::string& domain,
                        std::FILE* out) {
  std::fprintf(out, "%s: DANE (RFC 7672)\n", domain.c_str());
  dns::MxResult mx;
  bool done = false;
  dns::Request request = resolver.resolve_mx(domain, [&](const dns::MxResult& r) {
    mx = r;
    done = true;
    loop.stop();
  });
  run_until(loop, done);
  if (mx.status == dns::Status::TempFail && mx.hosts.empty()) {
    std::fprintf(out, "  MX lookup: temporary failure (bogus DNSSEC or no answer)\n");
    std::fprintf(out, "  result: temporary failure\n");
    return DaneOutcome::TempFail;
  }
  if (mx.hosts.empty()) {
    std::fprintf(out, "  MX lookup: %s\n",
                 mx.status == dns::Status::PermFail ? "null MX: the domain takes no mail"
                                                    : dns::to_string(mx.status));
    std::fprintf(out, "  result: DANE does not apply\n");
    return DaneOutcome::NotApplicable;
  }
  std::fprintf(out, "  MX RRset: %s%s\n", secure_word(mx.authenticated),
               mx.implicit ? " (no MX records: the domain itself)" : "");
  DaneOutcome worst = DaneOutcome::Dane;
  for (const auto& host : mx.hosts) {
    std::fprintf(out, "  %s (preference %u): ", host.name.c_str(), host.preference);
    if (host.status == dns::Status::Ok)
      std::fprintf(out, "%s, addresses %s\n", secure_word(host.authenticated),
                   joined(host.addresses).c_str());
    else
      std::fprintf(out, "addresses: %s\n", dns::to_string(host.status));
    std::unique_ptr<dns::TlsaResult> tlsa;
    if (!host.canonical.empty()) std::fprintf(out, "    alias of %s\n", host.canonical.c_str());
    if (dns::dane_wants_tlsa(mx, host)) {
      // As esmtpclient does: an alias's CNAME target first, then (none there) the name itself.
      std::vector<std::string> bases;
      if (!host.canonical.empty()) bases.push_back(host.canonical);
      bases.push_back(host.name);
      for (const auto& base : bases) {
        done = false;
        tlsa = std::make_unique<dns::TlsaResult>();
        dns::Request r = resolver.lookup_tlsa(base, kSmtpPort, [&](const dns::TlsaResult& t) {
          *tlsa = t;
          done = true;
          loop.stop();
        });
        run_until(loop, done);
        std::fprintf(out, "    TLSA _%u._tcp.%s: %s", kSmtpPort, base.c_str(),
                     dns::to_string(tlsa->status));
        if (tlsa->status == dns::Status::Ok || tlsa->status == dns::Status::NotFound)
          std::fprintf(out, ", %s", secure_word(tlsa->authenticated));
        std::fprintf(out, "\n");
        for (const auto& record : tlsa->records)
          std::fprintf(out, "      %s (%s)\n", dns::tlsa_text(record).c_str(),
                       dns::tlsa_usable(record) ? "usable" : "unusable");
        if (!(tlsa->status == dns::Status::NotFound && tlsa->authenticated)) break;
      }
    }
    dns::DaneVerdict verdict = dns::dane_verdict(mx, host, tlsa.get());
    std::fprintf(out, "    %s: %s\n", dns::to_string(verdict.state), verdict.reason.c_str());
    if (verdict.state == dns::DaneState::TempFail)
      worst = DaneOutcome::TempFail;
    else if (verdict.state == dns::DaneState::NotApplicable && worst == DaneOutcome::Dane)
      worst = DaneOutcome::NotApplicable;
  }
  std::fprintf(out, "  result: %s\n",
               worst == DaneOutcome::Dane       ? "DANE for every MX host"
               : worst == DaneOutcome::TempFail ? "temporary failure"
                                                : "DANE does not apply to every MX host");
  return worst;
}

}  // namespace

int tls_policy(const config::Config& config, const std::vector<std::string>& domains,
               std::FILE* out) {
  event::Loop loop;
  dns::Resolver resolver(loop, config::resolver_options(config));
  DaneOutcome worst = DaneOutcome::Dane;
  for (const auto& domain : domains) {
    DaneOutcome o = dane_report(loop, resolver, domain, out);
    if (static_cast<int>(o) < static_cast<int>(worst)) worst = o;
  }
  dns::CacheStats stats = resolver.cache_stats();
  std::fprintf(out, "dns: %llu answers from the cache, %llu from dns_servers\n",
               static_cast<unsigned long long>(stats.hits),
               static_cast<unsigned long long>(stats.misses));
  switch (worst) {
    case DaneOutcome::Dane:
      return kTlsPolicyDane;
    case DaneOutcome::NotApplicable:
      return kTlsPolicyNotApplicable;
    case DaneOutcome::TempFail:
      return kTlsPolicyTempFail;
  }
  return kTlsPolicyTempFail;
}

}  // namespace estafette::admin
