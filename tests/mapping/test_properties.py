"""Properties of every mapper on generated systems and graphs: every SQ is placed, on an
ensemble that satisfies its queries and its pin, every latency bound is kept, a
failure is a real impossibility, and the static mapper always answers the same."""
import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.components import normalize, unmet
from appliance.mapping import STRATEGIES, MappingError, map_graph
from appliance.program.model import LatencyBound

from .systems import ensemble, graph, sq

QUERIES = ["cam", {"kind": "gpu"}, {"kind": "gpu", "memory_gb": {"at_least": 8}},
           {"cores": {"between": [2, 4]}}, {"any": ["cam", {"kind": "gpu"}]}, {"model": {"one_of": ["x", "y"]}}]
COMPONENTS = [("cam", "camera", {"model": "x"}), ("g", "gpu", {"memory_gb": 4}), ("g", "gpu", {"memory_gb": 16}),
              ("cpu", "compute", {"cores": 2}), ("cpu", "compute", {"cores": 8}), ("m", "", {"model": "y"})]


@st.composite
def problems(draw):
    count = draw(st.integers(1, 6))
    names = ["e%d" % i for i in range(count)]
    system = []
    for name in names:
        parts = draw(st.lists(st.sampled_from(COMPONENTS), max_size=3, unique_by=lambda c: c[0]))
        system.append(ensemble(name, *parts, capacity=draw(st.sampled_from([None, 1, 2, 5]))))
    for a, b in itertools.combinations(names, 2):
        fields = draw(st.sampled_from([None, {}, {"latency": 1000}, {"latency": 3000, "cost": 0.5}, {"cost": 3}]))
        if fields is not None:
            system[names.index(a)].links[b] = dict(fields)
            system[names.index(b)].links[a] = dict(fields)
    size = draw(st.integers(1, 10))
    sqs, arcs = [], []
    for i in range(size):
        sources = draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)) if i else []
        arcs.extend(("q%d" % j, "q%d" % i) for j in sources)
        requires = draw(st.lists(st.sampled_from(QUERIES), max_size=2))
        pin = draw(st.sampled_from([None] * 4 + names + ["missing"]))
        sqs.append(sq("q%d" % i, len(sources), requires=requires, ensemble=pin,
                      cost=draw(st.sampled_from([0.5, 1, 2]))))
    bounds = []
    for _ in range(draw(st.integers(0, 2))):
        path = ["q%d" % draw(st.integers(0, size - 1))]
        while True:  # follow arcs out of the last SQ, as max_latency paths do
            after = [t for s, t in arcs if s == path[-1]]
            if not after or not draw(st.booleans()):
                break
            path.append(draw(st.sampled_from(after)))
        bounds.append((path, draw(st.sampled_from([0, 1000, 4000]))))
    return graph(sqs, arcs, bounds), system, draw(st.integers(0, 2 ** 32))


def hosts_of(spec, system):
    return [e.name for e in system if (spec.ensemble in (None, e.name))
            and not unmet([normalize(q) for q in spec.requires], e.components)]


def path_latency(bound: LatencyBound, mapping, system):
    by_name = {e.name: e for e in system}
    total = 0.0
    for a, b in zip(bound.path, bound.path[1:]):
        if mapping[a] != mapping[b]:
            total += by_name[mapping[a]].links.get(mapping[b], {}).get("latency", float("inf"))
    return total


def keepable(bound, g, system):
    """Brute force: some choice of hosts for the path's SQs keeps the bound."""
    choices = [hosts_of(g.sq(name), system) for name in bound.path]
    return any(path_latency(bound, dict(zip(bound.path, pick)), system) <= bound.limit
               for pick in itertools.product(*choices))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_every_mapping_satisfies_what_the_program_asks(problem):
    g, system, seed = problem
    for strategy in sorted(STRATEGIES):
        try:
            mapping = map_graph(g, system, strategy, random.Random(seed))
        except MappingError as exc:
            unplaceable = [s.name for s in g.sqs if not hosts_of(s, system)]
            if unplaceable:
                assert str(exc).startswith("SQ '%s' " % unplaceable[0])
            elif "cannot all be kept together" in str(exc):  # bounds through one SQ, placed greedily
                assert len({name for b in g.bounds for name in b.path}) < sum(len(b.path) for b in g.bounds)
            else:
                first = next(b for b in g.bounds if not keepable(b, g, system))
                assert str(exc).startswith("max_latency %g ms on %s " % (first.limit / 1000, " -> ".join(first.path)))
            continue
        assert set(mapping) == {s.name for s in g.sqs}
        for spec in g.sqs:
            assert mapping[spec.name] in hosts_of(spec, system)
        for bound in g.bounds:
            assert path_latency(bound, mapping, system) <= bound.limit


@settings(max_examples=150, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_the_static_mapping_depends_on_nothing_but_the_graph_and_the_ensembles(problem, shuffler):
    g, system, seed = problem
    try:
        first = map_graph(g, system, "static", random.Random(seed))
    except MappingError as exc:
        first = str(exc)
    shuffled = list(system)
    shuffler.shuffle(shuffled)
    try:
        again = map_graph(g, shuffled, "static", random.Random(seed + 1))
    except MappingError as exc:
        again = str(exc)
    assert first == again
