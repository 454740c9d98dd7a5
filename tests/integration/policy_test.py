#!/usr/bin/env python3
"""Postfix policy services (`filters = policy:...`, issue 18): Debian's postgrey greylists the
first attempt of a triplet (450 with its text) and accepts the retry after its delay; a policy
server written here answers REJECT, a 4xx code and PREPEND for chosen recipients (the header is
in the delivered message), checks the attributes it was sent, never answers once (policy_timeout,
then policy_default_action's 451 4.3.5) and closes the connection once (the same, and the next
query opens a new connection). `estafette check-config` rejects a bad policy_default_action."""
import os
import re
import smtplib
import socket
import socketserver
import subprocess
import threading
import time

from harness import (BUILD_DIR, Estafette, Postgrey, free_port, mailq_messages, release, run,
                     wait_for)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class PolicyServer(socketserver.ThreadingTCPServer):
    """A policy service speaking the protocol: one request (name=value lines, a blank line) at a
    time per connection, the action chosen by the recipient's local part. Records every request
    and counts connections."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port):
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.release = threading.Event()  # ends the "hang" answers at stop()
        super().__init__(("127.0.0.1", port), PolicyHandler)
        self.port = port
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class UnixPolicyServer(socketserver.ThreadingUnixStreamServer):
    """The same service on a unix socket (policy:unix:PATH), open to esmtpd's user."""
    daemon_threads = True

    def __init__(self, path):
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.release = threading.Event()
        super().__init__(path, PolicyHandler)
        os.chmod(path, 0o666)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class PolicyHandler(socketserver.StreamRequestHandler):
    def handle(self):
        with self.server.lock:
            self.server.connections += 1
        while True:
            attrs = {}
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                line = line.rstrip(b"\n").decode()
                if not line:
                    break
                name, _, value = line.partition("=")
                attrs[name] = value
            with self.server.lock:
                self.server.requests.append(attrs)
            state = attrs.get("protocol_state")
            if state in ("DATA", "END-OF-MESSAGE"):
                # One query per message: the action chosen by the recipient (when there is
                # only one), else by the sender.
                actions = {("DATA", "datareject"): "REJECT no data for you",
                          ("END-OF-MESSAGE", "eomreject"): "554 5.7.1 refused at the end",
                          ("END-OF-MESSAGE", "prepend"):
                              "PREPEND X-Policy-Eom: size=%s" % attrs.get("size"),
                          ("END-OF-MESSAGE", "defer"): "DEFER_IF_PERMIT try later"}
                rcpt = attrs.get("recipient", "").split("@")[0]
                sender = attrs.get("sender", "").split("@")[0]
                action = actions.get((state, rcpt), actions.get((state, sender), "DUNNO"))
                self.wfile.write(("action=%s\n\n" % action).encode())
                self.wfile.flush()
                continue
            local = attrs.get("recipient", "").split("@")[0]
            if local == "hang":
                self.server.release.wait(30)
                return
            if local == "close":
                return
            action = {"reject": "REJECT go away, says policy",
                      "code": "452 4.2.2 full by policy",
                      "prepend": "PREPEND X-Policy-Test: checked by policy",
                      "hold": "HOLD look at this"}.get(local, "DUNNO")
            self.wfile.write(("action=%s\n\n" % action).encode())
            self.wfile.flush()


def message(subject, to):
    return ("From: <s@example.test>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@example.test>\r\n\r\n"
            "policy body\r\n" % (to, subject, subject.replace(" ", "-"))).encode()


def delivered(mta, user, n=1):
    wait_for(lambda: len(mta.maildir_messages(user)) >= n, 15, "delivery to %s" % user)
    return mta.maildir_messages(user)[n - 1]


