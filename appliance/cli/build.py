"""``appliance build``: a program file to a graph file."""
from __future__ import annotations

import argparse

from appliance.program import graphfile
from appliance.program.loader import load_program

EXAMPLES = """examples:
  appliance build examples/two_sinusoids.py -o two_sinusoids.json
  appliance build my_program.py:fusion -o fusion.json    # one of several @graph functions
"""


def add_parser(sub) -> None:
    p = sub.add_parser("build", help="build a program into a graph file (JSON)",
                       description="Build PROGRAM.py (its @graph function, or the one named after ':') "
                       "into a versioned, validated graph file.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("program", metavar="PROGRAM.py[:graph_name]")
    p.add_argument("-o", "--output", metavar="GRAPH.json",
                   help="where to write the graph (default: GRAPH_NAME.json here)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph = load_program(args.program)
    path = args.output or graph.name + ".json"
    graphfile.save(graph, path)
    print("built graph %s: %d SQs, %d arcs, %d outputs -> %s"
          % (graph.name, len(graph.sqs), len(graph.arcs), len(graph.outputs), path))
    return 0
