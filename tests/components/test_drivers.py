"""Drivers: python: functions, sysfs: files on a fake tree, bridge: refused, and bad
specs rejected when the system file is loaded, naming the file, the entry and why."""
import json
import os

import pytest

from appliance.components import Component
from appliance.components.drivers import DriverEnv, DriverError, Drivers, check_driver, open_driver
from appliance.system import SystemFileError, load_system

from . import fake_drivers

FAKE = "python:tests.components.fake_drivers:"


def env(now=1_234_000, root="/"):
    return DriverEnv("e1", lambda: now, sysfs_root=root)


@pytest.fixture
def tree(tmp_path):
    """A fake sysfs tree under tmp_path/sys: a thermal zone, an LED, a GPIO value, a PWM."""
    files = {"class/thermal/thermal_zone0/temp": "42500\n", "class/thermal/thermal_zone0/type": "cpu-thermal\n",
             "class/leds/led0/brightness": "0\n", "class/gpio/gpio17/value": "1\n",
             "class/pwm/pwmchip0/pwm0/duty_cycle": "0\n"}
    for relative, text in files.items():
        path = tmp_path / "sys" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


# -- python: -----------------------------------------------------------------------------


def test_a_python_driver_is_called_with_its_component_and_the_clock():
    fake_drivers.LOG.clear()
    component = Component("t0", "sensor", {"unit": "C"}, FAKE + "told")
    handle = open_driver(component, DriverEnv("e1", lambda: 5_000_000, sysfs_root="/x"))
    assert handle.read() == 5000
    assert fake_drivers.LOG == [("told", "e1", "t0", "sensor", {"unit": "C"}, False, None, "/x")]


