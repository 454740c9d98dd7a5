#!/usr/bin/env python3
"""MTA-STS (RFC 8461) with real components on loopback: `estafette mta-sts DOMAIN` (lib/mtasts:
TXT lookup, HTTPS fetch, policy cache) against dnsmasq serving the _mta-sts TXT records and the
mta-sts.<domain> addresses, and HTTPS servers (Python http.server + ssl) on port 443 of
127.0.0.15x with certificates from a CA the test makes (tls_ca_file names it).

  good.test       enforce policy: fetched, cached in <state>/mta-sts/good.test (with `user`
                  set: estafetted gives that directory to the user, and the probe drops to the
                  user before writing there); then, with its
                  HTTPS server stopped and the DNS server dead, the cached enforce policy still
                  applies (exit 0, source: cache); a new TXT id (another DNS server)
                  fetches again and replaces the cached policy; a corrupt cache file is ignored
  none.test       no TXT record: no policy (exit 1)
  slow.test       a server that accepts and never answers: a timeout within mta_sts_timeout
  redirect.test   301 to another URL: refused (RFC 8461 3.3), not followed
  wrongname.test  a certificate for another name: refused
  big.test        a policy body over 64 KiB (Content-Length), and bigger.test without a length
                  (close-delimited): refused
Each refusal is exit 3 (a policy is published but could not be had) and caches nothing."""
import http.server
import os
import socket
import ssl
import subprocess
import threading
import time

from harness import Dnsmasq, Estafette, free_port, run

POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx.good.test\r\nmx: *.mx.good.test\r\nmax_age: 86400\r\n"
TESTING = b"version: STSv1\nmode: testing\nmx: mx2.good.test\nmax_age: 3600\n"
BIG = b"version: STSv1\nmode: enforce\nmx: mx.big.test\nmax_age: 86400\n" + b"# " + b"x" * 70000 + b"\n"

SITES = {  # domain: (address, certificate name, what the server does)
    "good.test": ("127.0.0.151", "mta-sts.good.test", "policy"),
    "redirect.test": ("127.0.0.152", "mta-sts.redirect.test", "redirect"),
    "wrongname.test": ("127.0.0.153", "mta-sts.other.test", "policy"),
    "big.test": ("127.0.0.154", "mta-sts.big.test", "big"),
    "bigger.test": ("127.0.0.155", "mta-sts.bigger.test", "big-close"),
}
SLOW = ("slow.test", "127.0.0.156")
TIMEOUT = 3  # mta_sts_timeout, seconds
NOBODY = 65534


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, timeout=30)
    assert r.returncode == 0, (args, r.stderr)


def make_ca(tmp):
    key, pem = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=Estafette MTA-STS test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return pem, key


def make_cert(tmp, ca, name):
    key, pem = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".pem")
    csr, ext = os.path.join(tmp, name + ".csr"), os.path.join(tmp, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:%s\n" % name)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-days", "1", "-extfile", ext, "-out", pem)
    return pem, key


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    behaviour = "policy"
    requests = None  # a list per server: the paths asked for

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append((self.path, self.headers.get("Host"), self.headers.get("Connection")))
        if self.behaviour == "redirect":
            self.send_response(301)
            self.send_header("Location", "https://mta-sts.good.test/.well-known/mta-sts.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = {"policy": POLICY, "testing": TESTING}.get(self.behaviour, BIG)
        self.send_response(200 if self.path == "/.well-known/mta-sts.txt" else 404)
        self.send_header("Content-Type", "text/plain")
        if self.behaviour == "big-close":
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client stopped reading an oversized body: what it should do
            self.close_connection = True


class HttpsServer:
    def __init__(self, address, cert, behaviour):
        handler = type("Handler", (PolicyHandler,), {"behaviour": behaviour, "requests": []})
        self.handler = handler
        self.requests = handler.requests
        self.server = http.server.ThreadingHTTPServer((address, 443), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class SilentServer:
    """Accepts connections and never says anything."""

    def __init__(self, address):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 443))
        self.sock.listen(16)
        self.held = []
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


