import importlib.util
import os

import pytest

from appliance.ipc.codec import encode
from appliance.net.impairment import Impairment
from appliance.program.loader import load_program
from appliance.runtime.app import RunOptions
from appliance.sim.harness import numbered_ensembles, simulate

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def example_path(name: str) -> str:
    return os.path.join(EXAMPLES, name)


def example_module(name: str):
    """The example's module, for its helper functions (the test computes expected values with them)."""
    spec = importlib.util.spec_from_file_location("example_" + name[:-3], example_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_sim():
    """``run_sim(graph_or_path, ensembles=3 | [descriptions], seconds=1, seed=0, **link)`` -> (records, result)."""

    def run(target, ensembles=3, seconds=1.0, seed=0, strategy="random", **link):
        graph = load_program(target) if isinstance(target, str) else target
        if isinstance(ensembles, int):
            ensembles = numbered_ensembles(ensembles)
        records = []
        result = simulate(graph, ensembles, RunOptions(strategy=strategy, seed=seed, duration=int(seconds * 1e6)),
                          Impairment(**link), sink=records.append)
        assert result.summary["phase"] == "finished", result.summary["error"]
        return records, result

    return run


def longest_bytes(limit: int) -> int:
    """The length of the longest bytes value whose encoding as one firing's outputs is at most
    ``limit`` bytes, by the codec itself."""
    length = limit
    while len(encode((b"x" * length,))) > limit:
        length -= 1
    return length
