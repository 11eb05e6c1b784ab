"""With a manager key, holding the cluster key makes a member, not a manager."""
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.ipc import ExecuteMsg, Message, NetMsg, Recipient
from appliance.program.loader import load_program
from appliance.runtime.app import FINISHED, RunOptions
from appliance.runtime.code import program_to_wire
from appliance.sim.ensemble import SimEnsemble, SimRuntimeManager, SimWorld

from .conftest import example_path

CLUSTER_KEY = b"a cluster key of 32 bytes, yes!!"


def _system(seed=1):
    world = SimWorld(seed=seed, key=CLUSTER_KEY, manager_key=Ed25519PrivateKey.generate())
    records = []
    rtm = SimRuntimeManager(world, sink=records.append)
    members = [SimEnsemble(world, name) for name in ("left", "right")]
    for member in members:
        member.connect_to_ticktalk_network(rtm.address)
    world.run(200_000)
    return world, rtm, members, records


def test_a_run_with_signed_control_deploys_runs_and_tears_down():
    world, rtm, members, records = _system()
    assert all(m.joined for m in members)
    rtm.instantiate_and_map_graph(load_program(example_path("diamond.py")), RunOptions(seed=1, duration=200_000))
    world.run(world.now + 2_000_000)
    assert rtm.app.phase == FINISHED and len(records) == 20
    for member in members:
        assert "refused.unsigned_control" not in member.status()["network"]["counters"]


def test_a_key_holder_posing_as_the_runtime_manager_cannot_ship_code():
    world, rtm, (left, right), _ = _system()
    world.network.detach(rtm.address)  # the impostor takes over the manager's address ...
    # ... holding the cluster key, not the manager's (a machine of its own: its own transport session)
    impostor = SimEnsemble(world, "runtime-manager", boot=1)
    graph = load_program(example_path("diamond.py"))
    code = Message(ExecuteMsg.INSTANTIATE_SQS, ("evil-1", program_to_wire(graph.program), []), Recipient.EXECUTE)
    impostor.post(Message(NetMsg.ADD_ROUTES, {"left": left.address}, Recipient.NETWORK))
    impostor.post(Message(NetMsg.FORWARD, ("left", [code]), Recipient.NETWORK))
    world.run(world.now + 1_000_000)
    status = left.status()
    assert status["network"]["counters"]["refused.unsigned_control"] == 1
    assert status["execute"]["app"] is None  # nothing was deployed