def probe(mta, *args):
    started = time.monotonic()
    r = subprocess.run([mta.program("estafette"), "mta-sts", *args, "-c", mta.conf],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - started


def test(tmp, stoppers):
    ca = make_ca(tmp)
    servers = {}
    for domain, (address, name, behaviour) in SITES.items():
        servers[domain] = HttpsServer(address, make_cert(tmp, ca, name), behaviour)
        stoppers.append(servers[domain])
    stoppers.append(SilentServer(SLOW[1]))
    records = []
    for domain, (address, _, _) in list(SITES.items()) + [(SLOW[0], (SLOW[1], None, None))]:
        records += ["--txt-record=_mta-sts.%s,v=STSv1; id=20261206T01;" % domain,
                    "--host-record=mta-sts.%s,%s" % (domain, address)]
    records.append("--txt-record=none.test,v=spf1 -all")
    dns = Dnsmasq(tmp, free_port(), records).start()
    stoppers.append(dns)
    mta = Estafette(tmp, dns_servers="127.0.0.1:%d" % dns.port, dns_timeout="500ms",
                    dns_tries="1", tls_ca_file=ca[0], mta_sts_timeout="%ds" % TIMEOUT)
    cache_dir = os.path.join(mta.state, "mta-sts")

    # A good enforce policy: fetched (one GET of the well-known path, Connection: close), cached.
    code, out, err, _ = probe(mta, "Good.Test.")
    assert code == 0, (code, out, err)
    for line in ("domain: good.test", "policy: enforce", "source: fetched", "id: 20261206T01",
                 "max_age: 86400", "mx: mx.good.test", "mx: *.mx.good.test"):
        assert line + "\n" in out, (line, out)
    assert servers["good.test"].requests == [
        ("/.well-known/mta-sts.txt", "mta-sts.good.test", "close")], servers["good.test"].requests
    with open(os.path.join(cache_dir, "good.test")) as f:
        cached = f.read()
    assert "domain: good.test\nid: 20261206T01\n" in cached and "mode: enforce\n" in cached, cached

    # Same id again: the cache answers, no second fetch.
    code, out, err, _ = probe(mta, "good.test")
    assert code == 0 and "source: cache\n" in out, (code, out, err)
    assert len(servers["good.test"].requests) == 1, servers["good.test"].requests

    # No MTA-STS record: no policy, exit 1.
    code, out, err, _ = probe(mta, "none.test")
    assert code == 1 and "policy: none\n" in out and "reason: TXT _mta-sts.none.test" in out, \
        (code, out, err)

    # A server that accepts and never answers: a timeout, reported within the limit.
    code, out, err, took = probe(mta, "slow.test")
    assert code == 3 and "timed out after %ds while in the TLS handshake" % TIMEOUT in out, \
        (code, out, err)
    assert TIMEOUT - 0.5 < took < TIMEOUT + 3, took

    # A redirect is not followed (RFC 8461 3.3): the good server is asked nothing more.
    code, out, err, _ = probe(mta, "redirect.test")
    assert code == 3 and "HTTP 301 redirect to https://mta-sts.good.test/" in out and \
        "refused" in out, (code, out, err)
    assert len(servers["good.test"].requests) == 1, servers["good.test"].requests

    # A certificate for another name: refused before any request is sent.
    code, out, err, _ = probe(mta, "wrongname.test")
    assert code == 3 and "not valid for mta-sts.wrongname.test" in out, (code, out, err)
    assert servers["wrongname.test"].requests == [], servers["wrongname.test"].requests

    # Over 64 KiB: refused by its Content-Length, and while reading a close-delimited body.
    code, out, err, _ = probe(mta, "big.test")
    assert code == 3 and "larger than 65536" in out, (code, out, err)
    code, out, err, _ = probe(mta, "bigger.test")
    assert code == 3 and "larger than 65536" in out, (code, out, err)
    assert sorted(os.listdir(cache_dir)) == ["good.test"], os.listdir(cache_dir)

    # A new id in DNS (another DNS server, another config, the same state): fetched again and
    # the cache replaced; the first config's cache answer sees it too.
    dns2 = Dnsmasq(tmp, free_port(), [
        "--txt-record=_mta-sts.good.test,v=STSv1; id=20261206T02;",
        "--host-record=mta-sts.good.test,127.0.0.151"]).start()
    stoppers.append(dns2)
    mta2 = Estafette(tmp, name="mta2", state_dir=mta.state, dns_servers="127.0.0.1:%d" % dns2.port,
                     tls_ca_file=ca[0], mta_sts_timeout="%ds" % TIMEOUT)
    servers["good.test"].handler.behaviour = "testing"
    code, out, err, _ = probe(mta2, "good.test")
    assert code == 0 and "policy: testing\nsource: fetched\nid: 20261206T02\n" in out, \
        (code, out, err)
    assert len(servers["good.test"].requests) == 2, servers["good.test"].requests
    code, out, err, _ = probe(mta, "--cached", "good.test")
    assert code == 0 and "policy: testing\n" in out and "mx: mx2.good.test\n" in out, (code, out)
    dns2.stop()
    # Back to the enforce policy under the first id, for what follows.
    servers["good.test"].handler.behaviour = "policy"
    code, out, err, _ = probe(mta, "good.test")
    assert code == 0 and "policy: enforce\nsource: fetched\n" in out, (code, out, err)

    # With `user`: estafetted gives <state>/mta-sts to the user (esmtpclient writes there), and
    # the probe, started as root, drops to the user before it writes the cache.
    priv = Estafette(tmp, name="priv", user="nobody", dns_servers="127.0.0.1:%d" % dns.port,
                     tls_ca_file=ca[0], mta_sts_timeout="%ds" % TIMEOUT)
    stoppers.append(priv)
    priv.start()
    priv_cache = os.path.join(priv.state, "mta-sts")
    assert os.path.isdir(priv_cache) and os.stat(priv_cache).st_uid == NOBODY, priv_cache
    priv.stop()
    code, out, err, _ = probe(priv, "good.test")
    assert code == 0 and "source: fetched\n" in out, (code, out, err)
    assert os.stat(os.path.join(priv_cache, "good.test")).st_uid == NOBODY

    # The HTTPS server gone and the DNS server dead: the cached enforce policy still applies.
    servers["good.test"].stop()
    dns.stop()
    code, out, err, _ = probe(mta, "good.test")
    assert code == 0, (code, out, err)
    for line in ("policy: enforce", "source: cache", "mx: mx.good.test"):
        assert line + "\n" in out, (line, out)
    assert "note: TXT _mta-sts.good.test: temporary failure" in out, out
    code, out, err, _ = probe(mta, "--cached", "good.test")
    assert code == 0 and "source: cache\n" in out, (code, out, err)
    code, out, err, _ = probe(mta, "--cached", "none.test")
    assert code == 1 and "policy: none\n" in out, (code, out, err)

    # A corrupt cache file is not trusted: ignored, and said so.
    with open(os.path.join(cache_dir, "good.test"), "w") as f:
        f.write(cached.replace("mode: enforce", "mode: sometimes"))
    code, out, err, _ = probe(mta, "--cached", "good.test")
    assert code == 1 and "policy: none\n" in out and "ignoring cached MTA-STS policy" in err, \
        (code, out, err)


if __name__ == "__main__":
    run(test)
