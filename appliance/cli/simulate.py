"""``appliance simulate``: run a program on simulated ensembles and a simulated network."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO, Any, Dict, List, Optional

from appliance.cli import values
from appliance.net.impairment import Impairment
from appliance.program import graphfile
from appliance.program.checks import warnings_for
from appliance.program.loader import load_program, split_target
from appliance.program.model import Graph
from appliance.runtime.app import RunOptions
from appliance.runtime.manager import MAX_ENSEMBLES
from appliance.runtime.outputs import JsonLinesWriter
from appliance.sim.harness import SimulationResult, numbered_ensembles, simulate
from appliance.system import EnsembleDescription, load_system

EXAMPLES = """examples (from the repository root):
  appliance simulate examples/two_sinusoids.py
  appliance simulate examples/diamond.py --ensembles 4 --duration 5 --latency-ms 3 --jitter-ms 2
  appliance simulate examples/camera_fusion.py --system examples/camera_fusion.system.json \\
      --loss 0.05 --seed 7 --out outputs.jsonl --summary-json summary.json

Each output token becomes one JSON line (app, sq, port, value, start, stop,
clock, ensemble, logged_at; times in integer µs). The same seed gives the
same file, byte for byte.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help="run a program on simulated ensembles",
                       description="Run PROGRAM (a .py program or a graph .json) on simulated ensembles "
                       "joined to a simulated runtime manager, over a seeded simulated network.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("program", metavar="PROGRAM", help="PROGRAM.py[:graph_name] or GRAPH.json")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--ensembles", type=values.counted("ensembles", 1, MAX_ENSEMBLES), metavar="N",
                     help="N ensembles without components (default 3, at most %d)" % MAX_ENSEMBLES)
    who.add_argument("--system", metavar="SYSTEM.json", help="the ensembles and their components")
    p.add_argument("--duration", type=values.seconds, default=1.0, metavar="SECONDS",
                   help="how long the streams sample, in simulated seconds (default 1)")
    p.add_argument("--latency-ms", type=values.delay_ms, default=1.0, metavar="L",
                   help="one-way link latency (default 1)")
    p.add_argument("--jitter-ms", type=values.delay_ms, default=0.0, metavar="J",
                   help="extra random delay, 0..J (default 0)")
    p.add_argument("--loss", type=values.probability, default=0.0, metavar="P",
                   help="datagram loss probability (default 0)")
    p.add_argument("--duplicate", type=values.probability, default=0.0, metavar="P",
                   help="datagram duplication probability")
    p.add_argument("--reorder", type=values.probability, default=0.0, metavar="P",
                   help="probability a datagram is held back")
    p.add_argument("--corrupt", type=values.probability, default=0.0, metavar="P",
                   help="probability a datagram has a bit flipped")
    p.add_argument("--clock-skew-ms", type=values.delay_ms, default=0.0, metavar="S",
                   help="leave each ensemble's clock up to S ms off the runtime manager's, drifting up to "
                   "100 ppm (seeded; default 0: synchronised)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for the network and the mapping (default 0)")
    p.add_argument("--mapping", choices=("random", "trivial"), default="random",
                   help="how SQs are placed (default random; pins and requirements always hold)")
    p.add_argument("--out", metavar="OUTPUTS.jsonl", help="write every output token here as a JSON line")
    p.add_argument("--summary-json", metavar="FILE",
                   help="write the summary (with the run's options, seed and graph sha256) as JSON")
    p.set_defaults(run=run)


def load_graph(target: str) -> Graph:
    """A program file or a graph file, whichever ``target`` names."""
    if target.endswith(".json"):
        return graphfile.load(target)
    return load_program(target)


def _ensembles(args: argparse.Namespace) -> List[EnsembleDescription]:
    if args.system:
        return load_system(args.system)
    return numbered_ensembles(3 if args.ensembles is None else args.ensembles)


def run(args: argparse.Namespace) -> int:
    graph = load_graph(args.program)
    for warning in warnings_for(graph):
        print("appliance simulate: warning: %s" % warning, file=sys.stderr)
    ensembles = _ensembles(args)
    impairment = Impairment(latency=int(round(args.latency_ms * 1000)), jitter=int(round(args.jitter_ms * 1000)),
                            loss=args.loss, duplicate=args.duplicate, reorder=args.reorder, corrupt=args.corrupt)
    options = RunOptions(strategy=args.mapping, seed=args.seed, duration=max(1, int(round(args.duration * 1e6))))
    out = values.open_for_writing(args.out, "--out") if args.out else open(os.devnull, "w")  # noqa: SIM115
    summary_file: Optional[IO[str]] = None
    # Modules next to the program (or graph file) import on the simulated ensembles, as at build time.
    program_dir = os.path.dirname(os.path.abspath(split_target(args.program)[0]))
    sys.path.insert(0, program_dir)
    try:
        if args.summary_json:
            summary_file = values.open_for_writing(args.summary_json, "--summary-json")
        progress = _progress_bar if sys.stderr.isatty() else None
        result = simulate(graph, ensembles, options, impairment, sink=JsonLinesWriter(out), progress=progress,
                          clock_skew=int(round(args.clock_skew_ms * 1000)))
    finally:
        sys.path.remove(program_dir)
        out.close()
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
    s = result.summary
    if summary_file is not None:
        with summary_file:
            json.dump(summary_document(result, graph, args), summary_file, indent=1, sort_keys=True)
            summary_file.write("\n")
    for warning in s["warnings"]:
        print("appliance simulate: warning: %s" % warning, file=sys.stderr)
    if s["ran"]:
        print_summary(result, graph, len(ensembles), args)
    print_errors(result, args.debug)
    if s["phase"] != "finished":
        print("appliance simulate: error: %s" % s["error"], file=sys.stderr)
    return 2 if s["sq_errors"] or s["phase"] != "finished" else 0


