"""A simulated run from join to teardown: when the window opens, what a refusal does,
what cannot be placed, and systems of many ensembles."""
import pytest

from appliance.ipc import ClientMsg, Message, NetMsg, Recipient, RuntimeMsg
from appliance.net.impairment import Impairment
from appliance.program.errors import ProgramError
from appliance.program.loader import load_program
from appliance.runtime.app import FINISHED, RunOptions
from appliance.runtime.network import CLOCK_PROBES
from appliance.sim.ensemble import SimEnsemble, SimRuntimeManager, SimWorld
from appliance.sim.harness import numbered_ensembles, simulate, skewed_clock
from appliance.system import EnsembleDescription, load_system
from appliance.system.description import MAX_ENSEMBLES

from .conftest import example_path

#: Deploying is one round trip to each ensemble; with 1 ms links, well within this.
DEPLOY_SLACK = 20_000


@pytest.mark.parametrize("latency", [0, 1000, 5000])
def test_the_window_opens_start_delay_after_the_last_join(latency):
    records = []
    result = simulate(load_program(example_path("diamond.py")), numbered_ensembles(3),
                      RunOptions(seed=1, duration=300_000), Impairment(latency=latency), sink=records.append)
    joined, t0 = result.timeline["joined"], result.timeline["t0"]
    # a join is one round trip (plus one per direction to open the transport's channels), then
    # CLOCK_PROBES round trips measure the clock, then one report
    assert joined <= (2 + 4 + 2 * CLOCK_PROBES + 1) * latency
    start_delay = RunOptions().start_delay
    assert joined + start_delay <= t0 <= joined + start_delay + DEPLOY_SLACK + 4 * latency
    assert min(r.start for r in records) >= t0 - 5_000  # the first sample's interval, centred on t0


def test_a_join_refused_for_its_declared_address_leaves_the_runtime_manager_serving():
    world = SimWorld(seed=5, impairment=Impairment(latency=500))
    heard = []
    rtm = SimRuntimeManager(world)
    liar = SimEnsemble(world, "liar", client=lambda e, m: heard.append(m))
    description = liar.description().to_wire()
    description["address"] = "sim:someone-else"  # not where it sends from
    liar.post(Message(NetMsg.JOIN_NETWORK, (rtm.address, description), Recipient.NETWORK))
    honest = SimEnsemble(world, "honest")
    honest.connect_to_ticktalk_network(rtm.address)
    world.run(100_000)
    [answer] = [m for m in heard if m.msg_type is ClientMsg.JOINED]
    assert answer.payload[0] is False and "declares address 'sim:someone-else'" in answer.payload[1]
    assert honest.joined and rtm.members == ["runtime-manager", "honest"]
    assert rtm.status()["network"]["counters"]["refused.join_address"] == 1
    rtm.instantiate_and_map_graph(load_program(example_path("diamond.py")), RunOptions(duration=100_000))
    world.run(world.now + 2_000_000)
    assert rtm.app.phase == FINISHED  # the manager went on serving


def test_an_sq_pinned_to_the_runtime_managers_ensemble_runs_there(write_program):
    path = write_program("""
from appliance import graph, stream

@stream(period_ms=10, ensemble="runtime-manager")
def n():
    return 1

@graph
def main():
    return n()
""")
    result = simulate(load_program(path), numbered_ensembles(2), RunOptions(duration=10**5))
    assert result.mapping == {"n": "runtime-manager"} and result.outputs == 10
    assert result.summary["sqs"]["n"]["ensemble"] == "runtime-manager"


def test_three_hundred_ensembles_join_and_run(run_sim):
    records, result = run_sim(example_path("diamond.py"), ensembles=300, seconds=0.2, latency=1000)
    assert len(records) == 20 and result.summary["lost"] == {}
    rtm_peers = result.ensembles["runtime-manager"]["network"]["transport"]["*"]
    assert rtm_peers["peers"] == 300 and rtm_peers["peers_evicted"] == 0


def test_more_ensembles_than_a_runtime_manager_takes_is_refused_naming_the_limit(write_program):
    too_many = [EnsembleDescription("e%d" % i) for i in range(MAX_ENSEMBLES + 1)]
    with pytest.raises(ProgramError, match="%d ensembles: a runtime manager takes at most %d"
                                           % (MAX_ENSEMBLES + 1, MAX_ENSEMBLES)):
        simulate(load_program(example_path("diamond.py")), too_many, RunOptions(duration=10**5))


