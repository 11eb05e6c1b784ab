"""``appliance simulate`` with components: --sysfs-root, the writes line, and a bad root."""
import json

from appliance.cli import main

PROGRAM = '''
from appliance import sq, stream, graph, components

@stream(period_ms=100, requires="soc")
def soc(tick):
    return components.read("soc")

@sq(requires="led")
def led(millidegrees):
    components.write("led", 1 if millidegrees > 40000 else 0)

@graph
def main():
    return led(soc())
'''


def _files(tmp_path):
    (tmp_path / "sys/class/thermal/thermal_zone0").mkdir(parents=True)
    (tmp_path / "sys/class/thermal/thermal_zone0/temp").write_text("41000\n")
    (tmp_path / "sys/class/leds/led0").mkdir(parents=True)
    (tmp_path / "sys/class/leds/led0/brightness").write_text("0\n")
    (tmp_path / "prog.py").write_text(PROGRAM)
    (tmp_path / "sys.json").write_text(json.dumps({"ensembles": [
        {"name": "pi", "components": [
            {"name": "soc", "kind": "sensor", "driver": "sysfs:class/thermal/thermal_zone0/temp"},
            {"name": "led", "kind": "actuator", "driver": "sysfs:class/leds/led0/brightness"}]}]}))
    return str(tmp_path / "prog.py"), str(tmp_path / "sys.json")


def test_simulate_reads_and_writes_the_tree_under_sysfs_root_and_says_what_was_written(capsys, tmp_path):
    program, system = _files(tmp_path)
    code = main(["simulate", program, "--system", system, "--sysfs-root", str(tmp_path), "--duration", "0.5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "  component writes led on pi 5 (last 1)\n" in out
    assert (tmp_path / "sys/class/leds/led0/brightness").read_text() == "1"


def test_a_sysfs_root_that_is_not_a_directory_is_one_line(capsys, tmp_path):
    program, system = _files(tmp_path)
    code = main(["simulate", program, "--system", system, "--sysfs-root", str(tmp_path / "nowhere")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == "appliance simulate: error: --sysfs-root %s: not a directory\n" % (tmp_path / "nowhere")



def test_teardown_failing_in_two_ways_counts_both_of_its_errors(capsys, tmp_path):
    program, system = _files(tmp_path)
    source = PROGRAM.replace("return led(soc())", "return led(soc()), relay.options(ensemble='runtime-manager')(soc())")
    (tmp_path / "prog.py").write_text(source + """
@sq
def relay(x):
    return x

def teardown():
    raise RuntimeError("stuck" if components.has("led") else "idle")
""")
    code = main(["simulate", program, "--system", system, "--duration", "0.2"])
    _, err = capsys.readouterr()
    assert code == 2
    lines = [line for line in err.splitlines() if "SQ 'teardown()'" in line]
    assert len(lines) == 2 and all(line.endswith("(1 of the 2 reports of its 2 errors)") for line in lines), err
