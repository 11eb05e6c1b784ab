"""Latency bounds (``max_latency``): which placements keep them.

A bound's path is a chain of SQs, each fed by an arc from the one before.
Its latency under a mapping is the sum, over consecutive SQs, of the one-way
latency of the link from the first one's ensemble to the second one's (0 when
both are on one ensemble). A link whose latency is not known (the system file
gives no ``latency_ms`` for it, or there is no link at all) cannot be counted
on: a bounded path never crosses it.

Feasibility is a shortest path through the layers of a path's candidates:
``forward[j][e]`` is the least latency from the path's start to its j-th SQ
placed on ``e``, ``backward[j][e]`` from there to the path's end, so the j-th
SQ may go on ``e`` exactly when ``forward + backward <= limit``. Each step
looks only at an ensemble itself and its links of known latency: linear in
the candidates and their links, never a product of two candidate sets.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Set

from appliance.mapping.candidates import Candidates, Hosts, MappingError, names
from appliance.program.model import Graph, LatencyBound

INFINITE = float("inf")


def ms(ticks: float) -> str:
    return "%g ms" % (ticks / 1000)


class Bounds:
    """The graph's latency bounds over the candidates each SQ has."""

    def __init__(self, graph: Graph, candidates: Candidates, hosts: List[Hosts]) -> None:
        self.graph = graph
        self.ensembles = candidates.ensembles
        self.hosts = hosts
        position = {spec.name: i for i, spec in enumerate(graph.sqs)}
        #: Each bound's path as SQ indices.
        self.paths: List[List[int]] = [[position[name] for name in bound.path] for bound in graph.bounds]
        #: SQ index -> the bounds its path goes through.
        self.on: Dict[int, List[int]] = {}
        for b, path in enumerate(self.paths):
            for i in path:
                self.on.setdefault(i, []).append(b)
        self.latency: List[Dict[int, int]] = [{} for _ in self.ensembles]
        self.back: List[Dict[int, int]] = [{} for _ in self.ensembles]
        if self.paths:
            for a, ensemble in enumerate(self.ensembles):
                for other, link in ensemble.links.items():
                    b = candidates.index.get(other)
                    if b is not None and b != a and "latency" in link:
                        self.latency[a][b] = link["latency"]
                        self.back[b][a] = link["latency"]

    def check(self) -> None:
        """MappingError for the first bound no placement keeps."""
        unplaced = [-1] * len(self.graph.sqs)
        for b, bound in enumerate(self.graph.bounds):
            layers = self._layers(b, unplaced)
            forward = _sweep(layers, self.latency, INFINITE)
            best = min(forward[-1].values(), default=INFINITE)
            if best > bound.limit:
                raise MappingError(self._unkept(bound, layers, best))

    def options(self, i: int, placed: Sequence[int]) -> Optional[Set[int]]:
        """The ensembles SQ ``i`` may go on and every bound through it can still be kept,
        given the SQs ``placed`` so far (-1: not yet); None if no bound goes through it."""
        bounds = self.on.get(i)
        if bounds is None:
            return None
        allowed: Optional[Set[int]] = None
        for b in bounds:
            layers = self._layers(b, placed)
            limit = self.graph.bounds[b].limit
            forward = _sweep(layers, self.latency, limit)
            backward = _sweep(layers[::-1], self.back, limit)[::-1]
            j = self.paths[b].index(i)
            keep = {e for e, t in forward[j].items() if t + backward[j].get(e, INFINITE) <= limit}
            allowed = keep if allowed is None else allowed & keep
        if not allowed:
            spec = self.graph.sqs[i]
            raise MappingError("the latency bounds through SQ '%s' cannot all be kept together: %s" % (
                spec.name, "; ".join(describe(self.graph.bounds[b]) for b in bounds)))
        return allowed

    def _layers(self, b: int, placed: Sequence[int]) -> List[Set[int]]:
        return [{placed[i]} if placed[i] >= 0 else self.hosts[i].members for i in self.paths[b]]

    def _unkept(self, bound: LatencyBound, layers: List[Set[int]], best: float) -> str:
        where = "; ".join("%s on %s" % (name, names(self.ensembles[e].name for e in sorted(layer)))
                          for name, layer in zip(bound.path, layers))
        why = ("the least latency any placement gives it is %s" % ms(best) if best < INFINITE else
               "no placement joins its SQs by links of known latency (a link without latency_ms "
               "cannot be counted on)")
        return "%s cannot be kept: %s (where they can run: %s)" % (describe(bound), why, where)


def describe(bound: LatencyBound) -> str:
    """``max_latency 5 ms on a -> b (line 12)``."""
    line = " (line %d)" % bound.line if bound.line else ""
    return "max_latency %s on %s%s" % (ms(bound.limit), " -> ".join(bound.path), line)


def _sweep(layers: List[Set[int]], latency: List[Dict[int, int]], limit: float) -> List[Dict[int, float]]:
    """For each layer, the least latency from the first layer to each of its ensembles
    (only those within ``limit``): staying on an ensemble costs 0, a link its latency."""
    reached: Dict[int, float] = dict.fromkeys(layers[0], 0)
    out = [reached]
    for allowed in layers[1:]:
        best: Dict[int, float] = {}
        for a, t in reached.items():
            if a in allowed and t < best.get(a, INFINITE):
                best[a] = t
            for b, hop in latency[a].items():
                total = t + hop
                if total <= limit and b in allowed and total < best.get(b, INFINITE):
                    best[b] = total
        out.append(best)
        reached = best
    return out
