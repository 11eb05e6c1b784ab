"""The static mapper: spread the load, keep connected SQs together.

Every SQ goes on an ensemble that can host it (its pin, its queries, the
latency bounds through it). Among those, two aims:

- **Load.** An ensemble's load is the sum of the costs of the SQs it hosts;
  its *share* is its capacity, or, when the SQs' costs add up to more than
  all the ensembles' capacities together, its capacity times that ratio. An
  SQ goes on an ensemble over its share only when none of its candidates has
  room left, and then on the one it fills least (load / capacity).
- **Arcs.** Among the candidates with room, the one where the SQ's arcs to
  the SQs already placed cost least: an arc within one ensemble costs 0, an
  arc between two the cost of their link (``DEFAULT_LINK_COST`` where the
  system file gives none). Ties go to the ensemble it fills least, then to
  the first in name order.

The SQs are placed one by one: from the SQ with the fewest candidates (a
pinned one first), breadth first along the arcs, so an SQ usually comes
right after one it talks to; then up to ``REFINE_PASSES`` passes move single
SQs to a neighbour's ensemble with room wherever that lowers the cost of
their arcs. An SQ weighs only the ensembles of its placed neighbours, the
ensembles cheaply linked to those, and the candidate with the most room
left (a heap per distinct set of candidates), or, when none has room, the one
it fills least (a heap per set and cost), so placing N SQs on E ensembles
with A arcs costs about (N + A) log E, however large E is. Nothing
is random: the same graph and ensembles give the same mapping.
"""
from __future__ import annotations

import heapq
import random
from collections import deque
from typing import Dict, List, Optional, Set, Tuple

from appliance.mapping.candidates import Hosts
from appliance.mapping.problem import Problem

#: What an arc between two ensembles costs when the system gives their link no cost.
DEFAULT_LINK_COST = 1
#: Linked ensembles (cheaper than the default, cheapest first) an SQ weighs beside
#: its neighbours' own.
CHEAP_LINKS = 8
#: Passes that move SQs to a neighbour's ensemble after the first placement.
REFINE_PASSES = 2
#: Slack for sums of float costs.
_EPSILON = 1e-9


def static_placement(problem: Problem, rng: Optional[random.Random] = None) -> List[int]:
    """Each SQ's ensemble index (``rng`` is not used: the static mapper draws nothing)."""
    return _Static(problem).run()


def link_costs(problem: Problem) -> List[Dict[int, float]]:
    """Per ensemble, the cost of its links by the other ensemble's index (both ways;
    where the two ends say different costs, the lower)."""
    table: List[Dict[int, float]] = [{} for _ in problem.ensembles]
    index = problem.candidates.index
    for a, ensemble in enumerate(problem.ensembles):
        for other, link in ensemble.links.items():
            b = index.get(other)
            if b is None or b == a or "cost" not in link:
                continue
            cost = min(link["cost"], table[a].get(b, link["cost"]))
            table[a][b] = table[b][a] = cost
    return table


