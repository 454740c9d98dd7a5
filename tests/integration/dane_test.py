"""DANE lookups end to end: `estafette tls-policy` against a real validating resolver (Debian
unbound, harness.ValidatingDns) serving zones this test makes and signs itself (ldns-signzone):
a signed zone with MX + A + TLSA (one usable DANE-EE record, one unusable PKIX-TA) reports a
secure MX, a secure host and a usable TLSA record (exit 0); the same records unsigned are
insecure, DANE does not apply and no TLSA lookup is made (exit 1); a signed zone whose TLSA
records were changed after signing (bogus: SERVFAIL) is a temporary failure (exit 75); a signed
MX pointing at a host in the unsigned zone, and a signed zone with only unusable TLSA records,
are not DANE (exit 1). One run over several domains shows that answers taken from the
Resolver's cache keep their AD bit (the repeated domains report exactly what they did first)."""
import re
import subprocess

import harness

EE = "3 1 1 " + "5a" * 32  # DANE-EE SPKI SHA-256: usable
PKIX = "0 0 1 " + "c3" * 32  # PKIX-TA: unusable for SMTP (RFC 7672 3.1.3)


def zones():
    mx = ["@ MX 10 mx", "mx A 127.0.0.1"]
    return [
        harness.DnssecZone("dane.test", mx + ["_25._tcp.mx TLSA " + EE, "_25._tcp.mx TLSA " + PKIX]),
        harness.DnssecZone("plain.test", mx + ["_25._tcp.mx TLSA " + EE], kind="unsigned"),
        harness.DnssecZone("bogus.test", mx + ["_25._tcp.mx TLSA " + EE], kind="bogus"),
        harness.DnssecZone("mixed.test", ["@ MX 10 mx.plain.test."]),
        harness.DnssecZone("unusable.test", mx + ["_25._tcp.mx TLSA " + PKIX]),
        # The MX host is an alias; its target has no TLSA records, its own name has.
        harness.DnssecZone("alias.test", ["@ MX 10 mx", "mx CNAME real", "real A 127.0.0.1",
                                          "_25._tcp.mx TLSA " + EE]),
    ]


def tls_policy(mta, *domains):
    r = subprocess.run([mta.program("estafette"), "tls-policy"] + list(domains) + ["-c", mta.conf],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def sections(output):
    """domain -> its section of the output (the lines up to its "result:")."""
    out = {}
    for m in re.finditer(r"^(\S+): DANE \(RFC 7672\)\n(.*?^  result: .*?$)", output, re.M | re.S):
        out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test(tmp, stoppers):
    dns = harness.ValidatingDns(tmp, zones())
    stoppers.append(dns)
    dns.start()
    # Not started: tls-policy only reads the config (dns_servers, the answer cache).
    mta = harness.Estafette(tmp, dns_servers="127.0.0.1:%d" % dns.port, dns_timeout="3s")

    rc, out = tls_policy(mta, "dane.test")
    assert rc == 0, out
    assert "  MX RRset: secure (DNSSEC)\n" in out, out
    assert "  mx.dane.test (preference 10): secure (DNSSEC), addresses 127.0.0.1\n" in out, out
    assert "    TLSA _25._tcp.mx.dane.test: ok, secure (DNSSEC)\n" in out, out
    assert "      %s (usable)\n" % EE in out, out
    assert "      %s (unusable)\n" % PKIX in out, out
    assert "    dane: 1 usable TLSA record (DNSSEC-validated)\n" in out, out

    rc, out = tls_policy(mta, "plain.test")
    assert rc == 1, out
    assert "  MX RRset: insecure\n" in out, out
    assert "insecure: the MX RRset is not DNSSEC-validated, DANE does not apply" in out, out
    assert "TLSA _25" not in out, out  # RFC 7672 2.2: no TLSA lookup under an insecure MX

    rc, out = tls_policy(mta, "bogus.test")
    assert rc == 75, out
    assert "  MX RRset: secure (DNSSEC)\n" in out, out  # only the TLSA RRset is bogus
    assert "    TLSA _25._tcp.mx.bogus.test: temporary failure\n" in out, out
    assert "    temporary failure: TLSA lookup failed" in out, out
    assert "  result: temporary failure\n" in out, out

    rc, out = tls_policy(mta, "mixed.test")
    assert rc == 1, out
    assert "  mx.plain.test (preference 10): insecure, addresses 127.0.0.1\n" in out, out
    assert "insecure: the addresses of mx.plain.test are not DNSSEC-validated" in out, out

    rc, out = tls_policy(mta, "alias.test")
    assert rc == 0, out
    assert "    alias of real.alias.test\n" in out, out
    assert "    TLSA _25._tcp.real.alias.test: not found, secure (DNSSEC)\n" in out, out
    assert "    TLSA _25._tcp.mx.alias.test: ok, secure (DNSSEC)\n" in out, out

    rc, out = tls_policy(mta, "unusable.test")
    assert rc == 1, out
    assert "all 1 TLSA records are unusable, DANE does not apply" in out, out

    # One Resolver, its answer cache on (dns_cache_size's default): the second round comes from
    # the cache and must be exactly as secure, or insecure, as the first.
    rc, out = tls_policy(mta, "dane.test", "plain.test", "dane.test", "plain.test")
    assert rc == 1, out
    found = sections(out)
    for domain in ("dane.test", "plain.test"):
        first, second = found[domain]
        assert first == second, (domain, out)
    assert "ok, secure (DNSSEC)" in found["dane.test"][1], out
    assert "  MX RRset: insecure\n" in found["plain.test"][1], out
    hits = int(re.search(r"^dns: (\d+) answers from the cache", out, re.M).group(1))
    assert hits >= 6, out  # MX, A, AAAA and TLSA of dane.test; MX, A, AAAA of plain.test


if __name__ == "__main__":
    harness.run(test)
