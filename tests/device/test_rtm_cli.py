"""The ``rtm`` and ``deploy`` commands at their edges: programs and outputs too large for
the way they travel, the name a configuration file gives, what a tailing reader of --out
sees, each phase said once, and the runtime manager called by its name."""
import json
import socket
import subprocess
import sys

import pytest

from appliance.device.client import MAX_REQUEST_BYTES

from ..sim.conftest import example_path
from ..sim.test_values import SURROGATE
from ..sim.test_watchdog import STUCK


def _too_large_program(tmp_path):
    """The diamond with a string constant that makes its source larger than a deployment carries."""
    path = tmp_path / "bulky.py"
    with open(example_path("diamond.py"), encoding="utf-8") as handle:
        source = handle.read()
    path.write_text(source + "\nPADDING = %r\n" % ("x" * (MAX_REQUEST_BYTES + 1024)), encoding="utf-8")
    return str(path)


BIG_OUTPUT = '''"""Every output a string of 3 MiB: more than one firing may send."""
from appliance import graph, sq, stream


@stream(period_ms=100)
def counter(tick):
    return tick // 100_000


@sq
def blow_up(n):
    return "x" * (3 * 1024 * 1024)


@graph
def main():
    return blow_up(counter())
'''


def _stderr_line(stderr):
    lines = [line for line in stderr.splitlines() if line.startswith("appliance ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_deploy_refuses_a_program_too_large_to_carry_in_one_line_naming_it_and_the_limit(commands, tmp_path):
    program = _too_large_program(tmp_path)
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    code, stdout, stderr = commands("deploy", program, "--rtm", rtm.address()).finish()
    assert code == 2, stderr
    line = _stderr_line(stderr)
    assert line.startswith("appliance deploy: error: %s is too large to deploy: its deployment is " % program)
    assert line.endswith(" bytes and the runtime manager takes %d at most" % MAX_REQUEST_BYTES)
    assert stdout == ""
    assert rtm.stop()[0] == 0


def test_rtm_refuses_a_graph_too_large_to_carry_before_it_starts(commands, tmp_path):
    program = _too_large_program(tmp_path)
    code, stdout, stderr = commands("rtm", "--graph", program, "--listen", "127.0.0.1:0", "--expect", "0").finish()
    assert code == 2, stderr
    line = _stderr_line(stderr)
    assert line.startswith("appliance rtm: error: %s is too large to deploy: " % program)
    assert line.endswith(" the runtime manager takes %d at most" % MAX_REQUEST_BYTES)
    assert stdout == ""  # nothing started


def test_the_name_in_the_configuration_file_names_the_runtime_manager(commands, tmp_path):
    config = tmp_path / "rtm.json"
    config.write_text(json.dumps({"name": "mgr-x", "listen": "127.0.0.1:0"}))
    rtm = commands("rtm", "--wait", "--config", str(config))
    assert rtm.line_starting("").startswith("runtime manager mgr-x at 127.0.0.1:")
    assert rtm.stop()[0] == 0


def test_without_a_name_anywhere_the_runtime_manager_is_runtime_manager(commands, tmp_path):
    config = tmp_path / "rtm.json"
    config.write_text(json.dumps({"listen": "127.0.0.1:0"}))
    rtm = commands("rtm", "--wait", "--config", str(config))
    assert rtm.line_starting("").startswith("runtime manager runtime-manager at 127.0.0.1:")
    assert rtm.stop()[0] == 0


def test_the_outputs_of_a_finished_app_are_in_the_out_file_while_rtm_still_runs(commands, tmp_path):
    out = tmp_path / "outputs.jsonl"
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0", "--out", str(out))
    code, _, stderr = commands("deploy", example_path("diamond.py"), "--rtm", rtm.address(),
                               "--duration", "0.3").finish()
    assert code == 0, stderr
    rtm.line_starting("app main-1: finished")
    assert rtm.process.poll() is None  # still serving
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 30  # 0.3 s of one output every 10 ms
    assert {r["app"] for r in records} == {"main-1"}
    assert rtm.stop()[0] == 0


def test_each_phase_of_an_app_is_said_once_though_a_new_client_hears_it_again(commands):
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    address = rtm.address()
    for app in ("main-1", "main-2"):  # the second deploy subscribes: the manager tells it of main-1 again
        code, _, stderr = commands("deploy", example_path("diamond.py"), "--rtm", address,
                                   "--duration", "0.2").finish()
        assert code == 0, stderr
        rtm.line_starting("app %s: finished" % app)
    code, stdout, _ = rtm.stop()
    assert code == 0
    phases = [line for line in stdout.splitlines() if line.startswith("app ")]
    assert phases == ["app %s: %s" % (app, phase) for app in ("main-1", "main-2")
                      for phase in ("deploying", "running", "stopping", "finished")]


def test_an_output_over_what_one_firing_may_send_is_its_sqs_error_and_the_run_fails(commands, tmp_path):
    program = tmp_path / "big_output.py"
    program.write_text(BIG_OUTPUT)
    out = tmp_path / "outputs.jsonl"
    code, stdout, stderr = commands("rtm", "--graph", str(program), "--listen", "127.0.0.1:0", "--expect", "0",
                                    "--duration", "0.3", "--out", str(out)).finish()
    assert code == 2, stderr
    row = next(line for line in stdout.splitlines() if line.startswith("  blow_up "))
    assert row.split()[-5:] == ["3", "3", "lost", "unsendable", "3"], row  # executions, errors, what it lost
    assert "\n  lost             unsendable 3\n" in stdout and "\n  SQ errors        3\n" in stdout
    assert ("appliance rtm: error: SQ 'blow_up' on runtime-manager: unsendable: its outputs are more than the "
            "262144 bytes (256 KiB) one firing may send, encoded  (3 times)\n") in stderr
    assert out.read_text() == ""


def test_deploy_names_the_runtime_manager_that_does_not_answer(commands):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never read: no answer, no ICMP
        silent.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        code, _, stderr = commands("deploy", example_path("diamond.py"), "--rtm", address).finish()
    assert code == 2
    line = _stderr_line(stderr)
    assert line.startswith("appliance deploy: error: no answer from the runtime manager at %s: " % address), line
    assert "ensemble" not in line


@pytest.mark.parametrize("argv, line", [
    (["status", "--rtm", "192.0.2.1:8225"], "appliance status: error: 192.0.2.1:8225 is not an address of this host"),
    (["deploy", "PROGRAM", "--rtm", "192.0.2.1:8225"], "appliance deploy: error: 192.0.2.1:8225 is not an address "
                                                       "of this host"),
    (["status", "--cluster-key", "/nonexistent.key"], "appliance status: error: --cluster-key: /nonexistent.key: "),
    (["deploy", "PROGRAM", "--cluster-key", "/nonexistent.key"], "appliance deploy: error: --cluster-key: "
                                                                 "/nonexistent.key: "),
])
def test_a_client_commands_bad_address_or_key_is_one_line_naming_it(commands, argv, line):
    argv = [example_path("diamond.py") if a == "PROGRAM" else a for a in argv]
    code, _, stderr = commands(*argv).finish()
    assert code == 2 and _stderr_line(stderr).startswith(line) and "Traceback" not in stderr, stderr


def test_an_app_without_a_duration_runs_until_teardown_removes_it(commands):
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    address = rtm.address()
    code, _, stderr = commands("teardown", "--rtm", address).finish()
    assert code == 2 and _stderr_line(stderr) == "appliance teardown: error: no app is running on the runtime " \
                                                 "manager at %s" % address
    code, stdout, stderr = commands("deploy", example_path("diamond.py"), "--rtm", address).finish()
    assert code == 0 and stdout.startswith("app main-1 running"), stderr
    rtm.line_starting("app main-1: running")
    code, stdout, stderr = commands("teardown", "--rtm", address).finish()
    assert code == 0, stderr
    outputs = int(stdout.split("(")[1].split()[0])
    assert stdout.startswith("app main-1: finished (") and outputs >= 0
    rtm.line_starting("app main-1: finished")
    status = json.loads(commands("status", "--rtm", address, "--json").finish()[1])
    assert status["runtime_manager"]["app"]["outputs"] == outputs  # what it said is what the manager logged
    code, _, stderr = commands("teardown", "--rtm", address).finish()
    assert code == 2 and "(app main-1 finished)" in stderr
    assert rtm.stop()[0] == 0


def test_commands_that_come_and_go_leave_the_rtm_command_hearing_every_app(commands, tmp_path):
    # Each command used to take a place among the manager's 8 clients and keep it after it
    # ended: the ninth pushed out rtm's own subscription, which then heard nothing more.
    out = tmp_path / "outputs.jsonl"
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0", "--out", str(out))
    address = rtm.address()
    for _ in range(9):
        code, _, stderr = commands("status", "--rtm", address).finish()
        assert code == 0, stderr
    code, _, stderr = commands("deploy", example_path("diamond.py"), "--rtm", address, "--duration", "0.3").finish()
    assert code == 0, stderr
    rtm.line_starting("app main-1: finished")
    assert len(out.read_text().splitlines()) == 30
    code, stdout, stderr = commands("status", "--rtm", address, "--json").finish()
    assert code == 0, stderr
    network = json.loads(stdout)["network"]
    assert len(network["clients"]) == 1  # rtm's own: the commands that ended unsubscribed
    assert network["counters"].get("dropped.send_failed", 0) == 0
    assert rtm.stop()[0] == 0


def test_a_firing_that_does_not_end_on_a_device_is_stopped_and_the_run_ends(commands, tmp_path):
    """The execute process's watchdog, as the simulator's (tests/sim/test_watchdog.py). Its SQs
    wait meanwhile: the run is long enough (3 s) for the stuck firing to be stopped (within
    1 s and 1.25 limits) and the others' queued firings to run before the teardown."""
    program = tmp_path / "stuck.py"
    source = STUCK.replace("{body}", "while True:\n            pass")
    program.write_text(source)
    line = source.splitlines().index("        while True:") + 1
    out = tmp_path / "outputs.jsonl"
    code, stdout, stderr = commands("rtm", "--graph", str(program), "--listen", "127.0.0.1:0", "--expect", "0",
                                    "--duration", "3", "--sq-time-limit", "0.2", "--out", str(out)).finish()
    assert code == 2 and "app main-1: finished" in stdout, stdout + stderr
    assert "\n  lost             over_time_limit 3\n" in stdout
    assert ("SQ 'stuck' on runtime-manager: TimeLimitExceeded: ran for more than 0.2 s (the app's "
            "sq_time_limit) and was stopped; it is not called again in this app (stuck.py:%d)" % line) in stderr
    values = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["value"] for r in values if r["sq"] == "other") == [2] * 5


def test_a_string_the_wire_cannot_carry_is_its_sqs_error_on_a_device_and_no_process_dies(commands, tmp_path):
    program = tmp_path / "text.py"  # was: the execute process died encoding it (exit 1)
    program.write_text(SURROGATE.replace("ensemble-1", "runtime-manager").replace("{consumer}", "runtime-manager"))
    code, stdout, stderr = commands("rtm", "--graph", str(program), "--listen", "127.0.0.1:0", "--expect", "0",
                                    "--duration", "0.2").finish()
    assert code == 2 and "app main-1: finished" in stdout, stdout + stderr
    assert "\n  lost             unsendable 3\n" in stdout
    assert ("SQ 'text' on runtime-manager: unsendable: its output cannot be sent to another SQ: "
            "UnicodeEncodeError: ") in stderr and "died" not in stderr


def test_rtm_wait_says_the_sq_errors_of_each_app_as_it_ends(commands, tmp_path):
    """Was: `app main-1: finished` and nothing else, however often its SQs failed."""
    program = tmp_path / "fails.py"
    program.write_text("from appliance import graph, sq, stream\n\n"
                       "@stream(period_ms=20, count=4)\ndef sample(tick):\n    return tick\n\n"
                       "@sq\ndef halve(x):\n    return 1 / 0\n\n"
                       "@graph\ndef main():\n    return halve(sample())\n")
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    address = rtm.address()
    code, _, stderr = commands("deploy", str(program), "--rtm", address, "--duration", "0.2").finish()
    assert code == 0, stderr
    rtm.line_starting("app main-1: finished")
    line = rtm.stderr_line_containing("SQ 'halve'")
    assert line == ("appliance rtm: error: SQ 'halve' on runtime-manager: ZeroDivisionError: division by zero "
                    "(fails.py:9)  (4 times)"), line
    assert rtm.stop()[0] == 0


def test_rtm_wait_refuses_the_flags_of_a_run_it_would_ignore():
    """Was: --expect 2 --duration 3 --join-timeout 5 taken without a word, and not used."""
    process = subprocess.run([sys.executable, "-m", "appliance", "rtm", "--wait", "--listen", "127.0.0.1:0",
                              "--expect", "2", "--duration", "3", "--sq-time-limit", "1"],
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert process.stderr == ("appliance rtm: error: --expect, --duration, --sq-time-limit: only with --graph "
                              "(each deployment brings its own: appliance deploy)\n")


def test_a_runtime_manager_behind_an_address_of_another_host_serves_its_commands(commands, tmp_path):
    """Was, with --advertise a NAT's address (the --help example): started, then "10.0.0.1:8225 is
    not an address of this host ...: a command talks to the runtime manager on its own host",
    exit 2, since rtm talked to its own tree at the advertised address."""
    subprocess.run([sys.executable, "-m", "appliance", "keygen", str(tmp_path)], check=True, capture_output=True,
                   timeout=60)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a free port to listen on
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    key = str(tmp_path / "cluster.key")
    rtm = commands("rtm", "--wait", "--listen", "0.0.0.0:%d" % port, "--advertise", "10.0.0.1:8225",
                   "--cluster-key", key, "--manager-key", str(tmp_path / "manager.key"))
    assert rtm.address() == "10.0.0.1:8225"
    code, stdout, stderr = commands("status", "--rtm", "127.0.0.1:%d" % port, "--cluster-key", key,
                                    "--json").finish()
    assert code == 0, stderr
    assert json.loads(stdout)["runtime_manager"]["members"][0]["address"] == "10.0.0.1:8225"
    assert rtm.process.poll() is None, rtm.finish()
    assert rtm.stop()[0] == 0
