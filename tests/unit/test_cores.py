"""The process cores, driven message by message with a fake clock (no simulator)."""
import logging
import signal

import pytest

from appliance.ipc import (
    ClientMsg,
    ExecuteMsg,
    ExecutionContext,
    Message,
    NetMsg,
    Recipient,
    RuntimeMsg,
    SyncMsg,
    Transmission,
)
from appliance.program import graphfile
from appliance.program.loader import load_program
from appliance.program.model import ProgramSource
from appliance.program.token import EMPTY, Tag, Token
from appliance.runtime import watchdog
from appliance.runtime.app import FAILED, RUNNING, RunOptions
from appliance.runtime.code import program_to_wire
from appliance.runtime.execute import ExecuteCore
from appliance.runtime.manager import RuntimeManagerCore
from appliance.runtime.network import NetworkCore
from appliance.runtime.reports import MAX_ERROR_REPORTS
from appliance.runtime.sync import InputTokenCore
from appliance.runtime.timers import IDLE
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
    out = core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", program_to_wire(graph.program), docs, 10_000_000),
                              Recipient.EXECUTE), now=0)
    [ready] = reports(out, RuntimeMsg.SQS_READY)
    return ready.payload


def test_an_exception_in_user_code_is_reported_and_the_sq_keeps_serving(graph):
    core = ExecuteCore("e1")
    assert _deploy_execute(core, graph) == ("app-1", "e1", Recipient.EXECUTE.value, [])
    fail = core.handle(Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("invert", Interval(0, 1), (0,)),
                               Recipient.EXECUTE), now=5)
    [error] = reports(fail, RuntimeMsg.SQ_ERROR)
    app, ensemble, sq, line, text, inputs = error.payload
    assert (app, ensemble, sq, inputs) == ("app-1", "e1", "invert", "(0,)")
    assert line.startswith("ZeroDivisionError") and "return 1 / x" in text and "prog" in text
    ok = core.handle(Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("invert", Interval(0, 1), (4,)),
                             Recipient.EXECUTE), now=6)
    assert ok == [Message(NetMsg.SEND_TOKENS, ("invert", Interval(0, 1), (0.25,)), Recipient.NETWORK)]
    assert core.counters.get("sq_errors") == 1


RAISES = SOURCE.replace("return 1 / x", "raise WHAT") + """

class Unsayable(Exception):
    def __str__(self):
        raise ValueError("no words")


class Unusual(BaseException):
    pass
"""


@pytest.mark.parametrize("what, line", [
    ("BaseException('base in sq')", "BaseException: base in sq"),  # was: the execute process died of it
    ("Unusual()", "Unusual: "),
    ("Unsayable()", "Unsayable: <exception str() failed>"),  # was: counted refused.malformed, not an SQ error
    ("GeneratorExit()", "GeneratorExit: "),
])
def test_whatever_an_sq_raises_is_its_error_and_the_core_keeps_serving(build, what, line):
    core = ExecuteCore("e1")
    assert _deploy_execute(core, build(RAISES.replace("WHAT", what)))[3] == []
    ctx = Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("invert", Interval(0, 1), (0,)), Recipient.EXECUTE)
    for now in (5, 6):
        [error] = reports(core.handle(ctx, now=now), RuntimeMsg.SQ_ERROR)
        assert error.payload[3].startswith(line)
    assert core.counters.get("sq_errors") == 2 and core.counters.get("refused.malformed") == 0


def test_a_keyboard_interrupt_is_ctrl_c_only_where_sigint_raises_one(build):
    """A simulation's Ctrl-C must stop it; a device's processes ignore SIGINT, so there a
    KeyboardInterrupt can only be an SQ's own, and is its error."""
    core = ExecuteCore("e1")
    _deploy_execute(core, build(RAISES.replace("WHAT", "KeyboardInterrupt()")))
    ctx = Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("invert", Interval(0, 1), (0,)), Recipient.EXECUTE)
    with pytest.raises(KeyboardInterrupt):
        core.handle(ctx, now=5)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        [error] = reports(core.handle(ctx, now=6), RuntimeMsg.SQ_ERROR)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert error.payload[3].startswith("KeyboardInterrupt") and core.counters.get("sq_errors") == 1


