"""``appliance build``: a program file to a graph file."""
from __future__ import annotations

import argparse
import os
import sys

from appliance.cli import values
from appliance.program import graphfile
from appliance.program.checks import warnings_for
from appliance.program.loader import load_program, split_target

EXAMPLES = """examples (from the repository root):
  appliance build examples/two_sinusoids.py                 # writes two_sinusoids.json here
  appliance build examples/diamond.py -o diamond.json
  appliance build examples/diamond.py:main    # the @graph named main (a file may hold several): diamond.main.json
"""


def add_parser(sub) -> None:
    p = sub.add_parser("build", help="build a program into a graph file (JSON)",
                       description="Build PROGRAM.py (its @graph function, or the one named after ':') "
                       "into a versioned, validated graph file.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("program", metavar="PROGRAM.py[:graph_name]", type=values.file_name)
    p.add_argument("-o", "--output", metavar="GRAPH.json", type=values.file_name,
                   help="where to write the graph (default: PROGRAM.json, or PROGRAM.graph_name.json, here)")
    p.set_defaults(run=run)


def default_output(target: str) -> str:
    """``x.py`` -> ``x.json``; ``x.py:fusion`` -> ``x.fusion.json``; in the current directory."""
    path, name = split_target(target)
    stem = os.path.splitext(os.path.basename(path))[0]
    return "%s.%s.json" % (stem, name) if name else stem + ".json"


def run(args: argparse.Namespace) -> int:
    graph = load_program(args.program)
    for warning in warnings_for(graph):
        print("appliance build: warning: %s" % warning, file=sys.stderr)
    path = default_output(args.program) if args.output is None else args.output
    with values.OutputFile(path, "output" if args.output is None else "-o") as out:
        out.write(graphfile.dumps(graph))
    print("built graph %s: %d SQs, %d arcs, %d outputs -> %s"
          % (graph.name, len(graph.sqs), len(graph.arcs), len(graph.outputs), path))
    return 0
