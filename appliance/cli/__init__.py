"""The ``appliance`` command: build, simulate, map and demo programs.

Errors in what the user gave (a program that does not build, a bad graph or
system file, a bad option) print one line naming what and where and exit
with status 2; ``--debug`` shows the traceback too. Output into a pipe whose reader
went away (``| head``) ends the command quietly, with status 141.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from appliance import __version__
from appliance.cli import build, demo, deploy, ensemble, graph, keygen, map, plot, rtm, simulate, status, teardown
from appliance.cli.errors import UsageError
from appliance.program.errors import ProgramError

COMMANDS = (build, simulate, graph, map, plot, demo, rtm, ensemble, deploy, teardown, status, keygen)

EPILOG = """examples (from the repository root):
  appliance demo
  appliance build examples/two_sinusoids.py -o two_sinusoids.json
  appliance simulate two_sinusoids.json --ensembles 3 --duration 2 --out outputs.jsonl
  appliance simulate examples/camera_fusion.py --system examples/camera_fusion.system.json --loss 0.05 --seed 7
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line (what and why) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def parser() -> argparse.ArgumentParser:
    top = Parser(
        prog="appliance", description="Run timed dataflow programs (TickTalk model) on edge devices "
        "or in simulation.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version="appliance %s" % __version__)
    top.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    for command_parser in sub.choices.values():
        # Accepted after the command too; SUPPRESS keeps the top-level value when it is absent.
        command_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                    help="show tracebacks and debug logs")
        command_parser.set_defaults(command_parser=command_parser)  # says a bad command line as its own
    return top


def main(argv: Optional[List[str]] = None) -> int:
    top = parser()
    try:
        args, unknown = top.parse_known_args(argv)
        if unknown:  # said by the command's parser: "appliance simulate: error: ...", not "appliance: error"
            getattr(args, "command_parser", top).error("unrecognized arguments: %s" % " ".join(unknown))
    except SystemExit as done:  # --help, --version, or a bad command line (already said on stderr)
        return done.code if isinstance(done.code, int) else 2
    if args.command is None:
        parser().print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        code = args.run(args)
        sys.stdout.flush()  # here, so a reader gone away is caught below and not at exit
        return code
    except BrokenPipeError:  # a pipe into `head`: the reader took what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit
        return 141  # as a shell reports a command SIGPIPE ended
    except (ProgramError, UsageError) as exc:
        if args.debug:
            raise
        print("appliance %s: error: %s" % (args.command, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("appliance %s: interrupted" % args.command, file=sys.stderr)
        return 130