@pytest.mark.parametrize("top_level, said", [
    ("raise BaseException('at the top')", "BaseException: at the top"),
    ("class Unsayable(Exception):\n    def __str__(self):\n        raise ValueError\nraise Unsayable()",
     "Unsayable: <exception str() failed>"),
])
def test_a_program_whose_top_level_raises_anything_does_not_load(top_level, said):
    core = ExecuteCore("e1")
    program = program_to_wire(ProgramSource("bad", "bad.py", top_level + "\n"))
    out = core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", program, [], 10_000_000), Recipient.EXECUTE), now=0)
    [ready] = reports(out, RuntimeMsg.SQS_READY)
    assert ready.payload[3] == ["e1: program does not load here: " + said]


def test_error_reports_are_bounded_but_every_error_is_counted(graph):
    core = ExecuteCore("e1")
    _deploy_execute(core, graph)
    ctx = Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("invert", Interval(0, 1), (0,)), Recipient.EXECUTE)
    sent = sum(len(reports(core.handle(ctx, now=i), RuntimeMsg.SQ_ERROR)) for i in range(20))
    assert sent == MAX_ERROR_REPORTS and core.counters.get("sq_errors") == 20


def test_a_program_that_does_not_load_is_reported_with_the_ensemble():
    core = ExecuteCore("e1")
    program = program_to_wire(ProgramSource("bad", "bad.py", "import no_such_module_here\n"))
    out = core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", program, [], 10_000_000), Recipient.EXECUTE), now=0)
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
    assert log.msg_type is RuntimeMsg.LOG_OUTPUT and log.payload[:4] == ["app-1", "a", 1, 20]


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


def test_the_network_core_alone_admits_sq_code_from_nowhere():
    core = NetworkCore("e1", "sim:e1")
    core.handle(Message(NetMsg.JOIN_NETWORK, ("sim:rtm", {"name": "e1"}), Recipient.NETWORK), now=0)
    code = Message(ExecuteMsg.INSTANTIATE_SQS, ("app", {"source": "import os"}, [], 10_000_000), Recipient.EXECUTE)
    routes = Message(NetMsg.ADD_ROUTES, {"e2": "sim:e2"}, Recipient.NETWORK)
    # Even from the runtime manager's address: a UDP source address can be forged.
    assert core.deliver([code, routes], "sim:rtm", now=1) == []
    assert core.counters.get("refused.code_unauthenticated") == 1
    assert core.routes["e2"] == "sim:e2"  # the rest of the transmission is still taken


class Manager:
    """A runtime-manager core with its outputs collected, plus helpers to talk to it."""

    def __init__(self):
        self.records = []
        self.reports = []
        self.core = RuntimeManagerCore("sim:runtime-manager")
        self.now = 0
        self.send(RuntimeMsg.JOIN, EnsembleDescription("runtime-manager", "sim:runtime-manager").to_wire())

    def send(self, kind, payload):
        """What the core answers, but what it tells its client (kept in ``records`` and ``reports``)."""
        out = []
        for message in self.core.handle(Message(kind, payload, Recipient.RUNTIME_MANAGER), self.now):
            if message.msg_type is ClientMsg.OUTPUT:
                self.records.append(message.payload)
            elif message.msg_type is ClientMsg.APP:
                self.reports.append(message.payload)
            elif message.recipient is not Recipient.CLIENT:
                out.append(message)
        return out

    def join(self, name, address=None, components=(), clock=True):
        """Its JOIN's outputs; then, with ``clock``, the member measures its clock, as a member
        that can answer the runtime manager does (only then is it given parts of an app)."""
        out = self.send(RuntimeMsg.JOIN, EnsembleDescription.from_wire(
            {"name": name, "address": address or "sim:" + name, "components": list(components)}).to_wire())
        if clock:
            self.send(RuntimeMsg.MEMBER_CLOCK, (name, 0, 100))
        return out


def _join_result(outputs):
    [reply] = [o for o in outputs if o.msg_type is NetMsg.FORWARD_TO_ADDRESS]
    address, [result] = reply.payload
    accepted, reason, routes, _nonce = result.payload
    return address, (accepted, reason, routes)


def test_a_join_is_accepted_with_the_routing_table():
    m = Manager()
    address, (accepted, reason, routes) = _join_result(m.join("e1"))
    assert accepted and address == "sim:e1"
    assert routes == {"runtime-manager": "sim:runtime-manager", "e1": "sim:e1"}


