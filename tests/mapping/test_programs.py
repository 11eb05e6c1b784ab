"""Programs placed where they say: requires= on decorators, .options and placement
blocks at call sites (finish_by's SQs included), max_latency; mapped onto system files."""
import json

import pytest

from appliance.mapping import STRATEGIES, map_graph
from appliance.runtime.app import RunOptions
from appliance.sim.harness import SimulationError, simulate, simulated_mapping
from appliance.system import system_from_document

from ..sim.conftest import example_path
from .systems import refusal

PROGRAM = """
from appliance import sq, stream, graph, finish_by, placement, max_latency
from appliance.components import where, at_least, any_of

@stream(period_ms=50, width_ms=10, requires=where(kind="camera"))
def camera(tick):
    return tick // 1000

@sq(requires=any_of("gpu0", where(kind="compute", cores=at_least(4))), cost=2)
def detect(frame):
    return frame % 7

@sq
def fuse(a, b):
    return a + b

@sq
def no_detection():
    return None

@graph
def main():
    left = camera.options(requires="camera_left")()
    right = camera.options(requires="camera_right")()
    a, b = detect(left), detect(right)
    with placement(ensemble="jetson"):
        fused = finish_by(fuse(a, b), deadline_ms=20, otherwise=no_detection, sample=left)
    max_latency(5, left, a)
    return fused
"""


def placement_system():
    with open(example_path("placement.system.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_call_site_placement_holds_for_every_strategy(build, strategy):
    g = build(PROGRAM)
    mapping = map_graph(g, system_from_document(placement_system()), strategy)
    assert mapping["camera"] == "pi-left" and mapping["camera_2"] == "pi-right"  # .options(requires=...)
    assert mapping["detect"] == mapping["detect_2"] == "jetson"  # the only gpu0 / 4-core ensemble
    # fuse, and the gate, Plan B and merge finish_by adds inside the placement block
    inside = [s.name for s in g.sqs if s.name not in ("camera", "camera_2", "detect", "detect_2")]
    assert len(inside) == 4 and all(mapping[name] == "jetson" for name in inside)


def test_a_placement_block_that_no_ensemble_satisfies_is_named(build):
    g = build(PROGRAM.replace('placement(ensemble="jetson")', 'placement(ensemble="pi-left", requires="gpu0")'))
    line = refusal(g, system_from_document(placement_system()))
    assert line == (
        "SQ 'fuse' requires gpu0 and is pinned to ensemble 'pi-left'; no ensemble can host it: "
        "jetson, pi-right: the SQ is pinned to pi-left; pi-left: no component matches gpu0")


def test_a_bound_in_a_program_is_kept_or_named_with_its_line(build):
    doc = placement_system()
    g = build(PROGRAM)
    assert simulated_mapping(g, system_from_document(doc), "static", 0)["detect"] == "jetson"  # 2 ms
    doc["links"][0]["latency_ms"] = 6
    line = PROGRAM.splitlines().index("    max_latency(5, left, a)") + 1
    with pytest.raises(SimulationError) as info:  # what simulate() raises for a system that cannot run the graph
        simulated_mapping(g, system_from_document(doc), "static", 0)
    assert str(info.value) == (
        "max_latency 5 ms on camera -> detect (line %d) cannot be kept: the least latency any placement gives it "
        "is 6 ms (where they can run: camera on pi-left; detect on jetson)" % line)


def test_simulate_puts_sqs_on_the_runtime_managers_ensemble_too(build):
    g = build(PROGRAM)
    mapping = simulated_mapping(g, system_from_document(placement_system()), "trivial", 0)
    assert "runtime-manager" not in mapping.values()  # every SQ here is placed by the program
    free = build("""
from appliance import graph, sq, stream

@stream(period_ms=10)
def a():
    return 1

@graph
def main():
    return a()
""")
    # trivial: the first ensemble in name order; runtime-manager comes before solo
    assert simulated_mapping(free, system_from_document({"ensembles": [{"name": "solo"}]}), "trivial", 0) == {
        "a": "runtime-manager"}


def test_simulate_refuses_an_unknown_strategy_before_anything_runs(build):
    g = build(PROGRAM)
    with pytest.raises(SimulationError, match=r"unknown mapping strategy 'best' \(choose from random, static, "
                                              r"trivial\)"):
        simulate(g, system_from_document(placement_system()), RunOptions(strategy="best", duration=10**5))