def own_server(tmp, stoppers):
    server = PolicyServer(free_port())
    stoppers.append(server)
    mta = Estafette(tmp, name="policy", filters="policy:inet:%d@127.0.0.1" % server.port,
                    policy_timeout="2s")
    stoppers.append(mta)
    mta.start()

    msg = message("policy one", "prepend@estafette.test")
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        code, text = s.mail("s@example.test", ["SIZE=%d" % len(msg)])
        check(code == 250, "MAIL: %d %r" % (code, text))
        code, text = s.rcpt("reject@estafette.test")
        check(code == 554 and text == b"5.7.1 go away, says policy", "reject: %d %r" % (code, text))
        code, text = s.rcpt("code@estafette.test")
        check(code == 452 and text == b"4.2.2 full by policy", "code: %d %r" % (code, text))
        check(s.rcpt("prepend@estafette.test")[0] == 250, "prepend rcpt")
        check(s.rcpt("user@estafette.test")[0] == 250, "user rcpt")
        code, text = s.data(msg)
        check(code == 250, "DATA: %d %r" % (code, text))
        # A second message: another instance.
        check(s.mail("t@example.test")[0] == 250, "second MAIL")
        check(s.rcpt("user@estafette.test")[0] == 250, "second rcpt")
        s.rset()

    # The PREPENDed header is the message's first, above our Received:, for every recipient.
    for user in ("prepend", "user"):
        got = delivered(mta, user).decode()
        head = got.partition("\n\n")[0]
        check("X-Policy-Test: checked by policy" in head, "%s: no prepended header: %s"
              % (user, head))
        check(head.index("X-Policy-Test:") < head.index("Received:"), "not at the top: " + head)
    check(not mta.maildir_messages("reject") and not mta.maildir_messages("code"),
          "a refused recipient got the message")

    with server.lock:
        reqs = list(server.requests)
        connections = server.connections
    check(len(reqs) == 5, "requests: %r" % reqs)
    check(connections == 1, "one connection per session, not %d" % connections)
    first = reqs[0]
    for name, want in (("request", "smtpd_access_policy"), ("protocol_state", "RCPT"),
                       ("protocol_name", "ESMTP"), ("client_address", "127.0.0.1"),
                       ("helo_name", "client.test"), ("sender", "s@example.test"),
                       ("recipient", "reject@estafette.test"), ("recipient_count", "0"),
                       ("size", str(len(msg))), ("client_name", "unknown"),
                       ("reverse_client_name", "unknown"), ("server_address", "127.0.0.1"),
                       ("server_port", str(mta.port))):
        check(first.get(name) == want, "%s=%r, want %r (%r)" % (name, first.get(name), want, first))
    check(first.get("client_port", "").isdigit(), "client_port: %r" % first)
    for name in ("queue_id", "sasl_method", "sasl_username", "encryption_protocol"):
        check(name in first, "attribute %s missing: %r" % (name, first))
    instances = [r["instance"] for r in reqs]
    check(instances[0] and len(set(instances[:4])) == 1, "one instance per message: %r" % instances)
    check(instances[4] != instances[0], "a new message, a new instance: %r" % instances)
    check([r["recipient"] for r in reqs[:4]] ==
          ["reject@estafette.test", "code@estafette.test", "prepend@estafette.test",
           "user@estafette.test"], "recipients: %r" % reqs)
    check(reqs[4]["sender"] == "t@example.test" and reqs[4]["size"] == "0",
          "second message: %r" % reqs[4])

    # No answer within policy_timeout, a closed connection: 451 4.3.5, logged with the reason;
    # the next query reconnects.
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        check(s.mail("s@example.test")[0] == 250, "MAIL")
        started = time.time()
        code, text = s.rcpt("hang@estafette.test")
        took = time.time() - started
        check(code == 451 and text.startswith(b"4.3.5"), "timeout: %d %r" % (code, text))
        check(1.5 < took < 10, "the timeout took %.1fs" % took)
        code, text = s.rcpt("close@estafette.test")
        check(code == 451 and text.startswith(b"4.3.5"), "closed: %d %r" % (code, text))
        check(s.rcpt("user@estafette.test")[0] == 250, "after the failures")
        s.rset()
    log = mta.read_log()
    service = "policy:inet:%d@127.0.0.1" % server.port
    check("policy %s: timed out waiting for an answer" % service in log, "no timeout log line")
    check("policy %s: the service closed the connection" % service in log, "no close log line")
    with server.lock:
        check(server.connections == 4, "reconnects after each failure: %d" % server.connections)
    mta.stop()
    print("own policy server: reject, 4xx, prepend, attributes, timeout, close: ok")


