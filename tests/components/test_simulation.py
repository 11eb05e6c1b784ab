"""Components in simulation: SQs read and write them as on a device; SQs that need a
camera or a valve land where it is; writes are recorded; sensors are seeded functions of
time; and every failure is an SQ error naming the component and the ensemble."""
import pytest

from appliance import components
from appliance.components import AccessError, Component
from appliance.components.drivers import DriverEnv
from appliance.runtime.app import RunOptions
from appliance.sim.drivers import SimulatedSensor
from appliance.sim.ensemble import SimEnsemble, SimRuntimeManager, SimWorld
from appliance.sim.harness import SimulationError, simulate
from appliance.system import EnsembleDescription

from . import fake_drivers

FAKE = "python:tests.components.fake_drivers:"

COUNT_TO_VALVE = '''
from appliance import sq, stream, graph, components

@stream(period_ms=100, width_ms=10, requires="n")
def count(tick):
    return components.read("n")

@sq(requires="valve")
def act(x):
    components.write("valve", x * 10)
    return x * 10

def teardown():
    if components.has("valve"):
        components.write("valve", 0)

@graph
def main():
    return act(count())
'''


@pytest.fixture
def log():
    fake_drivers.LOG.clear()
    return fake_drivers.LOG


def run(graph, ensembles, seed=0, seconds=1.0, **kwargs):
    records = []
    result = simulate(graph, ensembles, RunOptions(seed=seed, duration=int(seconds * 1e6)), sink=records.append,
                      **kwargs)
    assert result.summary["phase"] == "finished", result.summary["error"]
    return sorted(records, key=lambda r: r.start), result


def test_sqs_read_and_write_through_python_drivers_one_handle_per_deployment(build, log):
    ensembles = [EnsembleDescription("a", components=[Component("n", "sensor", driver=FAKE + "counter")]),
                 EnsembleDescription("b", components=[Component("valve", "actuator", driver=FAKE + "valve")])]
    records, result = run(build(COUNT_TO_VALVE), ensembles)
    assert result.mapping == {"count": "a", "act": "b"} and result.summary["sq_errors"] == 0
    assert [r.value for r in records] == [10 * n for n in range(1, 11)]
    assert [w.value for w in result.writes] == [10 * n for n in range(1, 11)] + [0]  # the last by teardown()
    assert {w.ensemble for w in result.writes} == {"b"} and {w.component for w in result.writes} == {"valve"}
    for record, write in zip(records, result.writes):  # each written when its sample's token arrived
        assert record.start < write.at <= record.logged_at
    assert [e for e in log if e[0] != "write"] == [("open", "a", "n"), ("open", "b", "valve"),
                                                  ("close", "a", "n"), ("close", "b", "valve")]
    assert log.index(("write", "b", "valve", 0)) < log.index(("close", "b", "valve"))


def test_each_deployment_opens_its_own_handles(build, log):
    world = SimWorld(seed=2)
    rtm = SimRuntimeManager(world)
    sensor = SimEnsemble(world, "a", [Component("n", "sensor", driver=FAKE + "counter")])
    pump = SimEnsemble(world, "b", [Component("valve", "actuator")])  # simulated: no driver
    for ensemble in (sensor, pump):
        ensemble.connect_to_ticktalk_network(rtm.address)
    world.run(100_000)
    graph = build(COUNT_TO_VALVE)
    for app in ("main-1", "main-2"):
        rtm.instantiate_and_map_graph(graph, RunOptions(duration=300_000))
        rtm.enter_steady_state(2_000_000)
        assert (rtm.app.id, rtm.app.phase) == (app, "finished")
    assert [e for e in log if e[2] == "n"] == [("open", "a", "n"), ("close", "a", "n")] * 2
    values = [w.value for w in pump.writes]
    assert values == [10, 20, 30, 0, 10, 20, 30, 0]  # the counter starts again with the new handle
    assert sensor.writes == [] and len(world.writes) == 8


def test_a_camera_sq_lands_on_the_camera_and_an_actuator_sq_on_the_valve(build):
    graph = build('''
        from appliance import sq, stream, graph, components
        from appliance.components import where

        @stream(period_ms=100, width_ms=10, requires=where(kind="camera"))
        def frame(tick):
            return [tick, components.read("cam")]

        @sq
        def detect(frame):
            return frame[1] > 0.5

        @sq(requires=where(kind="actuator"))
        def sprinkle(seen):
            components.write("valve", 1 if seen else 0)
            return 1 if seen else 0

        @graph
        def main():
            f = frame()
            return f, sprinkle(detect(f))
        ''')
    camera = Component("cam", "camera", {"rate_hz": 10, "period_s": 1})
    ensembles = [EnsembleDescription("gateway"), EnsembleDescription("pi-cam", components=[camera]),
                 EnsembleDescription("jetson", components=[Component("cpu", "compute", {"cores": 6})]),
                 EnsembleDescription("pump", components=[Component("valve", "actuator")])]
    for seed in (0, 1, 2):
        records, result = run(graph, ensembles, seed=seed, seconds=2)
        assert result.mapping["frame"] == "pi-cam" and result.mapping["sprinkle"] == "pump"
        frames = {r.value[0]: r.value[1] for r in records if r.sq == "frame"}
        assert len(frames) == 20
        sensor = SimulatedSensor(camera, DriverEnv("pi-cam", lambda: 0, simulated=True, seed=seed))
        for tick, reading in frames.items():  # the simulated camera is a seeded function of time
            assert reading == sensor.value_at(tick) and 0 <= reading <= 1
        expected = [1 if frames[t] > 0.5 else 0 for t in sorted(frames)]
        assert [w.value for w in result.writes] == expected and len(result.writes) == 20
        assert {w.ensemble for w in result.writes} == {"pump"} and 0 < sum(expected) < 20
        assert [r.value for r in sorted((r for r in records if r.sq == "sprinkle"), key=lambda r: r.start)] \
            == expected


