"""MTA-STS in esmtpclient (issue 15, RFC 8461): deliveries under the default tls_policy = may
with mta_sts = yes. dnsmasq publishes the _mta-sts TXT records, the MX records and the
addresses; an HTTPS server on 127.0.0.161:443 (a certificate from a test CA for the three
mta-sts.* names) serves an enforce policy per domain; the MX hosts are SMTP servers written here
(real TLS after STARTTLS). Checked:
  stsgood.test: its MX host is listed and its certificate names it: delivered over verified TLS,
  the log says "policy=mta-sts enforce", and the policy is cached in <state>/mta-sts;
  stsbad.test: the MX host is listed but its certificate names another host: deferred 4.7.5
  (under may alone it would have gone), nothing delivered there;
  stsmx.test: the policy lists other MX hosts: deferred 4.7.5 "MTA-STS", no connection;
  nosts.test: no policy, but destinations says tls=mta-sts for it: deferred 4.7.5 "MTA-STS is
  required" (its MX host, which would take the mail over TLS, gets nothing);
  the same two tls=mta-sts domains from a second instance with mta_sts = no: the same outcome."""
import http.server
import os
import ssl
import threading

import harness
from testca import make_ca, server_cert
from tls_client_test import FailingTlsServer, free_port_on_all

POLICY_HOST, GOOD_MX, BAD_MX = "127.0.0.161", "127.0.0.162", "127.0.0.163"
POLICIES = {
    "mta-sts.stsgood.test": b"version: STSv1\nmode: enforce\nmx: mx.stsgood.test\nmax_age: 86400\n",
    "mta-sts.stsbad.test": b"version: STSv1\nmode: enforce\nmx: mx.stsbad.test\nmax_age: 86400\n",
    "mta-sts.stsmx.test": b"version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n",
}


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = POLICIES.get((self.headers.get("Host") or "").split(":")[0])
        if body is None or self.path != "/.well-known/mta-sts.txt":
            self.send_response(404)
            body = b""
        else:
            self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class PolicyServer:
    def __init__(self, cert, host=POLICY_HOST):
        self.server = http.server.ThreadingHTTPServer((host, 443), PolicyHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test(tmp, stoppers):
    port, dns_port = free_port_on_all((GOOD_MX, BAD_MX)), harness.free_port()
    ca = make_ca(tmp)
    stoppers.append(PolicyServer(server_cert(tmp, ca, "policy", "mta-sts.stsgood.test",
                                             more_names=("mta-sts.stsbad.test",
                                                         "mta-sts.stsmx.test"))))
    good = FailingTlsServer(GOOD_MX, port, "requiretls",
                            server_cert(tmp, ca, "mxgood", "mx.stsgood.test"))
    stoppers.append(good)
    bad = FailingTlsServer(BAD_MX, port, "requiretls", server_cert(tmp, ca, "mxbad", "other.test"))
    stoppers.append(bad)
    records = ["--host-record=mx.stsgood.test,%s" % GOOD_MX,
               "--host-record=mx.stsbad.test,%s" % BAD_MX,
               "--mx-host=stsgood.test,mx.stsgood.test,10",
               "--mx-host=stsbad.test,mx.stsbad.test,10",
               "--mx-host=stsmx.test,mx.stsgood.test,10",
               "--mx-host=nosts.test,mx.stsgood.test,10"]
    for domain in ("stsgood", "stsbad", "stsmx"):
        records += ["--host-record=mta-sts.%s.test,%s" % (domain, POLICY_HOST),
                    "--txt-record=_mta-sts.%s.test,v=STSv1; id=20261206;" % domain]
    stoppers.append(harness.Dnsmasq(tmp, dns_port, records).start())
    dests = os.path.join(tmp, "destinations")
    with open(dests, "w") as f:
        f.write("nosts.test tls=mta-sts\nstsgood.test tls=mta-sts\n")
    mta = harness.Estafette(tmp, esmtp_port=port, dns_servers="127.0.0.1:%d" % dns_port,
                            tls_ca_file=ca[2], mta_sts_timeout="10s", destinations=dests,
                            retry_base="1h", retry_max="1h").start()
    stoppers.append(mta)
    for rcpt in ("a@stsgood.test", "b@stsbad.test", "c@stsmx.test", "d@nosts.test"):
        mta.send("alice@estafette.test", [rcpt], b"Subject: %s\r\n\r\nbody\r\n" % rcpt.encode())

    def deferred():
        return harness.recipient_errors(mta)

    harness.wait_for(lambda: good.messages, 30, "the stsgood.test message at its MX host")
    harness.wait_for(lambda: len(deferred()) == 3, 30, "three deferrals")
    errors = deferred()
    assert "4.7.5" in errors["b@stsbad.test"] and "hostname mismatch" in errors["b@stsbad.test"], \
        errors
    assert "451 4.7.5 MTA-STS" in errors["c@stsmx.test"], errors
    assert "451 4.7.5 MTA-STS is required for nosts.test" in errors["d@nosts.test"], errors
    assert not bad.messages, bad.messages
    rcpts = [r for m in good.messages for r in m[1]]
    assert rcpts == ["RCPT TO:<a@stsgood.test>"], rcpts
    log = mta.read_log()
    line = [ln for ln in log.splitlines() if "delivered=1" in ln and "mx.stsgood.test" in ln]
    assert line and "cert=verified" in line[0] and "policy=mta-sts enforce" in line[0], line
    assert os.path.exists(os.path.join(mta.state, "mta-sts", "stsgood.test")), \
        os.listdir(os.path.join(mta.state, "mta-sts"))

    # tls=mta-sts needs no mta_sts = yes: a second instance with it off enforces it the same way.
    mta2 = harness.Estafette(tmp, name="mta2", esmtp_port=port, mta_sts="no",
                             dns_servers="127.0.0.1:%d" % dns_port, tls_ca_file=ca[2],
                             destinations=dests, retry_base="1h", retry_max="1h").start()
    stoppers.append(mta2)
    for rcpt in ("e@stsgood.test", "f@nosts.test"):
        mta2.send("alice@estafette.test", [rcpt], b"Subject: %s\r\n\r\nbody\r\n" % rcpt.encode())
    harness.wait_for(lambda: len(good.messages) == 2, 30, "e@stsgood.test at its MX host")
    harness.wait_for(lambda: "f@nosts.test" in harness.recipient_errors(mta2), 30,
                     "the nosts.test deferral")
    assert "MTA-STS is required" in harness.recipient_errors(mta2)["f@nosts.test"]
    assert [r for m in good.messages for r in m[1]][1] == "RCPT TO:<e@stsgood.test>"
    assert "policy=mta-sts enforce" in mta2.read_log()


if __name__ == "__main__":
    harness.run(test)
