"""What every mapper starts from: a graph, the ensembles in name order, where
each SQ may run, and the latency bounds. Building it checks what no mapper
can fix: an SQ no ensemble can host, a bound no placement keeps."""
from __future__ import annotations

from typing import Dict, List

from appliance.mapping.bounds import Bounds
from appliance.mapping.candidates import Candidates, Hosts
from appliance.program.model import Graph
from appliance.system import EnsembleDescription


class Problem:
    """A graph to place on ``ensembles`` (in name order); SQs and ensembles by index."""

    def __init__(self, graph: Graph, ensembles: List[EnsembleDescription]) -> None:
        self.graph = graph
        self.ensembles = ensembles
        self.candidates = Candidates(ensembles)
        #: Per SQ (graph order), the ensembles that can host it.
        self.hosts: List[Hosts] = [self.candidates.hosts(spec) for spec in graph.sqs]
        self.position: Dict[str, int] = {spec.name: i for i, spec in enumerate(graph.sqs)}
        self.bounds = Bounds(graph, self.candidates, self.hosts)
        self.bounds.check()
