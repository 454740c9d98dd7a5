"""`estafette passwd` (issue 14) as an admin runs it: on a real terminal (a pty: two prompts, no
echo of the password, a mismatch refused), with --stdin, --delete; the file keeps its other lines
and its mode, a new one is 0640, each entry is a yescrypt hash that libcrypt verifies (Python's
crypt, the same libcrypt the file backend uses); a symlink at the path, a user name with ':' and
a missing terminal are refused; the password never appears in the output."""
import os
import pty
import select
import stat
import subprocess
import time
import warnings

import harness

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # libcrypt's crypt(3), as lib/auth/passwd_file.cc calls it

ESTAFETTE = os.path.join(harness.BUILD_DIR, "estafette")


def passwd(*args, stdin=b"", new_session=False):
    return subprocess.run([ESTAFETTE, "passwd", *args], input=stdin, capture_output=True,
                          timeout=30, start_new_session=new_session)


def entries(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                user, rest = line.rstrip("\n").split(":", 1)
                out[user] = rest.split(":")[0]
    return out


def verifies(path, user, password):
    h = entries(path).get(user)
    return h is not None and crypt.crypt(password, h) == h


def on_terminal(args, answers):
    """Runs estafette passwd ARGS on a new pty; answers each prompt with the next of answers.
    Returns (exit code, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(ESTAFETTE, [ESTAFETTE, "passwd", *args])
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(fd, 1024)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        shown += data
        if pending and shown.count(b"password: ") > len(answers) - len(pending):
            os.write(fd, pending.pop(0) + b"\n")  # one answer per prompt, once it is shown
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown


def test(tmp, stoppers):
    path = os.path.join(tmp, "passwd")

    # A terminal: asked twice, nothing echoed; a new file is 0640.
    code, shown = on_terminal(["--file", path, "alice"], [b"Tr0ub4dor&3", b"Tr0ub4dor&3"])
    assert code == 0, shown
    assert shown.count(b"password:") == 2, shown
    assert b"Tr0ub4dor" not in shown, "the password was echoed: %r" % shown
    assert b"alice added to " + path.encode() in shown, shown
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640, oct(os.stat(path).st_mode)
    assert entries(path)["alice"].startswith("$y$"), entries(path)
    assert verifies(path, "alice", "Tr0ub4dor&3")

    # Two different answers: refused, the file unchanged.
    with open(path, "rb") as f:
        before = f.read()
    code, shown = on_terminal(["--file", path, "alice"], [b"one-password", b"another-one"])
    assert code == 1 and b"do not match" in shown, (code, shown)
    assert b"one-password" not in shown and b"another-one" not in shown, shown
    with open(path, "rb") as f:
        assert f.read() == before

    # --stdin; other lines, comments and the mode kept when bob is added and alice changed.
    with open(path, "a") as f:
        f.write("# staff\n\n")
    os.chmod(path, 0o600)
    r = passwd("--file", path, "--stdin", "bob", stdin=b"bob's secret\n")
    assert r.returncode == 0 and b"bob added" in r.stdout, r
    r = passwd("--file", path, "--stdin", "alice", stdin=b"new alice pw\r\n")
    assert r.returncode == 0 and b"alice changed" in r.stdout, r
    for out in (r.stdout, r.stderr):
        assert b"new alice pw" not in out, r
    with open(path) as f:
        text = f.read()
    lines = text.splitlines()
    assert lines[0].startswith("alice:$y$") and lines[1:3] == ["# staff", ""], text
    assert lines[3].startswith("bob:$y$"), text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert verifies(path, "alice", "new alice pw") and not verifies(path, "alice", "Tr0ub4dor&3")
    assert verifies(path, "bob", "bob's secret")

    # --delete, then again: no such user.
    r = passwd("--file", path, "--delete", "bob")
    assert r.returncode == 0 and b"bob removed" in r.stdout, r
    assert "bob" not in entries(path) and verifies(path, "alice", "new alice pw")
    r = passwd("--file", path, "--delete", "bob")
    assert r.returncode == 1 and b"no user bob" in r.stderr, r

    # Refusals: a symlink at the path, bad names, empty passwords, no terminal, no --file.
    target = os.path.join(tmp, "elsewhere")
    with open(target, "w") as f:
        f.write("root:x\n")
    link = os.path.join(tmp, "linked")
    os.symlink(target, link)
    r = passwd("--file", link, "--stdin", "carol", stdin=b"pw\n")
    assert r.returncode == 1 and b"symbolic link" in r.stderr, r
    with open(target) as f:
        assert f.read() == "root:x\n"
    assert os.path.islink(link)
    for user in ("a:b", "a b", "tab\tname", "ctl\x01"):
        r = passwd("--file", path, "--stdin", user, stdin=b"pw\n")
        assert r.returncode == 1 and b"user name" in r.stderr, (user, r)
    for stdin in (b"", b"\n"):
        r = passwd("--file", path, "--stdin", "carol", stdin=stdin)
        assert r.returncode == 1, r
    r = passwd("--file", path, "carol", new_session=True)  # no controlling terminal
    assert r.returncode == 1 and b"no terminal" in r.stderr, r
    # Without --file: the config's auth_backend = file:PATH, or a refusal naming --file.
    confs = os.path.join(tmp, "conf")
    os.makedirs(confs)
    plain, with_file = os.path.join(confs, "plain.conf"), os.path.join(confs, "file.conf")
    with open(plain, "w") as f:
        f.write("hostname = t.test\n")
    with open(with_file, "w") as f:
        f.write("auth_backend = file:%s\n" % path)
    r = passwd("-c", plain, "--stdin", "carol", stdin=b"pw\n")
    assert r.returncode == 2 and b"--file" in r.stderr, r
    assert "carol" not in entries(path)
    r = passwd("-c", with_file, "--stdin", "carol", stdin=b"carol pw\n")
    assert r.returncode == 0, r
    assert crypt.crypt("carol pw", entries(path)["carol"]) == entries(path)["carol"]
    assert sorted(os.listdir(tmp)) == ["conf", "elsewhere", "linked", "passwd"], os.listdir(tmp)


if __name__ == "__main__":
    harness.run(test)
