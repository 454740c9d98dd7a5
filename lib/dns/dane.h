// dane.h: what DANE (RFC 7672 2.2) means for one MX host, from the DNSSEC answers of the
// Resolver (resolve_mx, lookup_tlsa). Pure: no I/O, any thread. For esmtpclient's `dane` and
// `dane-only` policies and for `estafette tls-policy`.
// The rules: TLSA records count only when the MX RRset (or, without MX records, the answer that
// there are none), the host's address records and the TLSA RRset are all DNSSEC-secure; a TLSA
// lookup that fails (SERVFAIL: bogus, or no answer) defers the delivery, never plaintext; when
// every record is unusable (tlsa.h) DANE does not apply and the policy's non-DANE meaning holds
// (Postfix's `dane`: mandatory TLS without authentication). An MX host that is an alias
// (MxHost::canonical) has its TLSA records looked up at the CNAME target first (the caller does
// that, RFC 7672 2.2.2) and DaneVerdict::base_domain says where they were found.
// Errors: none; every outcome is a DaneState with a reason for logs.
#pragma once

#include <string>
#include <vector>

#include "lib/dns/resolver.h"
#include "lib/dns/tlsa.h"

namespace estafette::dns {

enum class DaneState {
  Verify,         // records holds the usable TLSA records: authenticate the server with them
  NotApplicable,  // insecure somewhere, or no usable records: DANE does not apply
  TempFail,       // the TLSA lookup failed: defer (RFC 7672 2.2)
};
const char* to_string(DaneState state);

struct DaneVerdict {
  DaneState state = DaneState::NotApplicable;
  std::vector<TlsaRecord> records;  // Verify: the usable ones only
  std::string reason;               // one line: why (for logs, DSNs, the probe)
  // Verify: the TLSA base domain, when it is not the MX host name: the end of the host name's
  // CNAME chain, where the records were found (RFC 7672 2.2.2). "": the MX host name.
  std::string base_domain = {};
};

// Whether to look up host's TLSA records at all: only when the MX RRset and the host's
// addresses are secure (RFC 7672 2.2.1, 2.2.2); otherwise dane_verdict(mx, host, nullptr).
bool dane_wants_tlsa(const MxResult& mx, const MxHost& host);

// The verdict for host (one of mx.hosts); tlsa: its lookup_tlsa() result, null when not asked.
DaneVerdict dane_verdict(const MxResult& mx, const MxHost& host, const TlsaResult* tlsa);

}  // namespace estafette::dns
