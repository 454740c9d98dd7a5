"""SMTP TLS reporting (issue 15, RFC 8460) end to end, with tls_reporting = yes and mta_sts = yes.
dnsmasq publishes MX, MTA-STS and _smtp._tls records; an HTTPS server on 127.0.0.171:443 serves
the MTA-STS policies; the MX hosts are SMTP servers written here. Four messages go out:
  stsgood.test  enforce policy, certificate names the MX: delivered, an sts success;
  stsbad.test   enforce policy, certificate names another host: deferred, an sts failure
                certificate-host-mismatch;
  notls.test    no policy, the MX offers no STARTTLS: delivered in plaintext, a no-policy-found
                failure starttls-not-supported;
  plain.test    no policy, TLS works: a no-policy-found success; it publishes no _smtp._tls
                record, so it gets no report.
`estafette reload` makes esmtpclient write its journal; garbage lines (one of 1.5 MB) and a
symlink planted in <state>/tlsrpt are ignored with a warning, a good line after them counts; `estafette tls-report --date TODAY` then mails three
reports through the submission socket into the local Maildir of tlsrpt@estafette.test. Each one
is parsed as a mail client would (MIME, base64, gzip, JSON) and its counts are checked. A second
run sends nothing again (<day>.sent)."""
import email
import gzip
import json
import os
import subprocess
import time

import harness
from mtasts_delivery_test import PolicyServer, POLICIES
from testca import make_ca, server_cert
from tls_client_test import FailingTlsServer, free_port_on_all

# Addresses of their own: make check runs this beside mtasts_delivery_test.
POLICY_HOST, GOOD_MX, BAD_MX, NOTLS_MX = "127.0.0.171", "127.0.0.172", "127.0.0.173", "127.0.0.174"
RUA = "tlsrpt@estafette.test"


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=120)


def reports(mta):
    """{TLS-Report-Domain: (message, report JSON)} of the reports in the rua Maildir."""
    out = {}
    for data in mta.maildir_messages("tlsrpt"):
        msg = email.message_from_bytes(data)
        assert msg.get_content_type() == "multipart/report", msg.get_content_type()
        assert msg.get_param("report-type") == "tlsrpt", msg.get_params()
        parts = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
        assert len(parts) == 1, [p.get_content_type() for p in msg.walk()]
        assert parts[0].get_filename().endswith(".json.gz"), parts[0].get_filename()
        report = json.loads(gzip.decompress(parts[0].get_payload(decode=True)))
        out[msg["TLS-Report-Domain"]] = (msg, report)
    return out


def only_policy(report):
    assert len(report["policies"]) == 1, report
    return report["policies"][0]


