"""Checks of a built graph beyond its wiring: the program source, and warnings.

A graph file carries its program's source; an SQ that names a function the
source does not define would only fail on the ensembles, at deployment,
far from the file. So loading a graph reads the source (parses it, never
runs it) and refuses the graph there, naming the file, the SQ and the
function. Warnings are for graphs that run but cannot do what they say.
"""
from __future__ import annotations

import ast
from typing import Dict, List, Set

from appliance.program.errors import GraphFileError
from appliance.program.model import DEADLINE, STREAM, Graph, ProgramSource


def top_level_functions(program: ProgramSource, source: str) -> Set[str]:
    """Names a program file defines at its top level (functions, and names it assigns)."""
    try:
        tree = ast.parse(program.source, filename=program.filename)
    except (SyntaxError, ValueError) as exc:
        raise GraphFileError("the program source does not parse: %s" % exc, source=source,
                             field="program.source") from None
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def check_functions(graph: Graph, source: str) -> None:
    """Every user SQ's function is defined by the program the graph carries."""
    defined = top_level_functions(graph.program, source)
    for spec in graph.sqs:
        if spec.kind != "builtin" and spec.function not in defined:
            raise GraphFileError("names function %r, which the program %s does not define"
                                 % (spec.function, graph.program.filename), source=source, sq=spec.name,
                                 field="function")


def warnings_for(graph: Graph) -> List[str]:
    """What a graph says that it cannot do, one line each (it still runs)."""
    streams: Dict[str, int] = {spec.name: spec.stream.width for spec in graph.sqs
                               if spec.firing == STREAM and spec.stream is not None}
    warnings = []
    for spec in graph.sqs:
        if spec.firing != DEADLINE or spec.deadline is None:
            continue
        for arc in graph.arcs_into(spec.name):
            width = streams.get(arc.source)
            if arc.input == 1 and width is not None and spec.deadline < width // 2:
                warnings.append(
                    "SQ '%s': its deadline of %g ms can never be met: a deadline counts from the start of "
                    "the sample's interval, which begins %g ms before the sample is taken (stream '%s' has "
                    "width_ms=%g), so every sample takes Plan B"
                    % (spec.name, spec.deadline / 1000, (width // 2) / 1000, arc.source, width / 1000))
    return warnings
