"""Components on devices: the configuration file's components and sysfs root, the
compute component psutil fills in, the join that carries them, and SQs reading a
fake /sys and writing a fake PWM through a real ensemble's execute process, with the
values the same program gives in simulation."""
import json
import os

import psutil
import pytest

from appliance.components import Component
from appliance.device.config import ConfigError, load_config
from appliance.device.hardware import with_compute
from appliance.device.run import settings_from
from appliance.program.loader import load_program
from appliance.runtime.app import RunOptions
from appliance.sim.harness import simulate
from appliance.system import load_system

PROGRAM = '''
from appliance import sq, stream, graph, components

@stream(period_ms=50, width_ms=10, requires="soc")
def soc(tick):
    components.read("probe")
    return components.read("soc") / 1000

@sq(requires="fan")
def fan(celsius):
    duty = 1000 * int(celsius)
    components.write("fan", duty)
    return duty

def teardown():
    if components.has("fan"):
        components.write("fan", 0)

@graph
def main():
    celsius = soc()
    return celsius, fan(celsius)
'''

#: A python: driver that logs its opening and closing to the file its component names.
PROBE = '''
class Probe:
    def __init__(self, component):
        self.log = component.attributes["log"]
        self.note("open")

    def note(self, what):
        with open(self.log, "a") as handle:
            handle.write(what + "\\n")

    def read(self):
        return 1

    def close(self):
        self.note("close")


def probe(component, env):
    return Probe(component)
'''


@pytest.fixture
def device(tmp_path):
    """A fake sysfs tree, a python driver module and an ensemble configuration naming both."""
    (tmp_path / "sys/class/thermal/thermal_zone0").mkdir(parents=True)
    (tmp_path / "sys/class/thermal/thermal_zone0/temp").write_text("42500\n")
    (tmp_path / "sys/class/pwm/pwmchip0/pwm0").mkdir(parents=True)
    (tmp_path / "sys/class/pwm/pwmchip0/pwm0/duty_cycle").write_text("0\n")
    module = "probe_%s" % os.path.basename(str(tmp_path)).replace("-", "_")  # one module per test
    (tmp_path / (module + ".py")).write_text(PROBE)
    components = [
        {"name": "soc", "kind": "sensor", "attributes": {"unit": "mC"},
         "driver": "sysfs:class/thermal/thermal_zone0/temp"},
        {"name": "fan", "kind": "actuator", "driver": "sysfs:class/pwm/pwmchip0/pwm0/duty_cycle"},
        {"name": "probe", "kind": "sensor", "attributes": {"log": str(tmp_path / "probe.log")},
         "driver": "python:%s:probe" % module},
    ]
    config = tmp_path / "e1.json"
    config.write_text(json.dumps({"name": "e1", "listen": "127.0.0.1:0", "components": components,
                                  "sysfs_root": str(tmp_path)}))
    (tmp_path / "system.json").write_text(json.dumps({"ensembles": [{"name": "e1", "components": components}]}))
    (tmp_path / "prog.py").write_text(PROGRAM)
    return tmp_path


# -- the configuration file --------------------------------------------------------------


def test_a_configuration_lists_components_and_the_sysfs_root(device):
    settings = load_config(str(device / "e1.json"))
    assert [(c.name, c.kind) for c in settings["components"]] == [("soc", "sensor"), ("fan", "actuator"),
                                                                   ("probe", "sensor")]
    assert settings["sysfs_root"] == str(device)


@pytest.mark.parametrize("components, reason", [
    ([{"name": "fan", "kind": "actuator"}, {"name": "fan", "kind": "sensor"}],
     "components[1]: component 'fan' is listed twice"),
    ([{"name": "fan", "kind": "ventilator"}],
     "components[0]: component 'fan': unknown kind 'ventilator' (kinds: sensor, actuator, camera, compute"),
    ([{"name": "fan", "kind": "actuator", "driver": "python:no_such_driver_module:fan"}],
     "components[0]: component 'fan': driver 'python:no_such_driver_module:fan': module 'no_such_driver_module' "
     "does not import: ModuleNotFoundError: No module named 'no_such_driver_module'"),
    ([{"name": "fan", "kind": "actuator", "driver": "bridge:uart0/fan"}],
     "components[0]: component 'fan': driver 'bridge:uart0/fan': bridge: drivers need the firmware bridge, which "
     "this version does not have yet"),
    ([{"name": "fan", "kind": "actuator", "driver": "sysfs:../../etc/shadow"}],
     "components[0]: component 'fan': driver 'sysfs:../../etc/shadow': sysfs path '../../etc/shadow' leaves /sys"),
    ("fan", "key 'components' must be a list, got 'fan'"),
])
def test_a_bad_component_in_a_configuration_is_one_line_naming_file_entry_and_reason(tmp_path, components, reason):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "e1", "components": components}))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    message = str(caught.value)
    assert message.startswith("%s: %s" % (path, reason)) and "\n" not in message


