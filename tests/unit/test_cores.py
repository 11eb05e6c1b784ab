"""The process cores, driven message by message with a fake clock (no simulator)."""
import pytest

from appliance.ipc import ExecuteMsg, ExecutionContext, Message, NetMsg, Recipient, RuntimeMsg, SyncMsg, Transmission
from appliance.program import graphfile
from appliance.program.model import ProgramSource
from appliance.program.token import EMPTY, Tag, Token
from appliance.runtime.app import FAILED, RUNNING, RunOptions
from appliance.runtime.code import program_to_wire
from appliance.runtime.execute import ExecuteCore
from appliance.runtime.manager import RuntimeManagerCore
from appliance.runtime.network import NetworkCore
from appliance.runtime.reports import MAX_ERROR_REPORTS
from appliance.runtime.sync import InputTokenCore
from appliance.system import EnsembleDescription
from appliance.timing import Interval

SOURCE = '''
from appliance import sq, stream, graph

@stream(period_ms=10)
def src(tick):
    return tick

@sq
def invert(x):
    return 1 / x

@graph
def main():
    return invert(src())
'''


def reports(outputs, kind):
    """Messages of ``kind`` inside the REPORT wrappers among ``outputs``."""
    return [m for o in outputs if isinstance(o, Message) and o.msg_type is NetMsg.REPORT
            for m in o.payload if m.msg_type is kind]


@pytest.fixture
def graph(build):
    return build(SOURCE)


def test_a_token_for_an_unknown_sq_or_port_is_counted_and_dropped():
    core = InputTokenCore("e1")
    out = core.handle(Message(SyncMsg.INPUT_TOKEN, Token(1, Interval(0, 1), Tag(0, "ghost", 0)),
                              Recipient.INPUT_TOKENS), now=0)
    assert out == [] and core.counters.get("dropped.unknown_sq") == 1


def test_a_malformed_payload_is_refused_and_the_core_keeps_serving():
    core = InputTokenCore("e1")
    assert core.handle(Message(SyncMsg.INPUT_TOKEN, ["not", "a", "token"], Recipient.INPUT_TOKENS), 0) == []
    assert core.handle(Message(SyncMsg.START_SQS, 42, Recipient.INPUT_TOKENS), 0) == []
    assert core.counters.get("refused.malformed") == 2
    assert core.handle(Message(ExecuteMsg.END, None, Recipient.INPUT_TOKENS), 0) == []
    assert core.counters.get("refused.wrong_type") == 1


def _deploy_execute(core, graph):
    docs = [graphfile.sq_to_document(s) for s in graph.sqs]
    out = core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", program_to_wire(graph.program), docs),
                              Recipient.EXECUTE), now=0)
    [ready] = reports(out, RuntimeMsg.SQS_READY)
    return ready.payload


def test_an_exception_in_user_code_is_reported_and_the_sq_keeps_serving(graph):
    core = ExecuteCore("e1")
    assert _deploy_execute(core, graph) == ("app-1", "e1", Recipient.EXECUTE.value, [])
    fail = core.handle(Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("invert", Interval(0, 1), (0,)),
                               Recipient.EXECUTE), now=5)
    [error] = reports(fail, RuntimeMsg.SQ_ERROR)
    app, ensemble, sq, line, text = error.payload
    assert (app, ensemble, sq) == ("app-1", "e1", "invert")
    assert line.startswith("ZeroDivisionError") and "return 1 / x" in text and "prog" in text
    ok = core.handle(Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("invert", Interval(0, 1), (4,)),
                             Recipient.EXECUTE), now=6)
    assert ok == [Message(NetMsg.SEND_TOKENS, ("invert", Interval(0, 1), (0.25,)), Recipient.NETWORK)]
    assert core.counters.get("sq_errors") == 1


def test_error_reports_are_bounded_but_every_error_is_counted(graph):
    core = ExecuteCore("e1")
    _deploy_execute(core, graph)
    ctx = Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("invert", Interval(0, 1), (0,)), Recipient.EXECUTE)
    sent = sum(len(reports(core.handle(ctx, now=i), RuntimeMsg.SQ_ERROR)) for i in range(20))
    assert sent == MAX_ERROR_REPORTS and core.counters.get("sq_errors") == 20


