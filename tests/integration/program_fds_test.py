"""A delivery program gets stdin, stdout and stderr and nothing else: not estafette-local's
link to courierd (courierd clears FD_CLOEXEC on the socket it passes), with which a program
could read other Deliver frames and forge results, nor any other descriptor of the daemons.
An alias's program `exec ls -l /proc/self/fd` lists its own descriptors: 0-2, and the
directory ls reads. Root only in full (the daemons run as `nobody`)."""
import contextlib
import os
import smtplib

import harness


def test(tmp, stoppers):
    out = os.path.join(tmp, "out")  # where the program writes
    os.makedirs(out)
    os.chmod(out, 0o777)
    listing = os.path.join(out, "fds")
    mta = harness.start_with_program_alias(tmp, stoppers, 'prog: "|exec ls -l /proc/self/fd > %s"\n' % listing)

    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.sendmail("sender@client.test", ["prog@estafette.test"],
                   "From: sender@client.test\r\nSubject: fds\r\n\r\nbody\r\n")

    def listed():
        # ls writes its few lines in one go when it exits.
        with contextlib.suppress(FileNotFoundError), open(listing) as f:
            text = f.read()
            return text if text.endswith("\n") else None

    text = harness.wait_for(listed, 20, "the program's fd listing")
    fds = {}
    for line in text.splitlines():
        if " -> " not in line:
            continue  # "total 0"
        name, target = line.split(" -> ", 1)
        fds[int(name.split()[-1])] = target
    assert not [t for t in fds.values() if t.startswith("socket:")], text
    leaked = {fd: t for fd, t in fds.items() if fd > 2 and not t.startswith("/proc/")}
    assert not leaked, "the program inherited %s:\n%s" % (leaked, text)
    assert sorted(fds) == [0, 1, 2, 3], text  # 3: the directory ls reads
    mta.stop()


if __name__ == "__main__":
    harness.run(test)
