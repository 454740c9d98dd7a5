"""Local delivery end to end with swaks as the client: mail for the local domain lands in
<state>/maildir/<user>/new/ as one file per recipient, unstuffed, with LF line ends, our
Received header and a Return-Path."""
import subprocess

import harness


def test(tmp, stoppers):
    mta = harness.Estafette(tmp).start()
    stoppers.append(mta)
    body = "Subject: maildir test\n\nhello\n.dot line\n..double\n"
    out = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(mta.port), "--from", "sender@else.test",
         "--to", "alice@estafette.test,BOB@Estafette.Test", "--data", body, "--pipeline"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "250 2.0.0" in out.stdout, out.stdout
    for user in ("alice", "bob"):
        msgs = harness.wait_for(lambda: mta.maildir_messages(user), 15, "maildir of " + user)
        assert len(msgs) == 1, msgs
        m = msgs[0]
        assert b"\r\n" not in m, "maildir files use LF line ends"
        assert m.startswith(b"Return-Path: <sender@else.test>\n"), m[:200]
        assert b"Received: from " in m and b"[127.0.0.1]" in m, m
        assert m.endswith(b"\nhello\n.dot line\n..double\n") or \
            m.endswith(b"\nhello\n.dot line\n..double\n\n"), m
    harness.wait_for(lambda: not mta.queue_files(), 10, "the queue to empty")


harness.run(test)