def test_a_program_that_does_not_load_is_reported_with_the_ensemble():
    core = ExecuteCore("e1")
    program = program_to_wire(ProgramSource("bad", "bad.py", "import no_such_module_here\n"))
    out = core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", program, []), Recipient.EXECUTE), now=0)
    [ready] = reports(out, RuntimeMsg.SQS_READY)
    assert "e1: program does not load here: ModuleNotFoundError" in ready.payload[3][0]


def test_the_network_core_forwards_locally_and_remotely_and_logs_outputs():
    core = NetworkCore("e1", "sim:e1")
    core.handle(Message(NetMsg.INSTANTIATE_SQS, ("app-1", [
        {"sq": "a", "destinations": [[["e1", "b", 0], ["e2", "c", 1]], []], "logged": [1]},
    ], {"e2": "sim:e2", "runtime-manager": "sim:rtm"}), Recipient.NETWORK), now=0)
    out = core.handle(Message(NetMsg.SEND_TOKENS, ("a", Interval(0, 5), (10, 20)), Recipient.NETWORK), now=1)
    local = [o for o in out if isinstance(o, Message)]
    remote = {o.address: o for o in out if isinstance(o, Transmission)}
    assert local == [Message(SyncMsg.INPUT_TOKEN, Token(10, Interval(0, 5), Tag(0, "b", 0)), Recipient.INPUT_TOKENS)]
    assert remote["sim:e2"].messages[0].payload == Token(10, Interval(0, 5), Tag(0, "c", 1))
    assert not remote["sim:e2"].reliable
    log = remote["sim:rtm"].messages[0]
    assert log.msg_type is RuntimeMsg.LOG_OUTPUT and log.payload[:3] == ["a", 1, 20]


@pytest.mark.parametrize("logged", [[0], []], ids=["logged", "one-local-arc"])
def test_empty_outputs_send_nothing_and_values_go_on(logged):
    core = NetworkCore("e1", "sim:e1")
    core.handle(Message(NetMsg.INSTANTIATE_SQS, ("app-1", [
        {"sq": "a", "destinations": [[["e1", "b", 0]]], "logged": logged}], {"runtime-manager": "sim:rtm"}),
        Recipient.NETWORK), now=0)
    assert core.handle(Message(NetMsg.SEND_TOKENS, ("a", Interval(0, 5), (EMPTY,)), Recipient.NETWORK), 1) == []
    out = core.handle(Message(NetMsg.SEND_TOKENS, ("a", Interval(0, 5), (7,)), Recipient.NETWORK), 2)
    assert out[0] == Message(SyncMsg.INPUT_TOKEN, Token(7, Interval(0, 5), Tag(0, "b", 0)), Recipient.INPUT_TOKENS)
    assert len(out) == 1 + len(logged)  # the token, and the output record when logged


def test_the_network_core_admits_control_messages_only_from_the_runtime_manager():
    core = NetworkCore("e1", "sim:e1")
    core.handle(Message(NetMsg.JOIN_NETWORK, ("sim:rtm", {"name": "e1"}), Recipient.NETWORK), now=0)
    deploy = Message(SyncMsg.INSTANTIATE_SQS, ("app", []), Recipient.INPUT_TOKENS)
    assert core.deliver([deploy], "sim:stranger", now=1) == []
    assert core.counters.get("refused.control_not_from_runtime_manager") == 1
    assert core.deliver([deploy], "sim:rtm", now=1) == [deploy]
    end = Message(SyncMsg.END, None, Recipient.INPUT_TOKENS)
    assert core.deliver([end], "sim:rtm", now=1) == []
    assert core.counters.get("refused.not_from_network") == 1
    token = Message(SyncMsg.INPUT_TOKEN, Token(1, Interval(0, 1), Tag(0, "x", 0)), Recipient.INPUT_TOKENS)
    assert core.deliver([token], "sim:e7", now=2) == [token]  # data may come from any peer