class _Static:
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        graph = problem.graph
        self.costs = [spec.cost for spec in graph.sqs]
        self.capacity = [e.capacity for e in problem.ensembles]
        ratio = max(1.0, sum(self.costs) / sum(self.capacity))
        #: What each ensemble can still take before it is over its share.
        self.room = [capacity * ratio for capacity in self.capacity]
        self.load = [0.0] * len(problem.ensembles)
        self.link_cost = link_costs(problem)
        self.cheap = [[b for cost, b in sorted((cost, b) for b, cost in row.items()
                                               if cost < DEFAULT_LINK_COST)[:CHEAP_LINKS]]
                      for row in self.link_cost]
        #: Per SQ, the SQs at the other end of its arcs (once per arc).
        self.neighbours: List[List[int]] = [[] for _ in graph.sqs]
        for arc in graph.arcs:
            source, target = problem.position[arc.source], problem.position[arc.target]
            if source != target:
                self.neighbours[source].append(target)
                self.neighbours[target].append(source)
        self.placed = [-1] * len(graph.sqs)
        #: Per set of candidates (by identity), a heap of (-room, ensemble), kept lazily.
        self._heaps: Dict[int, List[Tuple[float, int]]] = {}
        #: Per set of candidates and SQ cost, a heap of (fill with such an SQ, ensemble), kept lazily.
        self._fills: Dict[Tuple[int, float], List[Tuple[float, int]]] = {}

    def run(self) -> List[int]:
        order = self._order()
        for i in order:
            self._put(i, self._choose(i))
        for _ in range(REFINE_PASSES):
            if not self._refine(order):
                break
        return self.placed

    def _order(self) -> List[int]:
        """Breadth first along the arcs: first from every SQ that has one candidate only
        (it goes there whatever comes before it), then each connected part left from its
        most constrained SQ."""
        hosts = self.problem.hosts
        seen = [len(h.order) == 1 for h in hosts]
        order: List[int] = []
        queue = deque(i for i, fixed in enumerate(seen) if fixed)
        for seed in [-1] + sorted(range(len(hosts)), key=lambda i: (len(hosts[i].order), i)):
            if seed >= 0:
                if seen[seed]:
                    continue
                seen[seed] = True
                queue.append(seed)
            while queue:
                i = queue.popleft()
                order.append(i)
                for n in self.neighbours[i]:
                    if not seen[n]:
                        seen[n] = True
                        queue.append(n)
        return order

    def _around(self, i: int) -> Dict[int, int]:
        """The ensembles of SQ ``i``'s placed neighbours, with how many of its arcs go there."""
        around: Dict[int, int] = {}
        for n in self.neighbours[i]:
            e = self.placed[n]
            if e >= 0:
                around[e] = around.get(e, 0) + 1
        return around

    def _arc_cost(self, e: int, around: Dict[int, int]) -> float:
        row = self.link_cost[e]
        return sum(count * row.get(f, DEFAULT_LINK_COST) for f, count in around.items() if f != e)

    def _fits(self, e: int, cost: float) -> bool:
        return self.room[e] >= cost - _EPSILON * max(1.0, cost)

    def _choose(self, i: int) -> int:
        hosts = self.problem.hosts[i]
        allowed = self.problem.bounds.options(i, self.placed)
        if allowed is None and len(hosts.order) == 1:
            return hosts.order[0]
        around = self._around(i)
        options: Set[int]
        if allowed is not None:
            options = allowed
        else:
            members = hosts.members
            options = {f for f in around if f in members}
            for f in around:
                options.update(b for b in self.cheap[f] if b in members)
            roomiest = self._roomiest(hosts)
            options.add(roomiest)
            if not self._fits(roomiest, self.costs[i]):  # no candidate has room: the one it fills least
                options.add(self._least_filled(hosts, self.costs[i]))
        cost = self.costs[i]

        def rank(e: int) -> Tuple[int, float, float, int]:
            fill = (self.load[e] + cost) / self.capacity[e]
            arcs = self._arc_cost(e, around)
            return (0, arcs, fill, e) if self._fits(e, cost) else (1, fill, arcs, e)

        return min(options, key=rank)

    def _roomiest(self, hosts: Hosts) -> int:
        """The candidate with the most room left (the first in name order among equals)."""
        heap = self._heaps.get(id(hosts))
        if heap is None:
            heap = self._heaps[id(hosts)] = [(-self.room[e], e) for e in hosts.order]
            heapq.heapify(heap)
        while True:
            negative, e = heap[0]
            if -negative == self.room[e]:
                return e
            heapq.heapreplace(heap, (-self.room[e], e))  # room only shrinks while placing

    def _least_filled(self, hosts: Hosts, cost: float) -> int:
        """The candidate an SQ of this cost fills least, (load + cost) / capacity (the first in
        name order among equals)."""
        heap = self._fills.get((id(hosts), cost))
        if heap is None:
            heap = self._fills[(id(hosts), cost)] = [((self.load[e] + cost) / self.capacity[e], e)
                                                     for e in hosts.order]
            heapq.heapify(heap)
        while True:
            fill, e = heap[0]
            now = (self.load[e] + cost) / self.capacity[e]
            if fill == now:
                return e
            heapq.heapreplace(heap, (now, e))  # load only grows while placing

    def _put(self, i: int, e: int) -> None:
        cost = self.costs[i]
        if self.placed[i] >= 0:
            self.load[self.placed[i]] -= cost
            self.room[self.placed[i]] += cost
        self.placed[i] = e
        self.load[e] += cost
        self.room[e] -= cost

    def _refine(self, order: List[int]) -> bool:
        """Move single SQs to a neighbour's ensemble with room where their arcs cost less."""
        moved = False
        bounded = self.problem.bounds.on
        for i in order:
            hosts = self.problem.hosts[i]
            if i in bounded or len(hosts.order) == 1:
                continue
            around = self._around(i)
            here = self.placed[i]
            best, lowest = here, self._arc_cost(here, around)
            for f in sorted(around):
                if f != here and f in hosts.members and self._fits(f, self.costs[i]):
                    arcs = self._arc_cost(f, around)
                    if arcs < lowest - _EPSILON:
                        best, lowest = f, arcs
            if best != here:
                self._put(i, best)
                moved = True
        return moved
