"""From a mapping to the forward part of each SQ: where its outputs go."""
from __future__ import annotations

from typing import Any, Dict, List

from appliance.program.model import Graph


def assign_mapping(graph: Graph, mapping: Dict[str, str]) -> Dict[str, Dict[str, Any]]:
    """Each arc's destination under ``mapping`` (``{sq: ensemble}``), as each SQ's
    forward part: ``{sq: {"sq", "destinations": [[[ensemble, sq, port], ...] per output],
    "logged": [ports]}}``."""
    parts: Dict[str, Dict[str, Any]] = {}
    for spec in graph.sqs:
        destinations: List[List[list]] = [[] for _ in range(spec.outputs)]
        parts[spec.name] = {"sq": spec.name, "destinations": destinations,
                            "logged": sorted(p for sq, p in graph.outputs if sq == spec.name)}
    for arc in graph.arcs:
        parts[arc.source]["destinations"][arc.output].append([mapping[arc.target], arc.target, arc.input])
    return parts
