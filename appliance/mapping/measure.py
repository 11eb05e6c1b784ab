"""What a mapping does to a system: arcs that cross the network, load per ensemble."""
from __future__ import annotations

from typing import Dict, List

from appliance.program.draw import crossing_arcs
from appliance.program.model import Graph
from appliance.system import EnsembleDescription


def cross_arcs(graph: Graph, mapping: Dict[str, str]) -> int:
    """How many arcs join SQs on two different ensembles."""
    return len(crossing_arcs(graph, mapping))


def loads(graph: Graph, mapping: Dict[str, str],
          ensembles: List[EnsembleDescription]) -> Dict[str, Dict[str, float]]:
    """Per ensemble (name order, hosting or not): the sum of its SQs' costs, and its capacity."""
    out = {e.name: {"cost": 0, "capacity": e.capacity} for e in sorted(ensembles, key=lambda e: e.name)}
    for spec in graph.sqs:
        out[mapping[spec.name]]["cost"] += spec.cost
    return out
