"""estafette-bench loopback|relay|report: the orchestration half of the testers' kit.

Run by the estafette-bench program (bench/kit/bench_main.cc), which passes --bindir and --sbindir
(where estafette-bench, estafette-sendmail, estafetted and estafette are: the build tree's top,
or the installed directories). Each command is a module of this directory with
`add_arguments(parser)` and `run(args) -> exit status`; the load itself is always
`estafette-bench source` and `estafette-bench sink` (C++), never Python.
"""
import argparse
import importlib
import os
import sys

COMMANDS = {
    "loopback": "two throwaway Estafette (or Postfix) instances S -> R, R checking "
                "rDNS, DNSBLs and IDENT",
    "relay": "the seed relay test: source -> relay MTA -> sink",
    "report": "CSV and HTML (SVG plots) from a run's JSON result",
}


def main(argv):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(prog="estafette-bench")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, summary in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        p.add_argument("--bindir", required=True, help=argparse.SUPPRESS)
        p.add_argument("--sbindir", required=True, help=argparse.SUPPRESS)
        importlib.import_module(name).add_arguments(p)
    args = parser.parse_args(argv)
    try:
        return importlib.import_module(args.command).run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