def test_a_join_refused_again_for_the_same_reason_is_counted_each_time_but_logged_once(caplog):
    m = Manager()
    m.join("e1")
    with caplog.at_level(logging.WARNING, logger=m.core.log.name):
        for _ in range(3):  # the impostor asks again, with backoff, and is refused again
            _, (accepted, _, _) = _join_result(m.join("e1", address="sim:impostor"))
            assert not accepted
        m.join("e1", address="sim:other")  # another address: said too
    assert m.core.counters.get("refused.join") == 4
    said = [r.getMessage().split(" by ")[0] for r in caplog.records]
    assert said == ["refused a join: ensemble name 'e1' is taken"] * 2


def test_a_rejected_join_says_why():
    m = Manager()
    m.join("e1")
    _, (accepted, reason, _) = _join_result(m.join("e1", address="sim:impostor"))
    assert not accepted and "taken by sim:e1" in reason
    _, (accepted, reason, _) = _join_result(m.join("runtime-manager", address="sim:other"))
    assert not accepted and "runtime manager's" in reason
    _, (accepted, reason, _) = _join_result(m.send(RuntimeMsg.JOIN, {"name": "bad name!", "address": "sim:x"}))
    assert not accepted and "not a valid ensemble name" in reason


def test_a_joiner_learns_only_the_runtime_managers_route_and_the_deployment_brings_the_rest(graph):
    m = Manager()
    for name in ("e1", "e2", "e3"):
        _, (accepted, _, routes) = _join_result(m.join(name))
        assert accepted and routes == {"runtime-manager": "sim:runtime-manager", name: "sim:" + name}
    assert m.core.next_deadline() == IDLE  # nothing is sent to the other members
    out = _deploy(m, graph, strategy="trivial")
    [deploy] = out
    assert deploy.payload[0] == "e1"
    net_part = deploy.payload[1][2]
    assert net_part.payload[2] == {"runtime-manager": "sim:runtime-manager", "e1": "sim:e1"}


def test_a_member_whose_clock_was_never_measured_is_given_no_part(graph):
    """Was: one that refused the manager's signed control (the wrong public key) joined, never
    answered a clock probe, was never said "joined", yet was mapped onto; the deploy then
    timed out waiting for it, and so did the next."""
    m = Manager()
    m.join("e1", clock=False)
    m.join("e2")
    out = _deploy(m, graph, strategy="trivial")
    assert [deploy.payload[0] for deploy in out] == ["e2"]
    assert set(m.core.app.mapping.values()) == {"e2"}


def test_an_app_that_cannot_be_placed_is_named_after_its_graph(graph):
    m = Manager()
    m.join("e1", clock=False)  # the only member is not fully joined: nowhere to run
    m.core.members.pop("runtime-manager")
    _deploy(m, graph, strategy="trivial")
    assert m.reports[-1]["app"] == "%s-1" % graph.name and m.reports[-1]["phase"] == "failed"


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
    assert m.core.app.error == ("SQ 'heat' requires thermal_camera; no ensemble can host it: "
                                "e1, runtime-manager: no component matches thermal_camera")
    [report] = m.reports  # the client hears it at once, with the summary of a run that never ran
    assert report["phase"] == FAILED and report["summary"]["ran"] is False


def _running_on_e1(graph):
    """A manager with e1 joined and the graph deployed there, every process ready."""
    m = Manager()
    m.join("e1")
    _deploy(m, graph, strategy="trivial")
    app = m.core.app
    for process in (1, 2, 3):
        m.send(RuntimeMsg.SQS_READY, (app.id, "e1", process, []))
    return m, app


def test_output_records_carry_the_time_they_were_logged(graph):
    m, app = _running_on_e1(graph)
    m.now = 777
    m.send(RuntimeMsg.LOG_OUTPUT, [app.id, "invert", 0, 0.5, 10, 20, "root", "e1"])
    assert [tuple(r) for r in m.records] == [(app.id, "invert", 0, 0.5, 10, 20, "root", "e1", 777)]


def test_an_output_record_of_another_app_is_not_logged_as_this_ones(graph):
    m, app = _running_on_e1(graph)
    m.send(RuntimeMsg.LOG_OUTPUT, ["main-0", "invert", 0, 0.5, 10, 20, "root", "e1"])
    assert m.records == [] and m.core.counters.get("dropped.output_after_run") == 1


