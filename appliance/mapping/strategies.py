"""Where each SQ runs: the trivial, random and static mappers.

Every mapper honours what the program says: ``ensemble=`` pins an SQ,
``requires=[...]`` limits it to ensembles whose components match the
queries, and ``max_latency`` bounds keep their paths on links fast enough.
What no placement can satisfy is a MappingError before anything is deployed
(``Problem``); a mapping is a plain ``{sq: ensemble}`` dict.
"""
from __future__ import annotations

import random
from typing import Callable, Dict, List, Optional

from appliance.mapping.candidates import MappingError
from appliance.mapping.problem import Problem
from appliance.mapping.static import static_placement
from appliance.program.model import Graph
from appliance.system import EnsembleDescription

#: What the runtime manager uses unless told otherwise.
DEFAULT_STRATEGY = "static"


def _choose(problem: Problem, rng: random.Random, pick: Callable[[List[int]], int]) -> List[int]:
    """SQs in graph order, each on ``pick(its options in name order)``: where it may run,
    narrowed by the latency bounds through it given the SQs placed before it."""
    placed = [-1] * len(problem.graph.sqs)
    for i, hosts in enumerate(problem.hosts):
        allowed = problem.bounds.options(i, placed)
        placed[i] = pick(hosts.order if allowed is None else sorted(allowed))
    return placed


def trivial_placement(problem: Problem, rng: random.Random) -> List[int]:
    """Every SQ on the first ensemble (in name order) that can host it."""
    return _choose(problem, rng, lambda options: options[0])


def random_placement(problem: Problem, rng: random.Random) -> List[int]:
    """Every SQ on an ensemble drawn at random (seeded) among those that can host it.

    It spreads a program over the system, so every arc may cross the network:
    the harsh case a simulation should exercise."""
    return _choose(problem, rng, rng.choice)


STRATEGIES: Dict[str, Callable[[Problem, random.Random], List[int]]] = {
    "static": static_placement,
    "random": random_placement,
    "trivial": trivial_placement,
}


def map_graph(graph: Graph, ensembles: List[EnsembleDescription], strategy: str = DEFAULT_STRATEGY,
              rng: Optional[random.Random] = None) -> Dict[str, str]:
    """``{sq: ensemble}`` for every SQ of the graph.

    The ensembles are taken in name order, so a mapping does not depend on the
    order in which their joins happened to arrive. ``rng`` (default: seeded
    with 0) is drawn from by the random mapper only.
    """
    ensembles = sorted(ensembles, key=lambda e: e.name)
    if not ensembles:
        raise MappingError("no ensemble has joined; nothing to map onto")
    try:
        mapper = STRATEGIES[strategy]
    except KeyError:
        raise MappingError("unknown mapping strategy %r (choose from %s)"
                           % (strategy, ", ".join(sorted(STRATEGIES)))) from None
    problem = Problem(graph, ensembles)
    placed = mapper(problem, rng if rng is not None else random.Random(0))
    return {spec.name: ensembles[e].name for spec, e in zip(graph.sqs, placed)}


# -- the seeds' mapper API ----------------------------------------------------------


def trivial_mapping(graph: Graph, ensembles: List[EnsembleDescription]) -> Dict[str, str]:
    return map_graph(graph, ensembles, "trivial")


def random_mapping(graph: Graph, ensembles: List[EnsembleDescription],
                   rng: Optional[random.Random] = None) -> Dict[str, str]:
    return map_graph(graph, ensembles, "random", rng)


def static_mapping(graph: Graph, ensembles: List[EnsembleDescription]) -> Dict[str, str]:
    return map_graph(graph, ensembles, "static")