@pytest.mark.parametrize("code_from_network", [False, True])
def test_sq_code_is_admitted_from_the_network_only_when_the_shell_vouches_for_its_transport(code_from_network):
    core = NetworkCore("e1", "sim:e1", code_from_network=code_from_network)
    core.handle(Message(NetMsg.JOIN_NETWORK, ("sim:rtm", {"name": "e1"}), Recipient.NETWORK), now=0)
    code = Message(ExecuteMsg.INSTANTIATE_SQS, ("app", {"source": "import os"}, []), Recipient.EXECUTE)
    routes = Message(NetMsg.ADD_ROUTES, {"e2": "sim:e2"}, Recipient.NETWORK)
    # Even from the runtime manager's address: a UDP source address can be forged.
    assert core.deliver([code, routes], "sim:rtm", now=1) == ([code] if code_from_network else [])
    assert core.counters.get("refused.code_unauthenticated") == (0 if code_from_network else 1)
    assert core.routes["e2"] == "sim:e2"  # the rest of the transmission is still taken


class Manager:
    """A runtime-manager core with its outputs collected, plus helpers to talk to it."""

    def __init__(self):
        self.records = []
        self.core = RuntimeManagerCore("sim:runtime-manager", self.records.append)
        self.now = 0
        self.send(RuntimeMsg.JOIN, EnsembleDescription("runtime-manager", "sim:runtime-manager").to_wire())

    def send(self, kind, payload):
        return self.core.handle(Message(kind, payload, Recipient.RUNTIME_MANAGER), self.now)

    def join(self, name, address=None, components=()):
        return self.send(RuntimeMsg.JOIN, EnsembleDescription.from_wire(
            {"name": name, "address": address or "sim:" + name, "components": list(components)}).to_wire())


def _join_result(outputs):
    [reply] = [o for o in outputs if o.msg_type is NetMsg.FORWARD_TO_ADDRESS]
    address, [result] = reply.payload
    return address, result.payload


def test_a_join_is_accepted_with_the_routing_table():
    m = Manager()
    address, (accepted, reason, routes) = _join_result(m.join("e1"))
    assert accepted and address == "sim:e1"
    assert routes == {"runtime-manager": "sim:runtime-manager", "e1": "sim:e1"}


def test_a_rejected_join_says_why():
    m = Manager()
    m.join("e1")
    _, (accepted, reason, _) = _join_result(m.join("e1", address="sim:impostor"))
    assert not accepted and "taken by sim:e1" in reason
    _, (accepted, reason, _) = _join_result(m.join("runtime-manager", address="sim:other"))
    assert not accepted and "runtime manager's" in reason
    _, (accepted, reason, _) = _join_result(m.send(RuntimeMsg.JOIN, {"name": "bad name!", "address": "sim:x"}))
    assert not accepted and "not a valid ensemble name" in reason


def test_routes_of_a_join_burst_reach_the_other_members_in_one_message_each():
    m = Manager()
    for name in ("e1", "e2", "e3"):
        m.join(name)
    m.now = 10**6
    out = m.core.on_timer(m.now)
    sent = {o.payload[0]: o.payload[1][0].payload for o in out}
    assert sent == {"e1": {"e2": "sim:e2", "e3": "sim:e3"}, "e2": {"e1": "sim:e1", "e3": "sim:e3"},
                    "e3": {"e1": "sim:e1", "e2": "sim:e2"}}


def _deploy(m, graph, **options):
    return m.send(RuntimeMsg.INSTANTIATE_AND_MAP, (graphfile.to_document(graph), RunOptions(**options).to_wire()))


def test_the_sources_start_only_after_every_process_acknowledges(graph):
    m = Manager()
    m.join("e1")
    out = _deploy(m, graph, strategy="trivial", duration=10**6)
    [deploy] = out
    assert deploy.payload[0] == "e1"
    assert [x.msg_type for x in deploy.payload[1]] == [SyncMsg.INSTANTIATE_SQS, ExecuteMsg.INSTANTIATE_SQS,
                                                      NetMsg.INSTANTIATE_SQS]
    app = m.core.app
    for process in (Recipient.INPUT_TOKENS, Recipient.EXECUTE):
        assert m.send(RuntimeMsg.SQS_READY, (app.id, "e1", process.value, [])) == []
    [start] = m.send(RuntimeMsg.SQS_READY, (app.id, "e1", Recipient.NETWORK.value, []))
    [[sq, window]] = start.payload[1][0].payload[1]
    assert start.payload[1][0].msg_type is SyncMsg.START_SQS and sq == "src"
    assert window == Interval(m.now + RunOptions().start_delay, m.now + RunOptions().start_delay + 10**6)
    assert app.phase == RUNNING


