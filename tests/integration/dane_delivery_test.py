"""DANE in esmtpclient (issue 15, RFC 7672): deliveries under tls_policy = dane and tls=dane-only
with a real validating resolver (Debian unbound, harness.ValidatingDns) serving zones this test
signs itself. The receiving servers (written here, real TLS) use a self-signed certificate that
no CA vouches for: only its DANE-EE(3 1 1) TLSA record can authenticate it. Checked:
  signed zone, matching TLSA: delivered over TLS, the log says "cert=dane (3 1 1 ...)";
  signed zone, TLSA that does not match the certificate: deferred 4.7.5, nothing delivered;
  signed zone whose TLSA answer is bogus (SERVFAIL): deferred 4.7.5, no connection at all;
  unsigned zone under dane: DANE does not apply, delivered with opportunistic TLS and the
  reason in the log; the same under dane-only: deferred 4.7.5, no connection;
  an MX host name that is a CNAME (RFC 7672 2.2.2): TLSA records only at the alias's target are
  found there, and TLSA records only at the MX host name are found after the target has none:
  both delivered with "cert=dane";
  a domain whose TLSA record does not match, on the good host's address after sessions with it
  were made: deferred 4.7.5 (a TLS session verified under another domain's records is not
  resumed for it)."""
import hashlib
import os
import subprocess

import harness
from tls_client_test import FailingTlsServer, free_port_on_all

MATCH, MISMATCH = "127.0.0.21", "127.0.0.22"


def self_signed(tmp, name):
    key, pem = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem, "-days",
                    "30", "-subj", "/CN=" + name], check=True, capture_output=True)
    return pem, key


def spki_sha256(pem):
    pub = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-pubkey"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def test(tmp, stoppers):
    port = free_port_on_all((MATCH, MISMATCH))
    cert = self_signed(tmp, "mx.self")
    good = "3 1 1 " + spki_sha256(cert[0])
    wrong = "3 1 1 " + "ab" * 32

    def zone(name, host, tlsa, kind="signed"):
        return harness.DnssecZone(name, ["@ MX 10 mx", "mx A " + host,
                                         "_%d._tcp.mx TLSA %s" % (port, tlsa)], kind=kind)
    dns = harness.ValidatingDns(tmp, [
        zone("danegood.test", MATCH, good),
        zone("danebad.test", MISMATCH, wrong),
        zone("danebogus.test", MATCH, good, kind="bogus"),
        zone("daneplain.test", MATCH, good, kind="unsigned"),
        zone("daneonly.test", MATCH, good, kind="unsigned"),
        # mx is an alias of real; the TLSA record is the target's, then the alias's own.
        harness.DnssecZone("danealias.test", ["@ MX 10 mx", "mx CNAME real", "real A " + MATCH,
                                              "_%d._tcp.real TLSA %s" % (port, good)]),
        harness.DnssecZone("danealias2.test", ["@ MX 10 mx", "mx CNAME real", "real A " + MATCH,
                                               "_%d._tcp.mx TLSA %s" % (port, good)]),
        zone("danestale.test", MATCH, wrong),
    ])
    stoppers.append(dns)
    dns.start()
    match = FailingTlsServer(MATCH, port, "requiretls", cert)
    stoppers.append(match)
    mismatch = FailingTlsServer(MISMATCH, port, "requiretls", cert)
    stoppers.append(mismatch)

    dests = os.path.join(tmp, "destinations")
    with open(dests, "w") as f:
        f.write("daneonly.test tls=dane-only\n")
    mta = harness.Estafette(tmp, esmtp_port=port, dns_servers="127.0.0.1:%d" % dns.port,
                            dns_timeout="3s", tls_policy="dane", destinations=dests,
                            retry_base="1h", retry_max="1h").start()
    stoppers.append(mta)

    for rcpt in ("a@danegood.test", "b@danebad.test", "c@danebogus.test", "d@daneplain.test",
                 "e@daneonly.test", "f@danealias.test", "g@danealias2.test"):
        mta.send("alice@estafette.test", [rcpt], b"Subject: %s\r\n\r\nbody\r\n" % rcpt.encode())

    def deferred():
        return harness.recipient_errors(mta)

    harness.wait_for(lambda: len(match.messages) >= 4, 30, "the four deliveries to the good host")
    harness.wait_for(lambda: len(deferred()) == 3, 30, "three deferrals")
    errors = deferred()
    assert "4.7.5" in errors["b@danebad.test"] and "DANE" in errors["b@danebad.test"], errors
    assert "451 4.7.5 DANE for mx.danebogus.test" in errors["c@danebogus.test"], errors
    assert "451 4.7.5 DANE for mx.daneonly.test" in errors["e@daneonly.test"], errors
    assert not mismatch.messages, mismatch.messages
    rcpts = sorted(r for m in match.messages for r in m[1])
    assert rcpts == ["RCPT TO:<a@danegood.test>", "RCPT TO:<d@daneplain.test>",
                     "RCPT TO:<f@danealias.test>", "RCPT TO:<g@danealias2.test>"], rcpts
    assert all(m[3] for m in match.messages), "delivered without TLS"
    log = mta.read_log()
    good_line = [ln for ln in log.splitlines() if "delivered=1" in ln and "mx.danegood.test" in ln]
    assert good_line and "cert=dane (3 1 1" in good_line[0] and "policy=dane " in good_line[0], \
        good_line
    for alias in ("mx.danealias.test", "mx.danealias2.test"):
        line = [ln for ln in log.splitlines() if "delivered=1" in ln and alias in ln]
        assert line and "cert=dane (3 1 1" in line[0], (alias, line)
    plain_line = [ln for ln in log.splitlines()
                  if "delivered=1" in ln and "mx.daneplain.test" in ln]
    assert plain_line and "DANE does not apply" in plain_line[0], plain_line
    # Sessions with the good host exist now; one under other records must not be resumed.
    mta.send("alice@estafette.test", ["h@danestale.test"], b"Subject: stale\r\n\r\nbody\r\n")
    harness.wait_for(lambda: "h@danestale.test" in deferred(), 30, "the danestale.test deferral")
    assert "4.7.5" in deferred()["h@danestale.test"], deferred()
    assert len(match.messages) == 4, [m[1] for m in match.messages]
    # The bogus and dane-only hosts were never connected to.
    assert "connected to mx.danebogus.test" not in log and \
        "connected to mx.daneonly.test" not in log, log


if __name__ == "__main__":
    harness.run(test)
