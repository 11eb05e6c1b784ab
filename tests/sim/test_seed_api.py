"""The seeds' ensemble and runtime-manager API, driving a simulation by hand."""
from appliance.components import Component, any_of, at_least, where
from appliance.ipc import Message, Recipient, SyncMsg
from appliance.program.loader import load_program
from appliance.program.token import Tag, Token
from appliance.runtime.app import FINISHED, RunOptions
from appliance.sim.ensemble import SimEnsemble, SimRuntimeManager, SimWorld
from appliance.timing import Interval

from .conftest import example_path


def test_components_are_added_found_replaced_and_removed():
    world = SimWorld()
    edge = SimEnsemble(world, "edge", [Component("camera", "camera", {"fps": 30})])
    edge.add_components(Component("gpu", "gpu", {"memory_gb": 8}), Component("camera", "camera", {"fps": 30}))
    assert [c.name for c in edge.components] == ["camera", "gpu"]  # the same camera again: ignored
    edge.add_components(Component("camera", "camera", {"fps": 60}))
    assert [c.name for c in edge.components] == ["camera", "gpu"]  # another camera: replaced in place
    assert edge.find_component("camera").attributes == {"fps": 60}
    assert edge.find_component(where(kind="gpu", memory_gb=at_least(4))).name == "gpu"
    assert edge.find_component(any_of(where(kind="camera", fps=at_least(90)), "lidar")) is None
    edge.remove_component(Component("gpu"))
    assert edge.find_component("gpu") is None
    assert edge.description().component_names() == ["camera"]


def test_a_system_assembled_by_hand_runs_a_program_to_the_end():
    world = SimWorld(seed=2)
    records = []
    rtm = SimRuntimeManager(world, sink=records.append)
    for name in ("left", "right"):
        SimEnsemble(world, name).connect_to_ticktalk_network(rtm.address)
    rtm.enter_steady_state(timeout=50_000)
    assert rtm.members == ["runtime-manager", "left", "right"]
    rtm.instantiate_and_map_graph(load_program(example_path("diamond.py")),
                                  RunOptions(strategy="random", seed=2, duration=200_000))
    rtm.enter_steady_state(timeout=2_000_000)
    assert rtm.app.phase == FINISHED and len(records) == 20
    assert set(rtm.app.mapping.values()) == {"left", "right"}


def test_an_app_without_a_duration_runs_until_torn_down():
    world = SimWorld(seed=1)
    records = []
    rtm = SimRuntimeManager(world, sink=records.append)
    SimEnsemble(world, "edge").connect_to_ticktalk_network(rtm.address)
    rtm.enter_steady_state(timeout=50_000)
    rtm.instantiate_and_map_graph(load_program(example_path("diamond.py")), RunOptions(strategy="trivial"))
    rtm.enter_steady_state(timeout=1_000_000)
    running = len(records)
    assert rtm.app.phase == "running" and running > 50
    rtm.teardown()
    rtm.enter_steady_state(timeout=1_000_000)
    assert rtm.app.phase == FINISHED
    assert len(records) <= running + 1  # the sources stopped: at most one sample was in flight
    assert rtm.app.summary["samples"] == len(records)


def test_a_message_posted_to_the_wrong_process_or_malformed_is_counted_and_the_ensemble_serves_on():
    world = SimWorld(seed=3)
    records = []
    rtm = SimRuntimeManager(world, sink=records.append)
    edge = SimEnsemble(world, "edge")
    edge.connect_to_ticktalk_network(rtm.address)
    rtm.enter_steady_state(timeout=50_000)
    edge.post(Message(SyncMsg.INPUT_TOKEN, Token(1, Interval(0, 10), Tag(0, "x", 0)), Recipient.EXECUTE))
    edge.post(Message(SyncMsg.INPUT_TOKEN, "not a token", Recipient.INPUT_TOKENS))
    edge.post(Message(SyncMsg.INPUT_TOKEN, Token(1, Interval(0, 10), Tag(0, "x", 0)), Recipient.INPUT_TOKENS))
    rtm.enter_steady_state(timeout=1_000)
    status = edge.status()
    assert status["execute"]["counters"]["refused.wrong_type"] == 1
    assert status["input_tokens"]["counters"]["refused.malformed"] == 1
    # the well-formed token was still taken, for an SQ not here
    assert status["input_tokens"]["counters"]["dropped.unknown_sq"] == 1
    rtm.instantiate_and_map_graph(load_program(example_path("diamond.py")), RunOptions(seed=3, duration=200_000))
    rtm.enter_steady_state(timeout=2_000_000)
    assert rtm.app.phase == FINISHED and len(records) == 20
