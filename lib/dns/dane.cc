#include "lib/dns/dane.h"

namespace estafette::dns {

const char* to_string(DaneState state) {
  switch (state) {
    case DaneState::Verify:
      return "dane";
    case DaneState::NotApplicable:
      return "not applicable";
    case DaneState::TempFail:
      return "temporary failure";
  }
  return "?";
}

bool dane_wants_tlsa(const MxResult& mx, const MxHost& host) {
  return mx.authenticated && host.status == Status::Ok && host.authenticated;
}

DaneVerdict dane_verdict(const MxResult& mx, const MxHost& host, const TlsaResult* tlsa) {
  DaneVerdict v;
  v.state = DaneState::NotApplicable;
  if (!mx.authenticated) {
    v.reason = mx.implicit ? "insecure: the domain's missing MX RRset is not DNSSEC-validated, "
                             "DANE does not apply"
                           : "insecure: the MX RRset is not DNSSEC-validated, DANE does not apply";
    return v;
  }
  if (host.status != Status::Ok) {
    v.reason = std::string("no addresses for ") + host.name + " (" + to_string(host.status) + ")";
    return v;
  }
  if (!host.authenticated) {
    v.reason = "insecure: the addresses of " + host.name +
               " are not DNSSEC-validated, DANE does not apply";
    return v;
  }
  if (!tlsa) {
    v.reason = "no TLSA lookup made";
    return v;
  }
  switch (tlsa->status) {
    case Status::Ok:
      break;
    case Status::NotFound:
      v.reason = tlsa->authenticated ? "no TLSA records (secure denial), DANE does not apply"
                                     : "insecure: no TLSA records and the denial is not "
                                       "DNSSEC-validated, DANE does not apply";
      return v;
    case Status::TempFail:
    case Status::PermFail:
      v.state = DaneState::TempFail;
      v.reason = "TLSA lookup failed (bogus DNSSEC or no answer): defer";
      return v;
  }
  if (!tlsa->authenticated) {
    v.reason = "insecure: the TLSA records are not DNSSEC-validated, DANE does not apply";
    return v;
  }
  v.records = usable_tlsa(tlsa->records);
  if (v.records.empty()) {
    v.reason = "all " + std::to_string(tlsa->records.size()) +
               " TLSA records are unusable, DANE does not apply";
    return v;
  }
  v.state = DaneState::Verify;
  v.reason = std::to_string(v.records.size()) + " usable TLSA record" +
             (v.records.size() == 1 ? "" : "s") + " (DNSSEC-validated)";
  return v;
}

}  // namespace estafette::dns