def test_the_runtime_manager_takes_no_deployment_or_teardown_from_the_network():
    core = NetworkCore("runtime-manager", "sim:runtime-manager", hosts_runtime_manager=True)
    core.handle(Message(NetMsg.ADD_ROUTES, {"e1": "sim:e1"}, Recipient.NETWORK), now=0)
    for kind in (RuntimeMsg.INSTANTIATE_AND_MAP, RuntimeMsg.TEARDOWN, RuntimeMsg.END):
        assert core.deliver([Message(kind, None, Recipient.RUNTIME_MANAGER)], "sim:e1", now=1) == []
    # Deploying and tearing down are for a client on the manager's own host, never another ensemble.
    assert core.counters.get("refused.client_not_local") == 2 and core.counters.get("refused.not_from_network") == 1
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
    accepted, reason, _, _ = reply.messages[0].payload
    assert not accepted and "declares address 'sim:victim'" in reason


def _deploy_all_three(graph, app):
    """The three process cores of one ensemble, holding ``app``'s part of ``graph``."""
    sync, execute, network = InputTokenCore("e1"), ExecuteCore("e1"), NetworkCore("e1", "sim:e1")
    docs = [graphfile.sq_to_document(s) for s in graph.sqs]
    sync.handle(Message(SyncMsg.INSTANTIATE_SQS, (app, [{"sq": d, "fed": [0] if d["name"] == "invert" else []}
                                                        for d in docs]), Recipient.INPUT_TOKENS), 0)
    execute.handle(Message(ExecuteMsg.INSTANTIATE_SQS, (app, program_to_wire(graph.program), docs, 10_000_000),
                           Recipient.EXECUTE), 0)
    network.handle(Message(NetMsg.INSTANTIATE_SQS, (app, [{"sq": "invert", "destinations": [[]], "logged": [0]}],
                                                     {"runtime-manager": "sim:rtm"}), Recipient.NETWORK), 0)
    return sync, execute, network


REMOVE = {InputTokenCore: SyncMsg.REMOVE_SQS, ExecuteCore: ExecuteMsg.REMOVE_SQS, NetworkCore: NetMsg.REMOVE_SQS}
INSTANTIATE = {InputTokenCore: SyncMsg.INSTANTIATE_SQS, ExecuteCore: ExecuteMsg.INSTANTIATE_SQS,
               NetworkCore: NetMsg.INSTANTIATE_SQS}


def test_a_late_removal_of_an_earlier_app_leaves_the_current_one_alone(graph):
    for core in _deploy_all_three(graph, "main-2"):
        out = core.handle(Message(REMOVE[type(core)], "main-1", core.recipient), 1)
        [removed] = reports(out, RuntimeMsg.SQS_REMOVED)
        assert removed.payload[0] == "main-1" and removed.payload[3] == {"counters": {}, "sqs": {}}
        assert core.app == "main-2"
    sync, execute, network = _deploy_all_three(graph, "main-2")
    token = Message(SyncMsg.INPUT_TOKEN, Token(4, Interval(0, 10), Tag(0, "invert", 0)), Recipient.INPUT_TOKENS)
    sync.handle(Message(SyncMsg.REMOVE_SQS, "main-1", Recipient.INPUT_TOKENS), 1)
    [ctx] = sync.handle(token, 2)  # main-2's SQs still fire ...
    execute.handle(Message(ExecuteMsg.REMOVE_SQS, "main-1", Recipient.EXECUTE), 3)
    [send] = execute.handle(ctx, 4)  # ... run ...
    network.handle(Message(NetMsg.REMOVE_SQS, "main-1", Recipient.NETWORK), 5)
    [log] = network.handle(send, 6)[0].messages  # ... and their outputs are logged, with their app
    assert log.payload[:4] == ["main-2", "invert", 0, 0.25]


def test_a_late_deploy_of_an_app_already_removed_here_is_refused(graph):
    deploys = {InputTokenCore: ("main-1", []), ExecuteCore: ("main-1", program_to_wire(graph.program), [], 10_000_000),
               NetworkCore: ("main-1", [], {})}
    for core in _deploy_all_three(graph, "main-1"):
        core.handle(Message(REMOVE[type(core)], "main-1", core.recipient), 1)
        out = core.handle(Message(INSTANTIATE[type(core)], deploys[type(core)], core.recipient), 2)
        [ready] = reports(out, RuntimeMsg.SQS_READY)
        assert ready.payload[3] == ["e1: app main-1 was already removed here"] and core.app is None


