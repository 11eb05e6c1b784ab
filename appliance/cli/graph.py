"""``appliance graph``: draw a program's SQs, arcs, firing rules and mapping."""
from __future__ import annotations

import argparse
from typing import Dict, Optional

from appliance.cli import values
from appliance.cli.errors import UsageError
from appliance.cli.simulate import load_graph
from appliance.mapping import DEFAULT_STRATEGY, STRATEGIES
from appliance.program import draw
from appliance.sim.harness import simulated_mapping
from appliance.system import load_system

EXAMPLES = """examples:
  appliance graph examples/diamond.py
  appliance graph examples/camera_fusion.py --system examples/camera_fusion.system.json --seed 7
  appliance graph examples/camera_fusion.py --system examples/camera_fusion.system.json --format dot > fusion.dot

With --system, SQs are placed exactly as `appliance simulate` places them for
the same system file, --mapping and --seed. Render dot text with Graphviz,
e.g. `dot -Tsvg fusion.dot -o fusion.svg`.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("graph", help="draw a program: SQs, arcs, firing rules, mapping",
                       description="Show PROGRAM (a .py program or a graph .json) as a listing or as "
                       "Graphviz dot text, and with a system file where each SQ would run.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("program", metavar="PROGRAM", type=values.file_name, help="PROGRAM.py[:graph_name] or GRAPH.json")
    p.add_argument("--system", metavar="SYSTEM.json", type=values.file_name,
                   help="the ensembles: show the mapping onto them")
    p.add_argument("--mapping", choices=tuple(STRATEGIES),
                   help="how SQs are placed, as for simulate (default %s; needs --system)" % DEFAULT_STRATEGY)
    p.add_argument("--seed", type=int, metavar="S", help="seed of the mapping, as for simulate (default 0; "
                   "needs --system)")
    p.add_argument("--format", choices=("text", "dot"), default="text",
                   help="a listing (default) or Graphviz dot text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph = load_graph(args.program)
    mapping: Optional[Dict[str, str]] = None
    if args.system is not None:
        mapping = simulated_mapping(graph, load_system(args.system), args.mapping or DEFAULT_STRATEGY, args.seed or 0)
    elif args.mapping is not None or args.seed is not None:
        raise UsageError("--mapping and --seed place the SQs on a system: give --system SYSTEM.json too")
    render = draw.to_dot if args.format == "dot" else draw.to_text
    print(render(graph, mapping), end="")
    return 0