def test_a_python_drivers_handle_keeps_its_state_between_reads():
    handle = Drivers("e1", lambda: 0)(Component("n", "sensor", driver=FAKE + "counter"))
    assert [handle.read() for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize("spec, reason", [
    ("python:tests.components.no_such_module:f",
     "module 'tests.components.no_such_module' does not import: ModuleNotFoundError: "
     "No module named 'tests.components.no_such_module'"),
    (FAKE + "missing", "module 'tests.components.fake_drivers' has no function 'missing'"),
    (FAKE + "NOT_A_FUNCTION", "tests.components.fake_drivers.NOT_A_FUNCTION is a int, not a function"),
    ("python:just_a_module", "a python driver is python:module:function"),
    ("python:bad-module:f", "a python driver is python:module:function"),
    ("serial:/dev/ttyUSB0", "unknown scheme 'serial:' (a driver is python:module:function, "
                            "sysfs:relative/path or bridge:...)"),
    ("thermometer", "'thermometer' is not a driver (a driver is python:module:function"),
    ("sysfs:/sys/class/thermal/thermal_zone0/temp", "must be relative to /sys"),
    ("sysfs:class/../../etc/passwd", "leaves /sys ('..')"),
    ("sysfs:", "a sysfs driver names a file under /sys"),
    ("bridge:uart0/temp", "bridge: drivers need the firmware bridge, which this version does not have yet"),
])
def test_a_spec_that_does_not_resolve_says_why(spec, reason):
    with pytest.raises(DriverError) as caught:
        check_driver(spec)
    assert reason in str(caught.value)


def test_a_module_that_raises_on_import_is_a_reason_too(tmp_path):
    (tmp_path / "explodes.py").write_text("raise RuntimeError('no I2C bus here')\n")
    with pytest.raises(DriverError, match="module 'explodes' does not import: RuntimeError: no I2C bus here"):
        check_driver("python:explodes:f", [str(tmp_path)])


def test_a_driver_whose_function_returns_no_handle_or_raises_does_not_open():
    with pytest.raises(DriverError, match="returned 42, which has neither read"):
        open_driver(Component("x", "sensor", driver=FAKE + "nothing"), env())
    with pytest.raises(OSError, match="no such bus"):
        open_driver(Component("x", "sensor", driver=FAKE + "refuses"), env())
    with pytest.raises(DriverError, match="component 'x' has no driver"):
        open_driver(Component("x", "sensor"), env())


# -- sysfs: ------------------------------------------------------------------------------


def test_sysfs_reads_integers_and_text_from_the_tree_under_its_root(tree):
    root = str(tree)
    zone = open_driver(Component("soc", "sensor", driver="sysfs:class/thermal/thermal_zone0/temp"), env(root=root))
    kind = open_driver(Component("zone", "sensor", driver="sysfs:class/thermal/thermal_zone0/type"), env(root=root))
    assert zone.read() == 42500 and kind.read() == "cpu-thermal"
    (tree / "sys/class/thermal/thermal_zone0/temp").write_text("39000\n")
    assert zone.read() == 39000  # read afresh each time


def test_sysfs_writes_the_values_text_and_a_sensor_is_read_only(tree):
    root = str(tree)
    led = open_driver(Component("led", "actuator", driver="sysfs:class/leds/led0/brightness"), env(root=root))
    led.write(255)
    assert (tree / "sys/class/leds/led0/brightness").read_text() == "255"
    led.write(True)
    assert (tree / "sys/class/leds/led0/brightness").read_text() == "1" and led.read() == 1
    pwm = open_driver(Component("fan", "actuator", driver="sysfs:class/pwm/pwmchip0/pwm0/duty_cycle"), env(root=root))
    pwm.write("500000")
    assert (tree / "sys/class/pwm/pwmchip0/pwm0/duty_cycle").read_text() == "500000"
    with pytest.raises(TypeError, match="a sysfs file takes a number or a string, got dict"):
        pwm.write({"duty": 1})
    button = open_driver(Component("button", "sensor", driver="sysfs:class/gpio/gpio17/value"), env(root=root))
    assert button.read() == 1 and not hasattr(button, "write")


def test_sysfs_refuses_a_link_out_of_the_tree_and_a_missing_file(tree, tmp_path):
    outside = tmp_path / "secret"
    outside.write_text("hunter2")
    os.symlink(str(outside), str(tree / "sys/class/leds/escape"))
    with pytest.raises(DriverError, match="leads out of"):
        open_driver(Component("x", "sensor", driver="sysfs:class/leds/escape"), env(root=str(tree)))
    with pytest.raises(DriverError, match="no file .*thermal_zone9/temp"):
        open_driver(Component("x", "sensor", driver="sysfs:class/thermal/thermal_zone9/temp"), env(root=str(tree)))


def test_a_link_inside_the_tree_is_followed(tree):
    os.symlink("../../class/thermal/thermal_zone0", str(tree / "sys/class/leds/zone"))  # sys/class/leds/zone
    handle = open_driver(Component("x", "sensor", driver="sysfs:class/leds/zone/temp"), env(root=str(tree)))
    assert handle.read() == 42500


# -- system files ------------------------------------------------------------------------


def _system(tmp_path, components):
    path = tmp_path / "sys.json"
    path.write_text(json.dumps({"ensembles": [{"name": "pi"}, {"name": "pump", "components": components}]}))
    return str(path)


@pytest.mark.parametrize("driver, reason", [
    ("python:nope:f", "module 'nope' does not import: ModuleNotFoundError: No module named 'nope'"),
    ("bridge:uart0/valve", "bridge: drivers need the firmware bridge, which this version does not have yet"),
    ("sysfs:../etc/passwd", "sysfs path '../etc/passwd' leaves /sys ('..')"),
    ("gpio:17", "unknown scheme 'gpio:' (a driver is python:module:function, sysfs:relative/path or bridge:...)"),
])
def test_a_system_file_with_a_driver_that_does_not_resolve_is_one_line_naming_file_entry_and_reason(
        tmp_path, driver, reason):
    path = _system(tmp_path, [{"name": "valve", "kind": "actuator", "driver": driver}])
    with pytest.raises(SystemFileError) as caught:
        load_system(path)
    message = str(caught.value)
    assert message.startswith("%s: ensembles[1] 'pump': component 'valve': driver %r: " % (path, driver))
    assert message.endswith(reason) and "\n" not in message


def test_a_python_driver_next_to_the_system_file_is_found(tmp_path):
    (tmp_path / "greenhouse_drivers.py").write_text(
        "class V:\n    def write(self, value):\n        pass\n\ndef valve(component, env):\n    return V()\n")
    path = _system(tmp_path, [{"name": "valve", "kind": "actuator", "driver": "python:greenhouse_drivers:valve"}])
    [_, pump] = load_system(path)
    assert pump.components[0].driver == "python:greenhouse_drivers:valve"