def test_a_removal_that_arrives_before_its_deploy_retires_the_app(graph):
    core = InputTokenCore("e1")
    core.handle(Message(SyncMsg.REMOVE_SQS, "main-1", Recipient.INPUT_TOKENS), 0)
    out = core.handle(Message(SyncMsg.INSTANTIATE_SQS, ("main-1", []), Recipient.INPUT_TOKENS), 1)
    assert reports(out, RuntimeMsg.SQS_READY)[0].payload[3] == ["e1: app main-1 was already removed here"]


@pytest.mark.parametrize("limit", [0, -5, 1.5, "10", 10 ** 19])  # 10**19: no beat could carry it, it broke the watchdog
def test_a_deployment_with_a_bad_time_limit_fails_naming_it(graph, limit):
    core = ExecuteCore("e1")
    docs = [graphfile.sq_to_document(s) for s in graph.sqs]
    out = core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", program_to_wire(graph.program), docs, limit),
                              Recipient.EXECUTE), now=0)
    [ready] = reports(out, RuntimeMsg.SQS_READY)
    assert ready.payload[3] == ["e1: its sq_time_limit must be an int of µs from 1 to 100000000000000, got %r"
                                % (limit,)]
    assert core.sqs == {} and core.app is None


def test_a_program_whose_top_level_does_not_end_is_stopped_and_its_deployment_fails():
    core = ExecuteCore("e1")
    program = program_to_wire(ProgramSource("stuck", "stuck.py", "import time\nwhile True:\n    time.sleep(1)\n"))
    with watchdog.Watchdog():
        out = core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", program, [], 200_000), Recipient.EXECUTE),
                          now=0)
    [ready] = reports(out, RuntimeMsg.SQS_READY)
    assert ready.payload[3] == ["e1: program does not load here: TimeLimitExceeded: ran for more than 0.2 s (the "
                                "app's sq_time_limit) and was stopped"]
    assert core.app is None and watchdog.RUNNING.exe is None


def test_an_sq_stopped_over_its_time_limit_says_so_in_status_and_runs_no_more(tmp_path):
    from appliance.cli.status import describe

    path = tmp_path / "stuck.py"
    path.write_text("from appliance import graph, sq, stream\n\n@stream(period_ms=10)\ndef pulse(tick):\n"
                    "    return 1\n\n@sq\ndef spin(x):\n    while True:\n        pass\n\n"
                    "@graph\ndef main():\n    return spin(pulse())\n")
    graph = load_program(str(path))
    core = ExecuteCore("e1")
    docs = [graphfile.sq_to_document(s) for s in graph.sqs if s.name == "spin"]
    core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, ("app-1", program_to_wire(graph.program), docs, 100_000),
                        Recipient.EXECUTE), now=0)
    context = Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext("spin", Interval(0, 10), (1,), None),
                      Recipient.EXECUTE)
    with watchdog.Watchdog():
        [error] = reports(core.handle(context, 1), RuntimeMsg.SQ_ERROR)
    line = error.payload[3]
    assert line.startswith("TimeLimitExceeded: ran for more than 0.1 s") and line.endswith("(stuck.py:9)")
    assert core.handle(context, 2) == []  # not called again
    status = core.status(3)
    assert status["sqs"]["spin"] == {"executions": 1, "errors": 1, "stopped": True}
    answers = {"runtime_manager": {"ensemble": "runtime-manager", "members": [], "app": {
        "app": "app-1", "phase": "running", "error": "", "summary": {"sqs": {"spin": {"ensemble": "e1"}}}}},
        "e1/execute": status}
    [row] = [line for line in describe(answers) if line.strip().startswith("spin ")]
    assert row.split()[:4] == ["spin", "e1", "1", "1"] and row.endswith("stopped: a firing ran over the time limit")


def test_status_names_the_processes_that_did_not_answer():
    """Was: a member's process whose answer was lost (one too large for the queue it is relayed
    through) was left out of the table without a word (the command's warning: test_ensembles)."""
    from appliance.cli.status import describe, unanswered

    manager = {"ensemble": "runtime-manager", "app": None, "members": [
        {"name": "runtime-manager", "address": "127.0.0.1:8225", "clock_offset": 0, "clock_delay": 0},
        {"name": "e1", "address": "127.0.0.1:8226", "clock_offset": 10, "clock_delay": 50}]}
    answers = {"runtime_manager": manager, "input_tokens": {}, "execute": {}, "network": {},
               "e1/input_tokens": {}, "e1/execute": {}}
    assert unanswered(answers) == ["e1/network"]
    assert describe(answers)[-1] == "  %-32s no answer" % "e1/network"