def unix_socket(tmp, stoppers):
    """policy:unix:PATH; HOLD quarantines the message: on hold with the reason until released."""
    server = UnixPolicyServer(os.path.join(tmp, "policy.sock"))
    stoppers.append(server)
    mta = Estafette(tmp, name="policy-unix",
                    filters="policy:unix:%s" % os.path.join(tmp, "policy.sock"))
    stoppers.append(mta)
    mta.start()
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        check(s.mail("s@example.test")[0] == 250, "MAIL")
        code, text = s.rcpt("reject@estafette.test")
        check(code == 554, "reject over unix: %d %r" % (code, text))
        check(s.rcpt("hold@estafette.test")[0] == 250, "hold rcpt")
        check(s.data(message("held", "hold@estafette.test"))[0] == 250, "DATA")
    held = wait_for(lambda: mailq_messages(mta), 15, "the held message in mailq")
    check(len(held) == 1 and held[0]["held"] and held[0]["quarantine"] == "look at this",
          "HOLD not applied: %r" % held)
    time.sleep(1)
    check(not mta.maildir_messages("hold"), "a held message was delivered")
    release(mta, held[0]["id"])
    check(b"Subject: held" in delivered(mta, "hold"), "not delivered after release")
    with server.lock:
        check(len(server.requests) == 2 and server.connections == 1,
              "unix: %d requests, %d connections" % (len(server.requests), server.connections))
    mta.stop()
    print("policy:unix: reject, HOLD quarantine (held, released, delivered): ok")


def stages(tmp, stoppers):
    """policy-data: and policy-eom: entries: asked once per message at DATA and at its end (not
    at RCPT), with recipient_count, the only recipient (else none) and, at the end, the size;
    their REJECT, 5xx, DEFER_IF_PERMIT and PREPEND apply to the whole message."""
    server = PolicyServer(free_port())
    stoppers.append(server)
    mta = Estafette(tmp, name="policy-stages",
                    filters="policy-data:inet:%d@127.0.0.1, policy-eom:inet:%d@127.0.0.1"
                    % (server.port, server.port))
    stoppers.append(mta)
    mta.start()
    msg = message("stages", "two recipients")
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        check(s.mail("s@example.test")[0] == 250, "MAIL")
        check(s.rcpt("datareject@estafette.test")[0] == 250, "not asked at RCPT")
        code, text = s.docmd("DATA")
        check(code == 554 and text == b"5.7.1 no data for you", "DATA: %d %r" % (code, text))
        s.rset()
        check(s.mail("s@example.test")[0] == 250, "MAIL 2")
        check(s.rcpt("eomreject@estafette.test")[0] == 250, "rcpt 2")
        code, text = s.data(message("refused", "eomreject@estafette.test"))
        check(code == 554 and text == b"5.7.1 refused at the end", "EOM: %d %r" % (code, text))
        check(s.mail("defer@example.test")[0] == 250, "MAIL 3")
        check(s.rcpt("user@estafette.test")[0] == 250, "rcpt 3")
        code, text = s.data(message("deferred", "user@estafette.test"))
        check(code == 450 and text == b"4.7.1 try later", "DEFER_IF_PERMIT: %d %r" % (code, text))
        check(s.mail("prepend@example.test", ["SIZE=%d" % len(msg)])[0] == 250, "MAIL 4")
        check(s.rcpt("user@estafette.test")[0] == 250 and s.rcpt("other@estafette.test")[0] == 250,
              "rcpts 4")
        check(s.data(msg)[0] == 250, "DATA 4")
    # The size at the end is the message's as queued: with our Received: (as Postfix's).
    got = delivered(mta, "user").decode()
    received = re.search(r"^Received: .*?\n(?=\S)", got, re.S | re.M).group(0)
    size = len(msg) + len(received.replace("\n", "\r\n"))
    for user in ("user", "other"):
        head = delivered(mta, user).decode().partition("\n\n")[0]
        check("X-Policy-Eom: size=%d\n" % size in head, "%s: no prepended header with size %d: %s"
              % (user, size, head))
    check(not mta.maildir_messages("eomreject") and not mta.maildir_messages("datareject"),
          "a refused message was delivered")
    with server.lock:
        reqs = list(server.requests)
    check([r["protocol_state"] for r in reqs] ==
          ["DATA", "DATA", "END-OF-MESSAGE", "DATA", "END-OF-MESSAGE", "DATA", "END-OF-MESSAGE"],
          "stages asked: %r" % [r.get("protocol_state") for r in reqs])
    check(reqs[0]["recipient"] == "datareject@estafette.test" and reqs[0]["recipient_count"] == "1",
          "DATA with one recipient: %r" % reqs[0])
    data4, eom4 = reqs[5], reqs[6]
    check(data4["recipient"] == "" and data4["recipient_count"] == "2" and
          data4["size"] == str(len(msg)), "DATA with two recipients: %r" % data4)
    check(eom4["recipient"] == "" and eom4["recipient_count"] == "2" and
          eom4["size"] == str(size) and eom4["queue_id"] and
          eom4["instance"] == data4["instance"], "END-OF-MESSAGE: %r" % eom4)
    mta.stop()
    print("policy-data/policy-eom: REJECT at DATA, 5xx, DEFER_IF_PERMIT, PREPEND at the end: ok")