def test_a_simulated_sensor_is_the_same_for_the_same_seed_and_keeps_to_its_range(build):
    graph = build('''
        from appliance import stream, graph, components

        @stream(period_ms=50, requires="t0")
        def temperature(tick):
            return components.read("t0")

        @graph
        def main():
            return temperature()
        ''')
    ensembles = [EnsembleDescription("pi", components=[Component("t0", "sensor", {"min": 15, "max": 35})])]
    first = [r.value for r in run(graph, ensembles, seed=4)[0]]
    again = [r.value for r in run(graph, ensembles, seed=4)[0]]
    other = [r.value for r in run(graph, ensembles, seed=5)[0]]
    assert first == again and first != other and len(first) == 20
    assert all(15 <= v <= 35 for v in first + other) and len(set(first)) == 20


def test_a_sysfs_driver_reads_the_simulations_tree_or_is_simulated_without_one(build, tmp_path):
    zone = tmp_path / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("47250\n")
    graph = build('''
        from appliance import stream, graph, components

        @stream(period_ms=100)
        def soc(tick):
            return components.read("soc") / 1000
        @graph
        def main():
            return soc()
        ''')
    soc = Component("soc", "sensor", {"min": 20000, "max": 80000}, "sysfs:class/thermal/thermal_zone0/temp")
    ensembles = [EnsembleDescription("pi", components=[soc])]
    records, _ = run(graph, ensembles, sysfs_root=str(tmp_path))
    assert [r.value for r in records] == [47.25] * 10
    simulated = [r.value for r in run(graph, ensembles)[0]]
    assert len(set(simulated)) == 10 and all(20 <= v <= 80 for v in simulated)


ERRORS = '''
from appliance import sq, graph, components

@sq(ensemble="e1")
def ghost(x):
    return components.read("ghost")

@sq(ensemble="e1")
def write_a_sensor(x):
    components.write("t0", 1)

@sq(ensemble="e1")
def no_driver(x):
    return components.read("cpu")

@sq(ensemble="e1")
def unplugged(x):
    return components.read("u")

@sq(ensemble="e1")
def refused(x):
    return components.read("r")

@graph
def main():
    return ghost(1), write_a_sensor(1), no_driver(1), unplugged(1), refused(1)
'''


def test_every_failed_read_or_write_is_an_sq_error_naming_the_component_and_the_ensemble(build):
    e1 = EnsembleDescription("e1", components=[
        Component("t0", "sensor"), Component("cpu", "compute", {"cores": 4}),
        Component("u", "sensor", driver=FAKE + "unplugged"), Component("r", "sensor", driver=FAKE + "refuses")])
    _, result = run(build(ERRORS), [e1], seconds=0.1)
    errors = {e["sq"]: e["error"] for e in result.errors}
    assert result.summary["sq_errors"] == 5
    assert errors["ghost"].startswith(
        "AccessError: components.read('ghost') on e1: no component 'ghost' on this ensemble (it has: t0, cpu, u, r)")
    assert errors["write_a_sensor"].startswith(
        "AccessError: components.write('t0') on e1: component 't0' is read-only (its driver has no write())")
    assert errors["no_driver"].startswith(
        "AccessError: components.read('cpu') on e1: component 'cpu' (compute) has no driver, and simulation "
        "simulates only sensors, cameras and actuators")
    assert errors["unplugged"].startswith(
        "AccessError: components.read('u') on e1: its driver %sunplugged failed: OSError: sensor unplugged" % FAKE)
    assert errors["refused"].startswith("AccessError: components.read('r') on e1: OSError: no such bus")
    assert all(line.endswith(")") and "(prog" in line for line in errors.values())  # the program's line


def test_a_teardown_runs_once_on_every_ensemble_hosting_the_app_and_its_exception_is_reported(build):
    graph = build('''
        from appliance import sq, stream, graph, components

        @stream(period_ms=100, ensemble="a")
        def tick_a(tick):
            return 1

        @sq(ensemble="b")
        def on_b(x):
            return x

        def teardown():
            components.write("valve", "closed")
            raise RuntimeError("and then it jammed")

        @graph
        def main():
            return on_b(tick_a())
        ''')
    ensembles = [EnsembleDescription(name, components=[Component("valve", "actuator")]) for name in "abc"]
    records, result = run(graph, ensembles, seconds=0.5)
    assert len(records) == 5
    assert sorted((w.ensemble, w.value) for w in result.writes) == [("a", "closed"), ("b", "closed")]
    [error] = result.errors
    assert error["sq"] == "teardown()" and sorted(error["ensembles"]) == ["a", "b"] and error["reports"] == 2
    assert error["error"].startswith("RuntimeError: and then it jammed (prog")
    assert result.summary["sq_errors"] == 2


def test_a_driver_that_does_not_resolve_fails_the_simulation_before_it_runs(build):
    ensembles = [EnsembleDescription("pi", components=[Component("t0", "sensor", driver="python:nope:f")])]
    with pytest.raises(SimulationError, match="^ensemble 'pi': component 't0': driver 'python:nope:f': module "
                                              "'nope' does not import"):
        simulate(build(COUNT_TO_VALVE), ensembles, RunOptions(duration=100_000))


def test_outside_an_sq_components_are_out_of_reach():
    with pytest.raises(AccessError, match=r"components.read\('t0'\) outside an SQ"):
        components.read("t0")
    assert components.has("t0") is False
