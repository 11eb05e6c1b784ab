"""``appliance simulate``: run a program on simulated ensembles and a simulated network."""
from __future__ import annotations

import argparse
import os
import sys
from typing import List

from appliance.cli.errors import UsageError
from appliance.net.impairment import Impairment
from appliance.program import graphfile
from appliance.program.loader import load_program, split_target
from appliance.program.model import Graph
from appliance.runtime.app import RunOptions
from appliance.runtime.outputs import JsonLinesWriter
from appliance.sim.harness import SimulationResult, numbered_ensembles, simulate
from appliance.system import EnsembleDescription, load_system

EXAMPLES = """examples:
  appliance simulate examples/two_sinusoids.py
  appliance simulate examples/diamond.py --ensembles 4 --duration 5 --latency-ms 3 --jitter-ms 2
  appliance simulate graph.json --system system.json --loss 0.05 --seed 7 --out outputs.jsonl

Each output token becomes one JSON line (sq, port, value, start, stop, clock,
ensemble, logged_at; times in integer µs). The same seed gives the same file,
byte for byte.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help="run a program on simulated ensembles",
                       description="Run PROGRAM (a .py program or a graph .json) on simulated ensembles "
                       "joined to a simulated runtime manager, over a seeded simulated network.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("program", metavar="PROGRAM", help="PROGRAM.py[:graph_name] or GRAPH.json")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--ensembles", type=int, metavar="N", help="N ensembles without components (default 3)")
    who.add_argument("--system", metavar="SYSTEM.json", help="the ensembles and their components")
    p.add_argument("--duration", type=float, default=1.0, metavar="SECONDS",
                   help="how long the streams sample, in simulated seconds (default 1)")
    p.add_argument("--latency-ms", type=float, default=1.0, metavar="L", help="one-way link latency (default 1)")
    p.add_argument("--jitter-ms", type=float, default=0.0, metavar="J", help="extra random delay, 0..J (default 0)")
    p.add_argument("--loss", type=float, default=0.0, metavar="P", help="datagram loss probability (default 0)")
    p.add_argument("--duplicate", type=float, default=0.0, metavar="P", help="datagram duplication probability")
    p.add_argument("--reorder", type=float, default=0.0, metavar="P", help="probability a datagram is held back")
    p.add_argument("--corrupt", type=float, default=0.0, metavar="P", help="probability a datagram has a bit flipped")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for the network and the mapping (default 0)")
    p.add_argument("--mapping", choices=("random", "trivial"), default="random",
                   help="how SQs are placed (default random; pins and requirements always hold)")
    p.add_argument("--out", metavar="OUTPUTS.jsonl", help="write every output token here as a JSON line")
    p.set_defaults(run=run)


def load_graph(target: str) -> Graph:
    """A program file or a graph file, whichever ``target`` names."""
    if target.endswith(".json"):
        return graphfile.load(target)
    return load_program(target)


def _micros(value: float, what: str, minimum: float = 0.0) -> int:
    if not value >= minimum:
        raise UsageError("%s must be at least %g, got %g" % (what, minimum, value))
    return int(round(value * 1000))


def _ensembles(args: argparse.Namespace) -> List[EnsembleDescription]:
    if args.system:
        return load_system(args.system)
    count = 3 if args.ensembles is None else args.ensembles
    if count < 1:
        raise UsageError("--ensembles must be at least 1, got %d" % count)
    return numbered_ensembles(count)


def run(args: argparse.Namespace) -> int:
    graph = load_graph(args.program)
    ensembles = _ensembles(args)
    # Modules next to the program (or graph file) import on the simulated ensembles, as at build time.
    program_dir = os.path.dirname(os.path.abspath(split_target(args.program)[0]))
    for name in ("loss", "duplicate", "reorder", "corrupt"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise UsageError("--%s is a probability in [0, 1], got %g" % (name, getattr(args, name)))
    if not args.duration * 1e6 >= 1:
        raise UsageError("--duration must be at least 1 µs, got %g s" % args.duration)
    impairment = Impairment(latency=_micros(args.latency_ms, "--latency-ms"),
                             jitter=_micros(args.jitter_ms, "--jitter-ms"),
                             loss=args.loss, duplicate=args.duplicate, reorder=args.reorder,
                             corrupt=args.corrupt)
    options = RunOptions(strategy=args.mapping, seed=args.seed, duration=int(round(args.duration * 1e6)))
    out = open(args.out, "w", encoding="utf-8") if args.out else open(os.devnull, "w")  # noqa: SIM115
    sys.path.insert(0, program_dir)
    try:
        writer = JsonLinesWriter(out)
        progress = _progress_bar if sys.stderr.isatty() else None
        result = simulate(graph, ensembles, options, impairment, sink=writer, progress=progress)
    finally:
        sys.path.remove(program_dir)
        out.close()
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
    print_summary(result, graph, len(ensembles), args)
    return 2 if result.summary["sq_errors"] or result.summary["phase"] != "finished" else 0


def _progress_bar(now: int, end: int) -> None:
    done = min(1.0, now / end) if end else 1.0
    bar = "#" * int(done * 30)
    sys.stderr.write("\r  simulating [%-30s] %3d%%  t=%.3f s" % (bar, done * 100, now / 1e6))
    sys.stderr.flush()


def print_summary(result: SimulationResult, graph: Graph, ensembles: int, args: argparse.Namespace) -> None:
    s = result.summary
    print("simulated %s on %d ensemble(s) for %g s (seed %d, latency %g ms, jitter %g ms, loss %g)"
          % (graph.name, ensembles, args.duration, args.seed, args.latency_ms, args.jitter_ms, args.loss))
    rows = [
        ("outputs logged", "%d%s" % (result.outputs, "  -> %s" % args.out if args.out else "")),
        ("stream samples", str(s["samples"])),
        ("SQ executions", str(s["executions"])),
    ]
    if s["deadlines"]:
        detail = ", ".join("%s %d/%d" % (sq, d["met"], d["met"] + d["missed"]) for sq, d in s["deadlines"].items())
        rows.append(("deadlines", "met %d, missed %d  (%s)" % (s["deadline_met"], s["deadline_missed"], detail)))
    rows.append(("drops", ", ".join("%s %d" % kv for kv in s["drops"].items()) or "none"))
    if s["refused"]:
        rows.append(("refused", ", ".join("%s %d" % kv for kv in s["refused"].items())))
    link, transport = result.link, result.transport
    rows.append(("network", "%d datagrams, %d lost, %d duplicated, %d corrupted"
                 % (link["sent"], link["lost"], link["duplicated"], link["corrupted"])))
    rows.append(("transport", "%d messages, %d retransmitted fragments, %d failed, %d bad CRC, %d duplicates"
                 % (transport["sent"], transport["retransmitted"], transport["failed"], transport["bad_crc"],
                    transport["duplicates"])))
    rows.append(("SQ errors", str(s["sq_errors"])))
    for label, value in rows:
        print("  %-16s %s" % (label, value))
    for ensemble, sq, line, _text in result.errors[:3]:
        print("appliance simulate: error: SQ '%s' on %s: %s" % (sq, ensemble, line), file=sys.stderr)
    if s["phase"] != "finished":
        print("appliance simulate: error: %s" % s["error"], file=sys.stderr)
