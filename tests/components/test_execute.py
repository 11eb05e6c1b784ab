"""The execute core and its components, message by message: one handle per component and
deployment, opened at first use, closed when the app is removed or the process ends, after
the program's teardown(); what fails there is reported, never raised."""
import pytest

from appliance.components import Component
from appliance.components.access import CURRENT
from appliance.components.drivers import Drivers
from appliance.ipc import ExecuteMsg, ExecutionContext, Message, NetMsg, Recipient, RuntimeMsg
from appliance.program import graphfile
from appliance.runtime.code import program_to_wire
from appliance.runtime.execute import TEARDOWN, ExecuteCore
from appliance.timing import Interval

from . import fake_drivers

FAKE = "python:tests.components.fake_drivers:"

SOURCE = '''
from appliance import sq, graph, components

@sq
def sample(x):
    return components.read("n")

@sq
def act(x):
    components.write("valve", x)
    return x

def teardown():
    components.write("valve", -1)
{extra}
@graph
def main():
    return act(sample(1))
'''


def _core():
    components = [Component("n", "sensor", driver=FAKE + "counter"), Component("valve", "actuator",
                                                                               driver=FAKE + "valve")]
    return ExecuteCore("e1", components, Drivers("e1", lambda: 0))


def _deploy(core, graph, app="app-1"):
    docs = [graphfile.sq_to_document(s) for s in graph.sqs]
    out = core.handle(Message(ExecuteMsg.INSTANTIATE_SQS, (app, program_to_wire(graph.program), docs, 10_000_000),
                              Recipient.EXECUTE), now=0)
    [ready] = [m for o in out for m in o.payload if m.msg_type is RuntimeMsg.SQS_READY]
    assert ready.payload[3] == []


def _run(core, sq, value):
    out = core.handle(Message(ExecuteMsg.EXECUTION_CONTEXT, ExecutionContext(sq, Interval(0, 1), (value,)),
                              Recipient.EXECUTE), now=1)
    return out


def _remove(core, app="app-1"):
    out = core.handle(Message(ExecuteMsg.REMOVE_SQS, app, Recipient.EXECUTE), now=2)
    [report] = out
    assert report.msg_type is NetMsg.REPORT
    return report.payload  # the messages for the runtime manager, in order


@pytest.fixture
def log():
    fake_drivers.LOG.clear()
    yield fake_drivers.LOG
    CURRENT.attached = None


def test_a_handle_is_opened_once_per_deployment_and_closed_at_its_removal_after_teardown(build, log):
    graph = build(SOURCE.format(extra=""))
    core = _core()
    _deploy(core, graph)
    assert log == []  # nothing opened before its first use
    values = [_run(core, "sample", 0)[0].payload[2][0] for _ in range(5)]
    assert values == [1, 2, 3, 4, 5] and log == [("open", "e1", "n")]
    _run(core, "act", 7)
    assert core.status(3)["components"] == {"n": "open", "valve": "open"}
    [removed] = _remove(core)
    assert removed.msg_type is RuntimeMsg.SQS_REMOVED
    assert log == [("open", "e1", "n"), ("open", "e1", "valve"), ("write", "e1", "valve", 7),
                   ("write", "e1", "valve", -1), ("close", "e1", "n"), ("close", "e1", "valve")]
    assert core.status(4)["components"] == {"n": "closed", "valve": "closed"}
    _deploy(core, graph, "app-2")  # the next deployment opens its own handles
    assert _run(core, "sample", 0)[0].payload[2] == (1,)
    assert log[-1] == ("open", "e1", "n")


def test_the_end_of_the_process_runs_teardown_and_closes_the_handles(build, log):
    core = _core()
    _deploy(core, build(SOURCE.format(extra="")))
    _run(core, "sample", 0)
    assert core.handle(Message(ExecuteMsg.END, None, Recipient.EXECUTE), now=5) == []
    assert log[1:] == [("open", "e1", "valve"), ("write", "e1", "valve", -1), ("close", "e1", "n"),
                       ("close", "e1", "valve")]