def summary_document(result: SimulationResult, graph: Graph, args: argparse.Namespace) -> Dict[str, Any]:
    """What ``--summary-json`` writes: the summary, and enough to reproduce the run."""
    return {
        "graph": graph.name,
        "graph_sha256": graph.program.sha256,
        "program": args.program,
        "options": {name: getattr(args, name) for name in (
            "ensembles", "system", "duration", "latency_ms", "jitter_ms", "loss", "duplicate", "reorder",
            "corrupt", "clock_skew_ms", "seed", "mapping")},
        "summary": result.summary,
        "network": result.link,
        "transport": result.transport,
        "timeline": result.timeline,
        "clocks": {name: {"offset": offset, "delay": delay} for name, (offset, delay) in result.clocks.items()},
    }


def _progress_bar(done: int, total: int) -> None:
    share = min(1.0, done / total) if total else 1.0
    bar = "#" * int(share * 30)
    sys.stderr.write("\r  simulating [%-30s] %3d%%  %.3f of %.3f s" % (bar, share * 100, done / 1e6, total / 1e6))
    sys.stderr.flush()


def _causes(table: Dict[str, int]) -> str:
    return ", ".join("%s %d" % kv for kv in sorted(table.items())) or "none"


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
    rows.append(("discarded", _causes(s["discarded"]) + ("  (by the firing rules' design)" if s["discarded"] else "")))
    rows.append(("lost", _causes(s["lost"])))
    if s["refused"]:
        rows.append(("refused", _causes(s["refused"])))
    link, transport = result.link, result.transport
    rows.append(("network", "%d datagrams, %d lost, %d duplicated, %d corrupted"
                 % (link["sent"], link["lost"], link["duplicated"], link["corrupted"])))
    rows.append(("transport", "%d messages, %d retransmitted fragments, %d failed, %d bad CRC, %d duplicates"
                 % (transport["sent"], transport["retransmitted"], transport["failed"], transport["bad_crc"],
                    transport["duplicates"])))
    rows.append(("SQ errors", str(s["sq_errors"])))
    for label, value in rows:
        print("  %-16s %s" % (label, value))
    print_sq_table(s["sqs"])


def print_sq_table(sqs: Dict[str, Dict[str, Any]]) -> None:
    """Where each SQ ran and what it did: the mapping and the per-SQ counters in one table."""
    width = max([len("SQ")] + [len(name) for name in sqs])
    where = max([len("ran on")] + [len(sq["ensemble"]) for sq in sqs.values()])
    print()
    print(("  %-*s  %-*s  %10s  %6s  %-10s  %s" % (width, "SQ", where, "ran on", "executions", "errors",
                                                   "deadline", "discarded / lost")).rstrip())
    for name, sq in sqs.items():
        deadline = "%d/%d met" % (sq["deadline"]["met"], sq["deadline"]["met"] + sq["deadline"]["missed"]) \
            if "deadline" in sq else ""
        drops = "; ".join(part for part in (
            _causes(sq["discarded"]) if sq["discarded"] else "",
            "lost " + _causes(sq["lost"]) if sq["lost"] else "") if part)
        print(("  %-*s  %-*s  %10d  %6d  %-10s  %s" % (width, name, where, sq["ensemble"], sq["executions"],
                                                       sq["errors"], deadline, drops)).rstrip())


def print_errors(result: SimulationResult, debug: bool) -> None:
    """Each distinct SQ error once, with how often it happened; with --debug its
    traceback and the input that caused it."""
    sqs = result.summary["sqs"]
    for error in result.errors:
        sq = error["sq"]
        lines = [e for e in result.errors if e["sq"] == sq]
        total = sqs.get(sq, {}).get("errors", error["reports"])
        count = "%d times" % total if len(lines) == 1 else "%d of the %d reports of its %d errors" % (
            error["reports"], sum(e["reports"] for e in lines), total)
        print("appliance simulate: error: SQ '%s' on %s: %s  (%s)"
              % (sq, ", ".join(error["ensembles"]), error["error"], count), file=sys.stderr)
        if debug:
            if error["input"]:
                print("  its input: %s" % error["input"], file=sys.stderr)
            for line in error["traceback"].rstrip().splitlines():
                print("  " + line, file=sys.stderr)
