"""``appliance map``: where each SQ of a program would run on a system, and what that costs."""
from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List

from appliance.cli import values
from appliance.cli.simulate import load_graph
from appliance.mapping import DEFAULT_STRATEGY, STRATEGIES
from appliance.mapping.measure import cross_arcs, loads
from appliance.program.model import Graph
from appliance.runtime.network import RUNTIME_MANAGER
from appliance.sim.harness import simulated_mapping
from appliance.system import EnsembleDescription, load_system

EXAMPLES = """examples (from the repository root):
  appliance map examples/camera_fusion.py --system examples/camera_fusion.system.json
  appliance map examples/diamond.py --system examples/placement.system.json --strategy random --seed 3
  appliance map examples/camera_fusion.py --system examples/camera_fusion.system.json --json

The candidates are the system file's ensembles and the runtime manager's own
(runtime-manager), as `appliance simulate` maps them: the same system file,
--strategy and --seed give the same mapping.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("map", help="map a program onto a system: mapping, cross-ensemble arcs, load",
                       description="Map PROGRAM (a .py program or a graph .json) onto the ensembles of "
                       "SYSTEM.json and print where each SQ runs, how many arcs cross the network, and "
                       "each ensemble's load against its capacity.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("program", metavar="PROGRAM", type=values.file_name, help="PROGRAM.py[:graph_name] or GRAPH.json")
    p.add_argument("--system", metavar="SYSTEM.json", type=values.file_name, required=True,
                   help="the ensembles to map onto")
    p.add_argument("--strategy", "--mapping", dest="strategy", choices=tuple(STRATEGIES), default=DEFAULT_STRATEGY,
                   help="the mapper (default %s)" % DEFAULT_STRATEGY)
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random mapper (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object: mapping, cross_arcs, load")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph = load_graph(args.program)
    system = load_system(args.system)
    mapping = simulated_mapping(graph, system, args.strategy, args.seed)
    load = loads(graph, mapping, list(system) + [EnsembleDescription(RUNTIME_MANAGER)])
    if args.json:
        print(json.dumps({"mapping": mapping, "cross_arcs": cross_arcs(graph, mapping), "load": load}))
    else:
        print(to_text(graph, mapping, load, args.strategy), end="")
    return 0


def to_text(graph: Graph, mapping: Dict[str, str], load: Dict[str, Dict[str, Any]], strategy: str) -> str:
    lines: List[str] = ["%s mapping of %s onto %d ensembles:" % (strategy, graph.name, len(load))]
    width = max(len(spec.name) for spec in graph.sqs)
    lines += ["  %-*s  %s" % (width, spec.name, mapping[spec.name]) for spec in graph.sqs]
    lines.append("cross-ensemble arcs: %d of %d" % (cross_arcs(graph, mapping), len(graph.arcs)))
    lines.append("load (SQ costs / capacity):")
    width = max(len(name) for name in load)
    lines += ["  %-*s  %g / %g" % (width, name, doc["cost"], doc["capacity"]) for name, doc in load.items()]
    return "\n".join(lines) + "\n"