def test_a_runtime_manager_refuses_joins_beyond_its_transports_peer_table():
    world = SimWorld(seed=2)
    rtm = SimRuntimeManager(world, max_members=3)  # itself and two more
    members = [SimEnsemble(world, "e%d" % i) for i in range(3)]
    for member in members:
        member.connect_to_ticktalk_network(rtm.address)
    world.run(100_000)
    refused = [m for m in members if m.joined is False]
    assert len(refused) == 1 and refused[0].join_error == "this runtime manager takes at most 3 ensembles"


def test_a_teardown_request_for_an_unknown_app_changes_nothing():
    world = SimWorld(seed=3)
    rtm = SimRuntimeManager(world)
    SimEnsemble(world, "edge").connect_to_ticktalk_network(rtm.address)
    world.run(50_000)
    rtm.instantiate_and_map_graph(load_program(example_path("diamond.py")), RunOptions(duration=300_000))
    world.run(world.now + 100_000)
    rtm.post(Message(RuntimeMsg.TEARDOWN, "main-0", Recipient.RUNTIME_MANAGER))
    world.run(world.now + 2_000_000)
    assert rtm.app.phase == FINISHED and rtm.app.summary["samples"] == 30


def test_each_ensembles_clock_offset_is_measured_at_join_and_a_large_one_warns_at_deploy(write_program):
    skew = 3000
    graph = load_program(example_path("two_sinusoids.py"))
    result = simulate(graph, numbered_ensembles(3), RunOptions(seed=2, duration=100_000), Impairment(latency=700),
                      clock_skew=skew)
    for name, (offset, delay) in result.clocks.items():
        clock = skewed_clock(2, name, skew)
        true_offset = clock.root(result.timeline["joined"]) - result.timeline["joined"]
        assert abs(offset - true_offset) <= delay // 2 + 10  # NTP's bound, and drift over the join
    far = sorted(name for name, (offset, _) in result.clocks.items() if abs(offset) > 5000 // 4)
    hosting = set(result.mapping.values())
    warned = sorted(name for name in far if name in hosting)
    assert [w.split("'")[0].split()[1] for w in result.summary["warnings"]] == warned
    assert all("a quarter of the smallest stream period" in w for w in result.summary["warnings"])


def test_unsynchronised_clocks_change_which_deadlines_are_met():
    """Each ensemble stamps samples with its own clock: a camera whose clock is behind the
    gate's stamps frames that look late there, one ahead stamps frames that look early."""
    graph = load_program(example_path("camera_fusion.py"))
    system = load_system(example_path("camera_fusion.system.json"))
    options = RunOptions(seed=1, duration=1_000_000)
    synced = simulate(graph, system, options, Impairment(latency=2000))
    skewed = simulate(graph, system, options, Impairment(latency=2000), clock_skew=15_000)
    assert synced.summary["deadline_met"] == 20 and synced.summary["deadline_missed"] == 0
    assert skewed.summary["deadline_met"] + skewed.summary["deadline_missed"] == 20
    assert skewed.summary["deadline_missed"] > 0
    assert skewed.summary["warnings"]  # and the deploy said the clocks were too far apart


def test_a_cluster_status_request_gathers_every_members_processes_through_the_runtime_manager():
    world = SimWorld(seed=4, impairment=Impairment(latency=500))
    heard = []
    rtm = SimRuntimeManager(world, client=lambda e, m: heard.append(m))
    for name in ("a", "b"):
        SimEnsemble(world, name).connect_to_ticktalk_network(rtm.address)
    world.run(100_000)
    rtm.post(Message(RuntimeMsg.CLUSTER_STATUS, 77, Recipient.RUNTIME_MANAGER))
    world.run(world.now + 100_000)
    answers = {m.payload[1]: m.payload[2] for m in heard if m.msg_type is ClientMsg.STATUS and m.payload[0] == 77}
    assert set(answers) == {"runtime_manager", "a/input_tokens", "a/execute", "a/network", "b/input_tokens",
                            "b/execute", "b/network"}
    assert answers["a/network"]["joined"] is True and answers["a/network"]["clock_offset"] == 0
    assert [m["name"] for m in answers["runtime_manager"]["members"]] == ["runtime-manager", "a", "b"]
