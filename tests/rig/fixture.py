#!/usr/bin/env python3
"""fixture.py: runs one of the project's test fixtures (bench/kit/orchestrate/rig.py) in the
foreground, for tests not written in Python (the C++ unit tests), so that every test uses the
same records and the same server command lines:

  fixture.py dns DIR PORT   dnsmasq on 127.0.0.1:PORT and rbldnsd on PORT+1 (rig.Dns; the
                            records are listed in rig.py's docstring), files in DIR
  fixture.py identd         oidentd on 127.0.0.1:113 (rig.Identd; needs root; one already
                            answering there is used as it is)

It prints "ready" once the servers answer and runs until SIGTERM (or until its parent dies:
PR_SET_PDEATHSIG), then stops what it started. Exit 0 after a clean stop; 77 when the fixture
cannot run here (a package missing, not root: the message says which), 1 when it fails.
"""
import ctypes
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bench", "kit", "orchestrate"))
import rig  # noqa: E402
from common import Unavailable  # noqa: E402

PR_SET_PDEATHSIG = 1


def stop_with_parent():
    """SIGTERM when the test that started us exits, also when it crashes, so no server of a
    failed test keeps its port."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent was gone before prctl
        sys.exit(0)


def terminate(signum, frame):
    raise SystemExit(0)


def main(argv):
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    stop_with_parent()
    if len(argv) == 4 and argv[1] == "dns":
        fixture = rig.Dns(argv[2], int(argv[3]))
    elif len(argv) == 2 and argv[1] == "identd":
        fixture = rig.Identd()
    else:
        sys.stderr.write(__doc__)
        return 2
    try:
        fixture.start()
        print("ready", flush=True)
        while True:
            signal.pause()
    except Unavailable as e:
        sys.stderr.write("fixture.py %s: %s\n" % (argv[1], e))
        return 77
    except (RuntimeError, TimeoutError) as e:
        sys.stderr.write("fixture.py %s: %s\n" % (argv[1], e))
        return 1
    finally:
        fixture.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