def test_a_sysfs_root_that_is_not_a_directory_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "e1", "sysfs_root": str(tmp_path / "nowhere")}))
    with pytest.raises(ConfigError, match="bad.json: key 'sysfs_root': '.*nowhere' is not a directory"):
        load_config(str(path))


def test_a_relative_sysfs_root_is_taken_from_the_configuration_files_directory(tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "fake" / "sys").mkdir(parents=True)
    path = tmp_path / "etc" / "e1.json"
    path.write_text(json.dumps({"name": "e1", "sysfs_root": "fake"}))
    monkeypatch.chdir("/")  # where a service runs: not where the file is
    assert load_config(str(path))["sysfs_root"] == str(tmp_path / "etc" / "fake")


def test_psutil_fills_in_the_compute_component():
    cores, memory = psutil.cpu_count(logical=True), psutil.virtual_memory().total // 2 ** 20
    [cpu] = with_compute([])
    assert cpu == Component("cpu", "compute", {"cores": cores, "memory_mb": memory})
    sensor = Component("t0", "sensor")
    assert with_compute([sensor]) == [sensor, cpu]
    given = with_compute([Component("soc", "compute", {"cores": 2, "model": "a53"})])
    assert given == [Component("soc", "compute", {"cores": 2, "model": "a53", "memory_mb": memory})]
    full = Component("soc", "compute", {"cores": 2, "memory_mb": 512})
    assert with_compute([full]) == [full]
    taken = Component("cpu", "sensor")  # the name is taken: nothing is added
    assert with_compute([taken]) == [taken]


def test_the_device_settings_carry_the_components_and_where_drivers_are_found(device):
    settings, sock = settings_from({"rtm": "127.0.0.1:9"}, str(device / "e1.json"), hosts_runtime_manager=False,
                                   log_level=0)
    sock.close()
    assert [c.name for c in settings.components] == ["soc", "fan", "probe", "cpu"]
    assert settings.components[-1].attributes["cores"] == psutil.cpu_count(logical=True)
    assert settings.sysfs_root == str(device) and settings.driver_path == (str(device),)


# -- real ensembles ------------------------------------------------------------------------


def test_an_sq_reads_a_fake_sys_on_a_device_as_in_simulation_and_teardown_closes_the_fan(commands, device):
    out = device / "o.jsonl"
    rtm = commands("rtm", "--graph", str(device / "prog.py"), "--listen", "127.0.0.1:0", "--expect", "1",
                   "--duration", "0.5", "--out", str(out))
    member = commands("ensemble", "--config", str(device / "e1.json"), "--rtm", rtm.address())
    code, stdout, stderr = rtm.finish()
    assert code == 0, stderr
    assert member.stop()[0] == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    on_device = sorted((r["sq"], r["value"]) for r in records)
    assert len(records) == 20 and {r["ensemble"] for r in records} == {"e1"}
    assert on_device == [("fan", 42000)] * 10 + [("soc", 42.5)] * 10
    assert (device / "sys/class/pwm/pwmchip0/pwm0/duty_cycle").read_text() == "0"  # teardown() wrote it last
    assert (device / "probe.log").read_text() == "open\nclose\n"  # one handle for the deployment, closed

    os.remove(str(device / "probe.log"))
    simulated = []
    result = simulate(load_program(str(device / "prog.py")), load_system(str(device / "system.json")),
                      RunOptions(seed=3, duration=500_000), sink=simulated.append, sysfs_root=str(device))
    assert sorted((r.sq, r.value) for r in simulated) == on_device
    assert [w.value for w in result.writes] == [42000] * 10 + [0]
    assert (device / "probe.log").read_text() == "open\nclose\n"


def test_the_join_carries_the_configured_components_and_status_shows_them(commands, device):
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    address = rtm.address()
    commands("ensemble", "--config", str(device / "e1.json"), "--rtm", address)
    rtm.line_starting("joined: e1")
    code, stdout, stderr = commands("status", "--rtm", address, "--json").finish()
    assert code == 0, stderr
    answers = json.loads(stdout)
    [e1] = [m for m in answers["runtime_manager"]["members"] if m["name"] == "e1"]
    assert [c["name"] for c in e1["components"]] == ["soc", "fan", "probe", "cpu"]
    [cpu] = [c for c in e1["components"] if c["name"] == "cpu"]  # filled in from what psutil measures
    assert cpu["kind"] == "compute" and cpu["attributes"]["cores"] >= 1 and cpu["attributes"]["memory_mb"] > 0
    assert answers["e1/execute"]["components"] == {"soc": "closed", "fan": "closed", "probe": "closed",
                                                   "cpu": "closed"}