def test_a_teardown_that_raises_is_reported_ahead_of_the_removal_and_the_handles_still_close(build, log):
    source = SOURCE.format(extra="").replace('components.write("valve", -1)', 'raise RuntimeError("valve stuck")')
    core = _core()
    _deploy(core, build(source))
    _run(core, "sample", 0)
    error, removed = _remove(core)
    app, ensemble, sq, line, text, _ = error.payload
    assert (app, ensemble, sq) == ("app-1", "e1", TEARDOWN)
    assert line.startswith("RuntimeError: valve stuck (prog") and "in teardown" in text
    assert removed.payload[3]["counters"]["sq_errors"] == 1  # counted where the summary adds them up
    assert log[-1] == ("close", "e1", "n")


def test_an_sq_named_teardown_is_an_sq_not_a_hook(build, log):
    source = SOURCE.format(extra="").replace("def teardown():\n    components.write(\"valve\", -1)\n",
                                             "@sq\ndef teardown(x):\n    components.write(\"valve\", -1)\n")
    core = _core()
    _deploy(core, build(source))
    _run(core, "act", 3)
    _remove(core)
    assert ("write", "e1", "valve", -1) not in log


def test_a_failing_read_is_the_sqs_error_naming_component_and_ensemble_and_it_keeps_serving(build, log):
    core = ExecuteCore("e1", [Component("n", "sensor", driver=FAKE + "unplugged")], Drivers("e1", lambda: 0))
    _deploy(core, build(SOURCE.format(extra="")))
    for _ in range(2):
        [report] = _run(core, "sample", 0)
        [error] = report.payload
        line = error.payload[3]
        assert line.startswith("AccessError: components.read('n') on e1: its driver %sunplugged failed: "
                               "OSError: sensor unplugged (prog" % FAKE)
    assert core.counters.get("sq_errors") == 2


def test_a_driver_that_calls_sys_exit_fails_the_read_and_its_close_not_the_process(build, log):
    core = ExecuteCore("e1", [Component("n", "sensor", driver=FAKE + "exits"),
                              Component("valve", "actuator", driver=FAKE + "exits_on_open")], Drivers("e1", lambda: 0))
    _deploy(core, build(SOURCE.format(extra="")))
    [report] = _run(core, "sample", 0)
    assert report.payload[0].payload[3].startswith(
        "AccessError: components.read('n') on e1: its driver %sexits failed: SystemExit: 3 (prog" % FAKE)
    [report] = _run(core, "act", 1)
    assert report.payload[0].payload[3].startswith("AccessError: components.write('valve') on e1: SystemExit: 5")
    teardown, close, removed = _remove(core)  # teardown()'s write fails to open too; the close is reported
    assert teardown.payload[3].startswith("AccessError: components.write('valve') on e1: SystemExit: 5")
    assert close.payload[3] == "component 'n' on e1: its driver's close() failed: SystemExit: 4"
    assert removed.msg_type is RuntimeMsg.SQS_REMOVED and log[-1] == ("close", "e1", "n")


def test_a_unit_test_stands_in_for_the_components_of_an_sq():
    from appliance import components

    readings = iter([20.5, 21.0])
    with components.attached({"t0": lambda: next(readings), "valve": None}, ensemble="bench") as writes:
        assert components.read("t0") == 20.5 and components.read("t0") == 21.0
        components.write("valve", 1)
        assert components.has("valve") and not components.has("fan")
        with pytest.raises(components.AccessError, match=r"components.read\('fan'\) on bench: no component 'fan'"):
            components.read("fan")
    assert writes == [("valve", 1)]
    with pytest.raises(components.AccessError, match="outside an SQ"):
        components.read("t0")  # the block is over: no stand-ins any more