def test_a_deployment_error_fails_the_app_and_removes_what_was_deployed(graph):
    m = Manager()
    m.join("e1")
    _deploy(m, graph, strategy="trivial")
    app = m.core.app
    m.send(RuntimeMsg.SQS_READY, (app.id, "e1", 1, []))
    m.send(RuntimeMsg.SQS_READY, (app.id, "e1", 2, ["e1: program does not load here: ImportError: numpy"]))
    out = m.send(RuntimeMsg.SQS_READY, (app.id, "e1", 3, []))
    assert [x.msg_type for x in out[0].payload[1]] == [SyncMsg.REMOVE_SQS, ExecuteMsg.REMOVE_SQS, NetMsg.REMOVE_SQS]
    for process in (1, 2, 3):
        m.send(RuntimeMsg.SQS_REMOVED, (app.id, "e1", process, {"counters": {}}))
    assert app.phase == FAILED and "ImportError: numpy" in app.error


def test_an_unsatisfiable_requirement_fails_before_anything_is_deployed(build):
    g = build('''
from appliance import sq, stream, graph

@stream(period_ms=10, requires=["thermal_camera"])
def heat():
    return 1

@graph
def main():
    return heat()
''')
    m = Manager()
    m.join("e1", components=["camera"])
    assert _deploy(m, g) == []
    assert m.core.app.phase == FAILED
    assert m.core.app.error == "SQ 'heat' requires thermal_camera; no ensemble has thermal_camera"


def test_output_records_carry_the_time_they_were_logged(graph):
    m = Manager()
    m.join("e1")
    _deploy(m, graph, strategy="trivial")
    app = m.core.app
    for process in (1, 2, 3):
        m.send(RuntimeMsg.SQS_READY, (app.id, "e1", process, []))
    m.now = 777
    m.send(RuntimeMsg.LOG_OUTPUT, ["invert", 0, 0.5, 10, 20, "root", "e1"])
    assert [tuple(r) for r in m.records] == [("invert", 0, 0.5, 10, 20, "root", "e1", 777)]


def test_the_runtime_manager_takes_no_deployment_or_teardown_from_the_network():
    core = NetworkCore("runtime-manager", "sim:runtime-manager", hosts_runtime_manager=True)
    core.handle(Message(NetMsg.ADD_ROUTES, {"e1": "sim:e1"}, Recipient.NETWORK), now=0)
    for kind in (RuntimeMsg.INSTANTIATE_AND_MAP, RuntimeMsg.TEARDOWN, RuntimeMsg.END):
        assert core.deliver([Message(kind, None, Recipient.RUNTIME_MANAGER)], "sim:e1", now=1) == []
    assert core.counters.get("refused.not_from_network") == 3
    report = Message(RuntimeMsg.SQS_READY, ("app", "e1", 1, []), Recipient.RUNTIME_MANAGER)
    assert core.deliver([report], "sim:e1", now=1) == [report]
    assert core.deliver([report], "sim:stranger", now=1) == []
    assert core.counters.get("refused.unknown_sender") == 1


def test_a_join_must_come_from_the_address_it_declares():
    core = NetworkCore("runtime-manager", "sim:runtime-manager", hosts_runtime_manager=True)
    honest = Message(RuntimeMsg.JOIN, {"name": "e1", "address": "sim:e1"}, Recipient.RUNTIME_MANAGER)
    assert core.deliver([honest], "sim:e1", now=0) == [honest]
    forged = Message(RuntimeMsg.JOIN, {"name": "e2", "address": "sim:victim"}, Recipient.RUNTIME_MANAGER)
    [reply] = core.deliver([forged], "sim:attacker", now=0)
    assert isinstance(reply, Transmission) and reply.address == "sim:attacker"
    accepted, reason, _ = reply.messages[0].payload
    assert not accepted and "declares address 'sim:victim'" in reason
