"""Latency bounds (max_latency): only placements that keep them, and one line when none does."""
import random

import pytest

from appliance.mapping import STRATEGIES, map_graph

from .systems import ensemble, graph, link, refusal, sq


def latency(g, mapping, system, path):
    by_name = {e.name: e for e in system}
    total = 0
    for a, b in zip(path, path[1:]):
        if mapping[a] != mapping[b]:
            total += by_name[mapping[a]].links[mapping[b]]["latency"]
    return total


def _cameras():
    """A camera SQ on 'eye' (the only camera), a detector that needs a GPU (two boxes
    have one), a sink anywhere. eye-slow: 9 ms; eye-fast: 2 ms."""
    system = [ensemble("eye", "camera", capacity=1), ensemble("gpu-slow", "gpu", capacity=1),
              ensemble("gpu-fast", "gpu", capacity=1), ensemble("spare", capacity=1)]
    link(system, "eye", "gpu-slow", latency=9000, cost=0.1)  # cheap, but slow
    link(system, "eye", "gpu-fast", latency=2000)
    g = graph([sq("cam", 0, requires=["camera"]), sq("detect", 1, requires=["gpu"]), sq("sink", 1)],
              [("cam", "detect"), ("detect", "sink")], bounds=[(("cam", "detect"), 5000)])
    return g, system


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_keeps_a_bound_it_can(strategy):
    g, system = _cameras()
    for seed in range(10):
        mapping = map_graph(g, system, strategy, random.Random(seed))
        assert mapping["detect"] == "gpu-fast"
        assert latency(g, mapping, system, ["cam", "detect"]) == 2000


def test_without_the_bound_static_takes_the_cheap_link():
    g, system = _cameras()
    g.bounds = []
    assert map_graph(g, system)["detect"] == "gpu-slow"


def test_a_bound_is_kept_by_placing_the_path_on_one_ensemble():
    system = [ensemble("a", "camera", "gpu", capacity=1), ensemble("b", "gpu", capacity=5)]
    # No link has a known latency: the only way to keep 1 ms is cam and detect together,
    # though that puts a over its capacity while b has room.
    g = graph([sq("cam", 0, requires=["camera"]), sq("detect", 1, requires=["gpu"])], [("cam", "detect")],
              bounds=[(("cam", "detect"), 1000)])
    for strategy in STRATEGIES:
        assert map_graph(g, system, strategy) == {"cam": "a", "detect": "a"}


def test_a_longer_path_adds_the_latencies_of_its_hops():
    system = [ensemble(n, n, capacity=1) for n in ("a", "b", "c")]
    link(system, "a", "b", latency=2000)
    link(system, "b", "c", latency=2000)
    link(system, "a", "c", latency=5000)
    g = graph([sq("x", 0, requires=["a"]), sq("y", 1), sq("z", 1, requires=["c"])], [("x", "y"), ("y", "z")],
              bounds=[(("x", "y", "z"), 4000)])
    for strategy in STRATEGIES:
        mapping = map_graph(g, system, strategy, random.Random(1))
        assert mapping == {"x": "a", "y": "b", "z": "c"}  # a -> b -> c: 4 ms; via a or c: 5 ms
    g.bounds[0] = g.bounds[0].__class__(("x", "y", "z"), 3999, 10)
    assert refusal(g, system) == (
        "max_latency 3.999 ms on x -> y -> z (line 10) cannot be kept: the least latency any placement gives it "
        "is 4 ms (where they can run: x on a; y on a, b, c; z on c)")


def test_a_link_without_a_known_latency_cannot_be_counted_on():
    g, system = _cameras()
    del system[2].links["eye"]["latency"], system[0].links["gpu-fast"]["latency"]
    assert refusal(g, system, "trivial") == (
        "max_latency 5 ms on cam -> detect (line 10) cannot be kept: the least latency any placement gives it "
        "is 9 ms (where they can run: cam on eye; detect on gpu-fast, gpu-slow)")
    del system[1].links["eye"]["latency"], system[0].links["gpu-slow"]["latency"]
    assert refusal(g, system, "random") == (
        "max_latency 5 ms on cam -> detect (line 10) cannot be kept: no placement joins its SQs by links of "
        "known latency (a link without latency_ms cannot be counted on) (where they can run: cam on eye; "
        "detect on gpu-fast, gpu-slow)")


def test_bounds_that_share_an_sq_are_kept_together():
    system = [ensemble(n, n, capacity=3) for n in ("a", "b", "c", "d")]
    link(system, "a", "b", latency=1000)
    link(system, "b", "c", latency=1000)
    link(system, "a", "d", latency=1000)
    g = graph([sq("x", 0, requires=["a"]), sq("y", 1, requires=[{"any": ["b", "d"]}]), sq("z", 1, requires=["c"])],
              [("x", "y"), ("y", "z")], bounds=[(("x", "y"), 1000), (("y", "z"), 1000)])
    # y on d keeps the first bound and breaks the second (no link d-c): only b keeps both.
    for strategy in STRATEGIES:
        for seed in range(5):
            assert map_graph(g, system, strategy, random.Random(seed))["y"] == "b"
