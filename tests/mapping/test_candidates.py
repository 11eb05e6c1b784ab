"""Which ensembles can host an SQ (queries on kinds and attributes, pins), and the one
line that says why none can."""
import pytest

from appliance.mapping import STRATEGIES, MappingError, map_graph

from .systems import ensemble, graph, refusal, sq

CAMERAS = [
    ensemble("cam-left", ("cam0", "camera", {"resolution": 640, "rate_hz": 30, "model": "imx219"})),
    ensemble("cam-right", ("cam1", "camera", {"resolution": 1280, "rate_hz": 60, "model": "imx477"})),
    ensemble("jetson", ("gpu0", "gpu", {"memory_gb": 8}), ("cpu", "compute", {"cores": 6})),
    ensemble("pi", ("cpu", "compute", {"cores": 4}), "thermo"),
]


def hosts(query, pin=None):
    """Every ensemble some strategy puts the SQ on: with one SQ, trivial gives the first
    candidate in name order; the candidates are checked one by one by pinning there."""
    found = []
    for e in CAMERAS:
        try:
            map_graph(graph([sq("x", 0, requires=[query], ensemble=e.name)], []), CAMERAS, "trivial")
        except MappingError:
            continue
        found.append(e.name)
    return found


@pytest.mark.parametrize("query, expected", [
    ("thermo", ["pi"]),
    ({"name": "cpu"}, ["jetson", "pi"]),
    ({"kind": "camera"}, ["cam-left", "cam-right"]),
    ({"kind": "camera", "resolution": {"at_least": 1000}}, ["cam-right"]),
    ({"kind": "camera", "resolution": {"at_most": 640}}, ["cam-left"]),
    ({"rate_hz": {"between": [25, 30]}}, ["cam-left"]),
    ({"rate_hz": {"between": [30, 60]}}, ["cam-left", "cam-right"]),
    ({"model": {"one_of": ["imx477", "ov5647"]}}, ["cam-right"]),
    ({"cores": {"at_least": 5}}, ["jetson"]),
    ({"any": ["thermo", {"kind": "gpu", "memory_gb": {"at_least": 4}}]}, ["jetson", "pi"]),
    ({"all": [{"kind": "compute"}, {"cores": {"at_most": 4}}]}, ["pi"]),
    ({"all": [{"kind": "gpu"}, {"cores": {"at_least": 1}}]}, []),  # one component must hold both
    ({"kind": "camera", "model": "imx219"}, ["cam-left"]),
    ({"memory_gb": "8"}, []),  # equality does not convert
])
def test_a_query_selects_the_ensembles_with_a_matching_component(query, expected):
    assert hosts(query) == expected


def test_each_query_of_a_list_may_match_a_different_component():
    g = graph([sq("x", 0, requires=[{"kind": "gpu"}, {"kind": "compute", "cores": {"at_least": 6}}])], [])
    for strategy in STRATEGIES:
        assert map_graph(g, CAMERAS, strategy) == {"x": "jetson"}


def test_a_pin_is_honoured_by_every_strategy():
    g = graph([sq("x", 0, ensemble="pi"), sq("y", 1, ensemble="cam-right")], [("x", "y")])
    for strategy in STRATEGIES:
        assert map_graph(g, CAMERAS, strategy) == {"x": "pi", "y": "cam-right"}


def test_an_unsatisfiable_query_names_the_sq_the_query_and_why_each_ensemble_cannot():
    g = graph([sq("detect", 0, requires=[{"kind": "gpu", "memory_gb": {"at_least": 16}}])], [])
    assert refusal(g, CAMERAS) == (
        "SQ 'detect' requires kind=gpu, memory_gb>=16; no ensemble can host it: "
        "cam-left, cam-right, jetson, pi: no component matches kind=gpu, memory_gb>=16")


def test_a_pinned_sq_whose_ensemble_lacks_the_component_says_both():
    g = graph([sq("detect", 0, requires=[{"kind": "gpu"}, "thermo"], ensemble="pi")], [])
    assert refusal(g, CAMERAS, "random") == (
        "SQ 'detect' requires kind=gpu and thermo and is pinned to ensemble 'pi'; no ensemble can host it: "
        "cam-left, cam-right, jetson: the SQ is pinned to pi; pi: no component matches kind=gpu")


def test_ensembles_are_grouped_by_reason_and_every_unmet_query_is_named():
    g = graph([sq("fuse", 0, requires=["thermo", {"kind": "gpu", "memory_gb": {"at_least": 4}}])], [])
    assert refusal(g, CAMERAS, "trivial") == (
        "SQ 'fuse' requires thermo and (kind=gpu, memory_gb>=4); no ensemble can host it: "
        "cam-left, cam-right: no component matches thermo nor (kind=gpu, memory_gb>=4); "
        "jetson: no component matches thermo; pi: no component matches kind=gpu, memory_gb>=4")


def test_a_pin_to_an_ensemble_that_is_not_there_lists_those_that_are():
    g = graph([sq("n", 0, ensemble="gateway")], [])
    assert refusal(g, CAMERAS, "static") == ("SQ 'n' is pinned to ensemble 'gateway', which has not joined "
                               "(joined: cam-left, cam-right, jetson, pi)")


def test_a_thousand_ensembles_stay_one_readable_line():
    many = [ensemble("e%04d" % i, "cpu") for i in range(999)] + [ensemble("gpu-box", ("gpu0", "gpu", {"memory_gb": 2}))]
    g = graph([sq("x", 0, requires=[{"kind": "gpu", "memory_gb": {"at_least": 4}}])], [])
    line = refusal(g, many)
    assert len(line) < 200
    assert line == (
        "SQ 'x' requires kind=gpu, memory_gb>=4; no ensemble can host it: "
        "e0000, e0001, e0002, e0003, e0004 and 995 more: no component matches kind=gpu, memory_gb>=4")


def test_the_first_sq_that_cannot_be_placed_is_the_one_named():
    g = graph([sq("a", 0), sq("b", 1, requires=["nothing"]), sq("c", 1, requires=["neither"])],
              [("a", "b"), ("a", "c")])
    with pytest.raises(MappingError, match=r"^SQ 'b' requires nothing; "):
        map_graph(g, CAMERAS)


def test_no_ensembles_and_unknown_strategies_are_errors():
    g = graph([sq("a", 0)], [])
    with pytest.raises(MappingError, match="no ensemble has joined"):
        map_graph(g, [])
    with pytest.raises(MappingError, match=r"unknown mapping strategy 'best' \(choose from random, static, trivial\)"):
        map_graph(g, CAMERAS, "best")
