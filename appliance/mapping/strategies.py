"""Where each SQ runs: the trivial and random mappers.

Both honour what the program says: ``ensemble=`` pins an SQ, and
``requires=[...]`` limits it to ensembles that have those components. An SQ
that no ensemble can host is an error before anything is deployed, naming the
SQ and what it needs.
"""
from __future__ import annotations

import random
from typing import Dict, List, Optional

from appliance.components.query import describe, normalize, unmet
from appliance.program.errors import ProgramError
from appliance.program.model import Graph, SQSpec
from appliance.system import EnsembleDescription


class MappingError(ProgramError):
    """The graph cannot be placed on the ensembles at hand."""


def _candidates(spec: SQSpec, ensembles: List[EnsembleDescription],
                unavailable: Dict[str, str]) -> List[EnsembleDescription]:
    if spec.ensemble is not None:
        pinned = [e for e in ensembles if e.name == spec.ensemble]
        if not pinned and spec.ensemble in unavailable:
            raise MappingError("SQ '%s' is pinned to ensemble '%s', %s"
                               % (spec.name, spec.ensemble, unavailable[spec.ensemble]))
        if not pinned:
            raise MappingError("SQ '%s' is pinned to ensemble '%s', which has not joined (joined: %s)"
                               % (spec.name, spec.ensemble, ", ".join(e.name for e in ensembles)))
        ensembles = pinned
    queries = [normalize(q) for q in spec.requires]
    able = [e for e in ensembles if not unmet(queries, e.components)]
    if not able:
        raise MappingError("SQ '%s' requires %s; no %sensemble has it"
                           % (spec.name, "; ".join(describe(q) for q in queries), "pinned " if spec.ensemble else ""))
    return able


def trivial_mapping(graph: Graph, ensembles: List[EnsembleDescription], rng: random.Random,
                    unavailable: Dict[str, str]) -> Dict[str, str]:
    """Every SQ on the first ensemble (in name order) that can host it."""
    return {spec.name: _candidates(spec, ensembles, unavailable)[0].name for spec in graph.sqs}


def random_mapping(graph: Graph, ensembles: List[EnsembleDescription], rng: random.Random,
                   unavailable: Dict[str, str]) -> Dict[str, str]:
    """Every SQ on an ensemble drawn at random (seeded) among those that can host it.

    It spreads a program over the system, so every arc may cross the network:
    the harsh case a simulation should exercise."""
    return {spec.name: rng.choice(_candidates(spec, ensembles, unavailable)).name for spec in graph.sqs}


STRATEGIES = {"trivial": trivial_mapping, "random": random_mapping}


def map_graph(graph: Graph, ensembles: List[EnsembleDescription], strategy: str,
              rng: random.Random, unavailable: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """``{sq: ensemble}`` for every SQ of the graph.

    The ensembles are taken in name order, so a mapping does not depend on the
    order in which their joins happened to arrive. ``unavailable`` names
    ensembles that exist but may not host SQs, with why: a pin to one of them
    fails with that reason instead of "has not joined".
    """
    ensembles = sorted(ensembles, key=lambda e: e.name)
    if not ensembles:
        raise MappingError("no ensemble has joined; nothing to map onto")
    try:
        mapper = STRATEGIES[strategy]
    except KeyError:
        raise MappingError("unknown mapping strategy %r (choose from %s)"
                           % (strategy, ", ".join(sorted(STRATEGIES)))) from None
    return mapper(graph, ensembles, rng, unavailable or {})
