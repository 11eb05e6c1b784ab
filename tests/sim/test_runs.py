"""Whole runs in simulation: no sample lost, the same seed gives the same bytes, bad
input is contained."""
import gc
import os
import subprocess
import sys

import pytest

from appliance.program.errors import ProgramError
from appliance.system import EnsembleDescription

from .conftest import example_path

FIVE_MS = """
from appliance import graph, sq, stream

@stream(period_ms=5, width_ms=1)
def tick_count(tick):
    return tick // 5000

@sq
def relay(n):
    return n

@graph
def main():
    return relay(tick_count())
"""


def test_a_5ms_stream_runs_for_the_whole_duration_without_losing_a_sample(run_sim, write_program):
    records, result = run_sim(write_program(FIVE_MS), ensembles=2, seconds=10, latency=1000, jitter=900)
    counts = sorted(r.value for r in records)
    assert len(counts) == 2000 and result.summary["samples"] == 2000
    assert counts == list(range(counts[0], counts[0] + 2000))  # contiguous: none skipped, none repeated
    assert result.summary["discarded"] == {} and result.summary["lost"] == {}
    assert gc.get_freeze_count() == 0  # what the run froze for the collector, it gave back


def test_the_same_seed_gives_byte_identical_output_files(tmp_path):
    def run(seed, hash_seed, name):
        out = tmp_path / name
        env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
        subprocess.run(
            [sys.executable, "-m", "appliance", "simulate", example_path("camera_fusion.py"),
             "--system", example_path("camera_fusion.system.json"), "--duration", "1",
             "--latency-ms", "3", "--jitter-ms", "15", "--loss", "0.1", "--duplicate", "0.05",
             "--reorder", "0.05", "--seed", str(seed), "--out", str(out)],
            check=True, capture_output=True, env=env, timeout=120)
        return out.read_bytes()

    first = run(7, 1, "a.jsonl")
    assert first and first == run(7, 2, "b.jsonl")
    assert first != run(8, 1, "c.jsonl")


def test_an_sq_that_raises_is_reported_and_keeps_serving(run_sim, write_program):
    path = write_program("""
from appliance import graph, sq, stream

@stream(period_ms=10)
def n(tick):
    return (tick // 10000) % 4

@sq
def invert(x):
    return 1 / x

@graph
def main():
    return invert(n())
""")
    records, result = run_sim(path, ensembles=2, seconds=1)
    assert result.summary["sq_errors"] == 25 and len(records) == 75
    [error] = result.errors  # the same error 25 times is one distinct error
    assert error["sq"] == "invert" and error["error"].startswith("ZeroDivisionError")
    assert "1 / x" in error["traceback"] and error["input"] == "(0,)"
    assert result.summary["sqs"]["invert"]["errors"] == 25


def test_an_sq_that_no_ensemble_can_host_fails_the_run_with_a_reason(run_sim, write_program):
    from appliance.runtime.app import RunOptions
    from appliance.sim.harness import simulate

    path = write_program("""
from appliance import graph, stream

@stream(period_ms=10, ensemble="gateway")
def n():
    return 1

@graph
def main():
    return n()
""")
    from appliance.program.loader import load_program

    with pytest.raises(ProgramError, match="pinned to ensemble 'gateway', which has not joined"):
        simulate(load_program(path), [EnsembleDescription("edge")], RunOptions(duration=10**6))


def test_a_value_that_cannot_cross_the_network_is_the_sqs_error(run_sim, write_program):
    path = write_program("""
from appliance import graph, sq, stream

@stream(period_ms=10, ensemble="ensemble-1")
def n(tick):
    return {1, 2}

@sq(ensemble="ensemble-2")
def size(s):
    return len(s)

@graph
def main():
    return size(n())
""")
    records, result = run_sim(path, ensembles=2, seconds=0.1)
    assert records == [] and result.summary["sq_errors"] == 10
    assert result.summary["lost"]["unsendable"] == 10
    [error] = result.errors
    assert (error["ensembles"], error["sq"]) == (["ensemble-1"], "n")
    assert error["error"].startswith("unsendable: ") and "set" in error["error"]


def test_an_ensemble_that_vanishes_fails_the_deployment_with_the_reason(write_program):
    from appliance.program.loader import load_program
    from appliance.runtime.app import FAILED, RunOptions
    from appliance.sim.ensemble import SimEnsemble, SimRuntimeManager, SimWorld

    world = SimWorld(seed=1)
    rtm = SimRuntimeManager(world)
    edge = SimEnsemble(world, "edge")
    edge.connect_to_ticktalk_network(rtm.address)
    world.run(100_000)
    assert edge.joined and rtm.members == ["runtime-manager", "edge"]
    world.network.detach(edge.address)  # powered off after joining
    rtm.instantiate_and_map_graph(load_program(write_program(FIVE_MS)), RunOptions(duration=10**6))
    world.run(world.now + RunOptions().deploy_timeout)
    assert rtm.app.phase == FAILED
    assert rtm.app.error.startswith("could not deliver to edge: ")
    assert rtm.app.summary["ran"] is False


LINKED = """
from appliance import finish_by, graph, sq, stream

@stream(period_ms=20, width_ms=2, ensemble="near")
def reading(tick):
    return tick

@sq(ensemble="far")
def check(x):
    return x

@sq(ensemble="near")
def plan_b():
    return None

@graph
def main():
    return finish_by(check(reading()), deadline_ms=10, otherwise=plan_b)
"""


@pytest.mark.parametrize("latency_ms, met", [(3, True), (12, False)])
def test_a_link_the_system_file_gives_a_latency_takes_it(run_sim, write_program, latency_ms, met):
    """check's value crosses the near-far link at least once on its way to the deadline gate
    (wherever the gate is placed): within the 10 ms deadline (from the sample's start) at 3 ms
    a crossing, never at 12, whatever the default latency of the other links."""
    from appliance.system import system_from_document

    system = system_from_document({"ensembles": [{"name": "near"}, {"name": "far"}],
                                   "links": [{"between": ["near", "far"], "latency_ms": latency_ms}]})
    records, result = run_sim(write_program(LINKED), ensembles=system, seconds=0.4, latency=1000)
    gate = result.summary["deadlines"]["deadline_check"]
    assert gate["met"] + gate["missed"] == 20
    assert (gate["met"], gate["missed"]) == ((20, 0) if met else (0, 20))
    assert len(records) == 20