def test(tmp, stoppers):
    port = free_port_on_all((GOOD_MX, BAD_MX, NOTLS_MX))
    dns_port = harness.free_port()
    ca = make_ca(tmp)
    stoppers.append(PolicyServer(server_cert(tmp, ca, "policy", "mta-sts.stsgood.test",
                                             more_names=("mta-sts.stsbad.test",
                                                         "mta-sts.stsmx.test")), POLICY_HOST))
    good = FailingTlsServer(GOOD_MX, port, "requiretls",
                            server_cert(tmp, ca, "mxgood", "mx.stsgood.test"))
    stoppers.append(good)
    bad = FailingTlsServer(BAD_MX, port, "requiretls", server_cert(tmp, ca, "mxbad", "other.test"))
    stoppers.append(bad)
    notls = FailingTlsServer(NOTLS_MX, port, "notls", server_cert(tmp, ca, "mxnotls", "x.test"))
    stoppers.append(notls)
    assert "mta-sts.stsgood.test" in POLICIES
    records = ["--host-record=mx.stsgood.test,%s" % GOOD_MX,
               "--host-record=mx.plain.test,%s" % GOOD_MX,
               "--host-record=mx.stsbad.test,%s" % BAD_MX,
               "--host-record=mx.notls.test,%s" % NOTLS_MX,
               "--mx-host=stsgood.test,mx.stsgood.test,10",
               "--mx-host=stsbad.test,mx.stsbad.test,10",
               "--mx-host=plain.test,mx.plain.test,10",
               "--mx-host=notls.test,mx.notls.test,10"]
    for domain in ("stsgood", "stsbad"):
        records += ["--host-record=mta-sts.%s.test,%s" % (domain, POLICY_HOST),
                    "--txt-record=_mta-sts.%s.test,v=STSv1; id=20261206;" % domain]
    for domain in ("stsgood", "stsbad", "notls"):
        records.append("--txt-record=_smtp._tls.%s.test,v=TLSRPTv1; rua=mailto:%s" % (domain, RUA))
    stoppers.append(harness.Dnsmasq(tmp, dns_port, records).start())
    mta = harness.Estafette(tmp, esmtp_port=port, dns_servers="127.0.0.1:%d" % dns_port,
                            tls_ca_file=ca[2], mta_sts_timeout="10s", tls_reporting="yes",
                            tls_report_organization="Estafette test",
                            retry_base="1h", retry_max="1h").start()
    stoppers.append(mta)
    for rcpt in ("a@stsgood.test", "b@stsbad.test", "c@plain.test", "d@notls.test"):
        mta.send("alice@estafette.test", [rcpt], b"Subject: %s\r\n\r\nbody\r\n" % rcpt.encode())
    harness.wait_for(lambda: len(good.messages) == 2 and notls.messages, 30,
                     "stsgood.test, plain.test and notls.test delivered")
    harness.wait_for(lambda: "b@stsbad.test" in harness.recipient_errors(mta), 30,
                     "the stsbad.test deferral")

    # The counts reach the journal on SIGHUP (else within a minute).
    journal_dir = os.path.join(mta.state, "tlsrpt")
    r = estafette(mta, "reload")
    assert r.returncode == 0, r.stdout + r.stderr
    harness.wait_for(lambda: any(n.endswith(".journal") for n in os.listdir(journal_dir)), 20,
                     "a TLS report journal")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    with open(os.path.join(journal_dir, "%s.1.journal" % today), "w") as f:
        # A line over the 256 KiB bound that spans read blocks, then a good one after it.
        f.write('garbage\n{"type":"sts","domain":"x.test","ok":-5}\n' + "x" * 1500000 + "\n" +
                '{"type":"no-policy-found","domain":"planted.test","ok":1}\n')
    os.symlink("/etc/passwd", os.path.join(journal_dir, "%s.2.journal" % today))

    printed = estafette(mta, "tls-report", "--date", today, "--print")
    assert printed.returncode == 0, printed.stdout + printed.stderr
    domains = sorted(json.loads(line)["policies"][0]["policy"]["policy-domain"]
                     for line in printed.stdout.splitlines())
    assert domains == ["notls.test", "plain.test", "planted.test", "stsbad.test",
                       "stsgood.test"], printed.stdout
    assert "3 malformed journal lines ignored" in printed.stderr, printed.stderr
    assert "skipping" in printed.stderr and ".2.journal" in printed.stderr, printed.stderr
    assert not mta.maildir_messages("tlsrpt")

    sent = estafette(mta, "tls-report", "--date", today)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.count("report sent to " + RUA) == 3, sent.stdout
    assert "plain.test: no report: no v=TLSRPTv1 TXT record" in sent.stdout or \
        "plain.test: no report: no _smtp._tls TXT record" in sent.stdout, sent.stdout
    harness.wait_for(lambda: len(mta.maildir_messages("tlsrpt")) == 3, 30, "three reports")
    got = reports(mta)
    assert sorted(got) == ["notls.test", "stsbad.test", "stsgood.test"], sorted(got)

    msg, report = got["stsgood.test"]
    assert msg["TLS-Report-Submitter"] == "mta.estafette.test", msg["TLS-Report-Submitter"]
    assert msg["Subject"].startswith("Report Domain: stsgood.test Submitter: mta.estafette.test "
                                     "Report-ID: <"), msg["Subject"]
    assert report["organization-name"] == "Estafette test", report
    assert report["date-range"]["start-datetime"] == today + "T00:00:00Z", report
    assert report["contact-info"] == "postmaster@mta.estafette.test", report
    p = only_policy(report)
    assert p["policy"]["policy-type"] == "sts", p
    assert "mode: enforce" in p["policy"]["policy-string"], p
    assert p["policy"]["mx-host"] == ["mx.stsgood.test"], p
    assert p["summary"] == {"total-successful-session-count": 1,
                            "total-failure-session-count": 0}, p

    p = only_policy(got["stsbad.test"][1])
    assert p["policy"]["policy-type"] == "sts", p
    assert p["summary"]["total-successful-session-count"] == 0, p
    assert p["summary"]["total-failure-session-count"] == 1, p
    detail = p["failure-details"][0]
    assert detail["result-type"] == "certificate-host-mismatch", detail
    assert detail["receiving-mx-hostname"] == "mx.stsbad.test", detail
    assert detail["receiving-ip"] == BAD_MX, detail
    assert detail["sending-mta-ip"].startswith("127."), detail
    assert detail["failed-session-count"] == 1, detail

    p = only_policy(got["notls.test"][1])
    assert p["policy"]["policy-type"] == "no-policy-found", p
    assert p["summary"]["total-failure-session-count"] == 1, p
    assert p["failure-details"][0]["result-type"] == "starttls-not-supported", p

    again = estafette(mta, "tls-report", "--date", today)
    assert again.returncode == 0 and "report sent" not in again.stdout, again.stdout
    time.sleep(1)
    assert len(mta.maildir_messages("tlsrpt")) == 3


if __name__ == "__main__":
    harness.run(test)
