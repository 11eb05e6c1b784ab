"""Small systems and graphs for the mapper tests, built directly (no program file)."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from appliance.components import Component
from appliance.program.model import Arc, Graph, LatencyBound, ProgramSource, SQSpec
from appliance.system import EnsembleDescription


def ensemble(name: str, *components: Any, capacity: Optional[float] = None,
             links: Optional[Dict[str, Dict[str, float]]] = None) -> EnsembleDescription:
    """An ensemble; components are names, or (name, kind, attributes) triples."""
    parts = [Component(c) if isinstance(c, str) else Component(*c) for c in components]
    resources = {} if capacity is None else {"capacity": capacity}
    return EnsembleDescription(name, "sim:" + name, parts, resources, dict(links or {}))


def link(ensembles: List[EnsembleDescription], a: str, b: str, **fields: float) -> None:
    """A link both ways (``latency`` in µs, ``cost``), as a system file's ``links`` gives it."""
    by_name = {e.name: e for e in ensembles}
    by_name[a].links[b] = dict(fields)
    by_name[b].links[a] = dict(fields)


def sq(name: str, inputs: int = 1, requires: Sequence[Any] = (), ensemble: Optional[str] = None,
       cost: float = 1) -> SQSpec:
    return SQSpec(name, "sq", "f", ["x%d" % i for i in range(inputs)], requires=list(requires), ensemble=ensemble,
                  cost=cost)


def graph(sqs: List[SQSpec], arcs: Sequence[Tuple[str, str]],
          bounds: Sequence[Tuple[Sequence[str], int]] = ()) -> Graph:
    """``arcs`` as (source, target) pairs, each into the target's next free input."""
    used: Dict[str, int] = {}
    out = []
    for source, target in arcs:
        out.append(Arc(source, 0, target, used.get(target, 0)))
        used[target] = used.get(target, 0) + 1
    return Graph("g", ProgramSource("g", "g.py", ""), sqs, out, [],
                 [LatencyBound(tuple(path), limit, 10 + i) for i, (path, limit) in enumerate(bounds)])


def chain(length: int, prefix: str = "s") -> Tuple[List[SQSpec], List[Tuple[str, str]]]:
    names = ["%s%d" % (prefix, i) for i in range(length)]
    return [sq(n, inputs=1 if i else 0) for i, n in enumerate(names)], list(zip(names, names[1:]))


def refusal(g: Graph, ensembles: List[EnsembleDescription], strategy: str = "static") -> str:
    """The MappingError's line when ``g`` cannot be mapped (AssertionError if it can)."""
    from appliance.mapping import MappingError, map_graph

    try:
        mapping = map_graph(g, ensembles, strategy)
    except MappingError as exc:
        return str(exc)
    raise AssertionError("mapped, though it should not: %r" % (mapping,))