def bad_config(tmp):
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write("state_dir = %s\nfilters = policy:inet:10023@127.0.0.1\n"
                "policy_default_action = PREPEND nothing\n" % os.path.join(tmp, "badstate"))
    r = subprocess.run([os.path.join(BUILD_DIR, "estafette"), "check-config", "-c", conf],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "policy_default_action" in r.stdout + r.stderr,
          "check-config accepted a bad policy_default_action: %s %s" % (r.stdout, r.stderr))
    with open(conf, "w") as f:
        f.write("state_dir = %s\nfilters = policy:inet:nope@127.0.0.1\n"
                % os.path.join(tmp, "badstate"))
    r = subprocess.run([os.path.join(BUILD_DIR, "estafette"), "check-config", "-c", conf],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "policy" in r.stdout + r.stderr,
          "check-config accepted a bad policy spec: %s %s" % (r.stdout, r.stderr))


def postgrey(tmp, stoppers):
    delay = 2
    grey = Postgrey(tmp, free_port(), delay)
    stoppers.append(grey)
    mta = Estafette(tmp, name="greylisted", filters="policy:inet:%d@127.0.0.1" % grey.port)
    stoppers.append(mta)
    mta.start()
    msg = message("greylisted", "grey@estafette.test")
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        check(s.mail("s@example.test")[0] == 250, "MAIL")
        code, text = s.rcpt("grey@estafette.test")
        # postgrey's text carries its own enhanced code (4.2.0), which is kept.
        check(code == 450 and re.match(rb"4\.\d\.\d Greylisted, see http", text),
              "first attempt: %d %r" % (code, text))
    first = time.time()
    # After the delay the same triplet passes.
    time.sleep(delay + 1.5)
    try:
        mta.send("s@example.test", ["grey@estafette.test"], msg)
    except smtplib.SMTPRecipientsRefused as e:
        raise AssertionError("retry after %.1fs refused: %r" % (time.time() - first, e.recipients))
    got = delivered(mta, "grey")
    check(b"Subject: greylisted" in got, "delivered message: %r" % got[:300])
    mta.stop()
    print("postgrey: 450 greylisted, accepted after %ds: ok" % delay)


def test(tmp, stoppers):
    bad_config(tmp)
    own_server(tmp, stoppers)
    unix_socket(tmp, stoppers)
    stages(tmp, stoppers)
    postgrey(tmp, stoppers)


run(test)
