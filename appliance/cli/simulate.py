"""``appliance simulate``: run a program on simulated ensembles and a simulated network."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

from appliance.cli import report, values
from appliance.cli.errors import UsageError
from appliance.cli.runflags import add_run_flags, run_options
from appliance.net.impairment import Impairment
from appliance.program import graphfile
from appliance.program.checks import warnings_for
from appliance.program.loader import load_program, split_target
from appliance.program.model import Graph
from appliance.runtime.outputs import JsonLinesWriter
from appliance.sim.harness import MAX_ONE_WAY_DELAY, SimulationResult, numbered_ensembles, simulate
from appliance.system import EnsembleDescription, load_system
from appliance.system.description import MAX_ENSEMBLES

#: Ensembles simulated when neither --ensembles nor --system says.
DEFAULT_ENSEMBLES = 3

#: --latency-ms and --jitter-ms: each up to what a simulated link carries (sim/harness.py), and
#: the harness refuses the two together, or a system file's link, beyond it.
_network_delay_ms = values.bounded(0.0, MAX_ONE_WAY_DELAY / 1000, "a number of milliseconds from 0 to %g (a round "
                                   "trip up to the transport's rto_max)" % (MAX_ONE_WAY_DELAY / 1000))

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
    p.add_argument("program", metavar="PROGRAM", type=values.file_name, help="PROGRAM.py[:graph_name] or GRAPH.json")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--ensembles", type=values.counted("ensembles", 1, MAX_ENSEMBLES), metavar="N",
                     help="N ensembles without components (default %d, at most %d)"
                     % (DEFAULT_ENSEMBLES, MAX_ENSEMBLES))
    who.add_argument("--system", metavar="SYSTEM.json", type=values.file_name,
                     help="the ensembles and their components")
    p.add_argument("--duration", type=values.seconds, default=1.0, metavar="SECONDS",
                   help="how long the streams sample, in simulated seconds (default 1)")
    p.add_argument("--latency-ms", type=_network_delay_ms, default=1.0, metavar="L",
                   help="one-way link latency, where the system file gives a link none (default 1)")
    p.add_argument("--jitter-ms", type=_network_delay_ms, default=0.0, metavar="J",
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
    add_run_flags(p, seed_help="seed for the network and the mapping (default 0)")
    p.add_argument("--sysfs-root", dest="sysfs_root", metavar="DIR", type=values.file_name,
                   help="sysfs: drivers read DIR/sys/... (default: they are simulated)")
    p.add_argument("--out", metavar="OUTPUTS.jsonl", type=values.file_name,
                   help="write every output token here as a JSON line")
    p.add_argument("--summary-json", metavar="FILE", type=values.file_name,
                   help="write the summary (with the run's options, seed and graph sha256) as JSON")
    p.set_defaults(run=run)


def load_graph(target: str) -> Graph:
    """A program file or a graph file, whichever ``target`` names."""
    if target.endswith(".json"):
        return graphfile.load(target)
    return load_program(target)


def load_to_run(target: str, command: str) -> Graph:
    """The graph a command is about to run, after the warnings it deserves (a deadline that
    can never be met) on stderr, as ``build`` gives them."""
    graph = load_graph(target)
    for warning in warnings_for(graph):
        print("appliance %s: warning: %s" % (command, warning), file=sys.stderr)
    return graph


def _ensembles(args: argparse.Namespace) -> List[EnsembleDescription]:
    if args.system is not None:
        return load_system(args.system)
    return numbered_ensembles(args.ensembles)


def run(args: argparse.Namespace) -> int:
    if args.system is None and args.ensembles is None:  # defaulted here, not by argparse: --system excludes it
        args.ensembles = DEFAULT_ENSEMBLES
    graph = load_to_run(args.program, "simulate")
    ensembles = _ensembles(args)
    if args.sysfs_root is not None and not os.path.isdir(args.sysfs_root):
        raise UsageError("--sysfs-root %s: not a directory" % args.sysfs_root)
    impairment = Impairment(latency=int(round(args.latency_ms * 1000)), jitter=int(round(args.jitter_ms * 1000)),
                            loss=args.loss, duplicate=args.duplicate, reorder=args.reorder, corrupt=args.corrupt)
    options = run_options(args, max(1, int(round(args.duration * 1e6))))
    out = values.output_or_nowhere(args.out, "--out")
    summary_file: Optional[values.OutputFile] = None
    # Modules next to the program (or graph file) import on the simulated ensembles, as at build time.
    program_dir = os.path.dirname(os.path.abspath(split_target(args.program)[0]))
    sys.path.insert(0, program_dir)
    try:
        if args.summary_json is not None:
            summary_file = values.OutputFile(args.summary_json, "--summary-json")
        progress = _progress_bar if sys.stderr.isatty() else None
        result = simulate(graph, ensembles, options, impairment, sink=JsonLinesWriter(out), progress=progress,
                          clock_skew=int(round(args.clock_skew_ms * 1000)), sysfs_root=args.sysfs_root)
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
        print_summary(result, graph, ensembles, args)
    report.print_errors(s, args.debug, "simulate")
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
            "corrupt", "clock_skew_ms", "seed", "mapping", "max_clock_offset_ms", "sq_time_limit", "sysfs_root")},
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


def print_summary(result: SimulationResult, graph: Graph, ensembles: List[EnsembleDescription],
                  args: argparse.Namespace) -> None:
    names = {e.name for e in ensembles}  # a link to a name the file does not have is no link of the simulation
    own = len({frozenset((e.name, other)) for e in ensembles for other, link in e.links.items()
               if "latency" in link and other in names})
    latency = "latency %s ms%s" % (report.exact(int(round(args.latency_ms * 1000)), 3),
                                   " (%d link%s of the system file: its own)" % (own, "" if own == 1 else "s")
                                   if own else "")
    print("simulated %s on %d ensemble(s) for %s (seed %d, %s, jitter %s ms, loss %g)"
          % (graph.name, len(ensembles), report.ran_for(result.summary, int(round(args.duration * 1e6))),
             args.seed, latency, report.exact(int(round(args.jitter_ms * 1000)), 3), args.loss))
    link = result.link
    network = ("network", "%d datagrams, %d lost, %d duplicated, %d corrupted"
               % (link["sent"], link["lost"], link["duplicated"], link["corrupted"]))
    rows = [network]
    if result.writes:
        rows.insert(0, ("component writes", _writes(result)))
    report.print_summary(result.summary, args.out, result.transport, rows)


def _writes(result: SimulationResult) -> str:
    """``valve on pump 11 (last 0)``: per component written, how often and the last value."""
    counts: Dict[Any, List[Any]] = {}
    for write in result.writes:
        counts.setdefault((write.component, write.ensemble), []).append(write.value)
    return ", ".join("%s on %s %d (last %r)" % (component, ensemble, len(values), values[-1])
                     for (component, ensemble), values in sorted(counts.items()))
