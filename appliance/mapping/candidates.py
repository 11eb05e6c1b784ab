"""Which ensembles can host an SQ, and, when none can, why each was turned down.

An SQ may run on an ensemble when it is the one the SQ is pinned to (if it
is pinned) and each of its queries matches some component of the ensemble.
The ensembles are indexed by what their components offer (names, kinds,
attribute names), so a query is checked only against the ensembles that
could match it, and each distinct (pin, queries) pair is worked out once
however many SQs share it.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from appliance.components.query import describe, matches, normalize
from appliance.program.errors import ProgramError
from appliance.program.model import SQSpec
from appliance.system import EnsembleDescription

#: Names an error line lists of one group before it says how many more there are.
LISTED = 5


class MappingError(ProgramError):
    """The graph cannot be placed on the ensembles at hand."""


class Hosts:
    """The ensembles (indices in name order) that can host SQs of one (pin, queries) pair."""

    __slots__ = ("order", "members")

    def __init__(self, order: List[int]) -> None:
        self.order = order
        self.members: Set[int] = set(order)


def names(items: Iterable[str]) -> str:
    """``a, b, c``; past LISTED + 1 names, the first LISTED and how many more."""
    items = list(items)
    if len(items) <= LISTED + 1:
        return ", ".join(items)
    return "%s and %d more" % (", ".join(items[:LISTED]), len(items) - LISTED)


def requirement(queries: List[Any], word: str = "and") -> str:
    """Queries for people: one as describe() says it, several joined by ``word``,
    each in parentheses where its own description has commas."""
    if len(queries) == 1:
        return describe(queries[0])
    return (" %s " % word).join("(%s)" % d if ", " in d and not d.startswith("(") else d
                        for d in (describe(q) for q in queries))


class Candidates:
    """The ensembles a graph may be mapped onto, indexed by their components.

    ``ensembles`` must be in name order: every list of indices this gives is too.
    """

    def __init__(self, ensembles: List[EnsembleDescription]) -> None:
        self.ensembles = ensembles
        self.index: Dict[str, int] = {e.name: i for i, e in enumerate(ensembles)}
        self._by_name: Dict[str, Set[int]] = {}
        self._by_kind: Dict[str, Set[int]] = {}
        self._by_attribute: Dict[str, Set[int]] = {}
        for i, ensemble in enumerate(ensembles):
            for component in ensemble.components:
                self._by_name.setdefault(component.name, set()).add(i)
                self._by_kind.setdefault(component.kind, set()).add(i)
                for key in component.attributes:
                    self._by_attribute.setdefault(key, set()).add(i)
        self._everyone = Hosts(list(range(len(ensembles))))
        self._matching: Dict[str, Set[int]] = {}
        self._hosts: Dict[Tuple[Optional[str], str], Hosts] = {}

    def hosts(self, spec: SQSpec) -> Hosts:
        """Where ``spec`` may run; MappingError (the whole explanation) if nowhere."""
        key = (spec.ensemble, repr(spec.requires))
        found = self._hosts.get(key)
        if found is None:
            found = self._hosts[key] = self._work_out(spec)
        if not found.order:
            raise MappingError(self.explain(spec))
        return found

    def _work_out(self, spec: SQSpec) -> Hosts:
        queries = [normalize(q) for q in spec.requires]
        if not queries and spec.ensemble is None:
            return self._everyone
        matching = [self.matching(query) for query in queries]
        if spec.ensemble is not None:
            pinned = self.index.get(spec.ensemble)
            able = [] if pinned is None else [pinned]
        else:
            able = sorted(min(matching, key=len))
        return Hosts([i for i in able if all(i in found for found in matching)])

    def matching(self, query: Any) -> Set[int]:
        """The ensembles with a component the (normalized) query matches."""
        key = repr(query)
        found = self._matching.get(key)
        if found is None:
            maybe = self._could_match(query)
            indices = range(len(self.ensembles)) if maybe is None else sorted(maybe)
            found = self._matching[key] = {i for i in indices
                                           if any(matches(query, c) for c in self.ensembles[i].components)}
        return found

    def _could_match(self, query: Any) -> Optional[Set[int]]:
        """A superset of the ensembles the query can match (None: any of them)."""
        if "any" in query:
            parts = [self._could_match(part) for part in query["any"]]
            return None if any(p is None for p in parts) else set().union(*parts)
        if "all" in query:
            parts = [p for p in (self._could_match(part) for part in query["all"]) if p is not None]
            return set.intersection(*parts) if parts else None
        if "name" in query:
            return self._by_name.get(query["name"], set())
        if "kind" in query:
            return self._by_kind.get(query["kind"], set())
        return self._by_attribute.get(next(iter(query)), set())

    def explain(self, spec: SQSpec) -> str:
        """One line: the SQ, what it asks, and each ensemble considered with why it
        cannot host the SQ, ensembles grouped by reason (in name order)."""
        if spec.ensemble is not None and spec.ensemble not in self.index:
            return "SQ '%s' is pinned to ensemble '%s', which has not joined (joined: %s)" % (
                spec.name, spec.ensemble, names(e.name for e in self.ensembles))
        queries = [normalize(q) for q in spec.requires]
        groups: Dict[str, List[str]] = OrderedDict()
        for i, ensemble in enumerate(self.ensembles):
            if spec.ensemble is not None and ensemble.name != spec.ensemble:
                reason = "the SQ is pinned to %s" % spec.ensemble
            else:
                missing = [q for q in queries if i not in self.matching(q)]
                reason = "no component matches %s" % requirement(missing, "nor")
            groups.setdefault(reason, []).append(ensemble.name)
        pinned = " and is pinned to ensemble '%s'" % spec.ensemble if spec.ensemble is not None else ""
        return "SQ '%s' requires %s%s; no ensemble can host it: %s" % (
            spec.name, requirement(queries), pinned,
            "; ".join("%s: %s" % (names(group), reason) for reason, group in groups.items()))
