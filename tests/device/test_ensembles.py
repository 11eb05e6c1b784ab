"""Ensembles as real process trees on loopback: the same values as in simulation, clean
shutdowns, a dead child named, garbage survived."""
import json
import os
import re
import signal
import socket

import psutil
import pytest

from appliance.program.loader import load_program
from appliance.runtime.app import RunOptions
from appliance.runtime.execute import MAX_FIRING_BYTES
from appliance.sim.harness import numbered_ensembles, simulate

from ..sim.conftest import example_path, longest_bytes
from .conftest import process_statuses, segments_of


def _run_on_devices(commands, program, tmp_path, duration="0.5", ensembles=("e1", "e2"), *extra):
    out = tmp_path / "o.jsonl"
    rtm = commands("rtm", "--graph", program, "--listen", "127.0.0.1:0", "--expect", str(len(ensembles)),
                   "--duration", duration, "--out", str(out), "--seed", "3", *extra)
    address = rtm.address()
    members = [commands("ensemble", "--name", name, "--rtm", address, "--listen", "127.0.0.1:0")
               for name in ensembles]
    code, stdout, stderr = rtm.finish()
    for member in members:
        assert member.stop()[0] == 0
    return code, stdout, stderr, [json.loads(line) for line in out.read_text().splitlines()]


def test_the_diamond_gives_on_devices_the_values_it_gives_in_simulation(commands, tmp_path):
    code, stdout, stderr, records = _run_on_devices(commands, example_path("diamond.py"), tmp_path)
    assert code == 0, stderr
    assert "joined: e1 from 127.0.0.1:" in stdout and "ran main on 2 ensemble(s) for 0.5 s\n" in stdout
    assert len(records) == 50
    assert "\n  lost             none\n" in stdout  # nothing of this app, nor of the ensembles, was lost
    simulated = []
    simulate(load_program(example_path("diamond.py")), numbered_ensembles(2), RunOptions(seed=3, duration=500_000),
             sink=simulated.append)
    for record in records + [r._asdict() for r in simulated]:  # the same function of the sample, both ways
        n = (record["start"] + record["stop"]) // 2 // 10_000
        assert record["value"] == [2 * n, n * n] and record["stop"] - record["start"] == 10_000
    assert {r["ensemble"] for r in records} <= {"e1", "e2"}


ON_THE_MANAGER = """
from appliance import graph, sq, stream

@stream(period_ms=10, width_ms=2, ensemble="runtime-manager")
def n(tick):
    return tick // 10000

@sq(ensemble="runtime-manager")
def double(x):
    return 2 * x

@graph
def main():
    return double(n())
"""


def test_the_summary_counts_the_ensembles_that_joined_as_simulate_counts_the_system(commands, tmp_path):
    program = tmp_path / "on_manager.py"
    program.write_text(ON_THE_MANAGER)  # every SQ on the manager's own ensemble: none on e1 or e2
    code, stdout, stderr, records = _run_on_devices(commands, str(program), tmp_path, "0.2")
    assert code == 0 and records, stderr
    assert "ran main on 2 ensemble(s) for 0.2 s\n" in stdout, stdout


def test_an_sq_that_raises_is_said_once_on_the_rtm_stderr_with_its_count(commands, tmp_path):
    program = tmp_path / "raises.py"
    program.write_text(ON_THE_MANAGER.replace("return 2 * x", "return 2 / (x % 2)"))  # every other sample
    code, stdout, stderr, records = _run_on_devices(commands, str(program), tmp_path, "0.2")
    [line] = [line for line in stderr.splitlines() if "ZeroDivisionError" in line]  # the summary's, not a log's too
    assert code == 2 and line.startswith("appliance rtm: error: SQ 'double' on runtime-manager: ZeroDivisionError")
    assert "WARNING" not in stderr, stderr


def test_two_sinusoids_give_the_values_the_program_promises_on_devices(commands, tmp_path):
    code, _, stderr, records = _run_on_devices(commands, example_path("two_sinusoids.py"), tmp_path, "0.4")
    assert code == 0, stderr
    import importlib.util
    spec = importlib.util.spec_from_file_location("two_sinusoids", example_path("two_sinusoids.py"))
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    sums = [r for r in records if r["sq"] == "add"]
    assert len(sums) == 20 and len([r for r in records if r["sq"] == "smooth"]) == 80
    for r in sums:
        t = (r["start"] + r["stop"]) // 2
        assert r["value"] == ex.wave(ex.SLOW_HZ, t) + 0.5 * ex.wave(ex.FAST_HZ, t)


def test_sigterm_stops_every_process_and_leaves_no_segment(commands):
    ensemble = commands("ensemble", "--name", "lonely", "--rtm", "127.0.0.1:9", "--listen", "127.0.0.1:0")
    statuses = process_statuses(ensemble.address())
    pids = [status["device"]["pid"] for status in statuses.values()]
    assert len(set(pids)) == 3 and segments_of("lonely")
    code, _, _ = ensemble.stop()
    assert code == 0
    assert not [pid for pid in pids if psutil.pid_exists(pid)]
    assert segments_of("lonely") == []


@pytest.mark.parametrize("process", ["execute", "input_tokens"])  # named as status names it (was: inputtokens)
def test_a_child_killed_with_sigkill_makes_the_ensemble_exit_non_zero_naming_it(commands, process):
    ensemble = commands("ensemble", "--name", "fragile", "--rtm", "127.0.0.1:9", "--listen", "127.0.0.1:0")
    statuses = process_statuses(ensemble.address())
    pid = statuses[process]["device"]["pid"]
    os.kill(pid, signal.SIGKILL)
    code, _, stderr = ensemble.finish()
    assert code == 1
    assert "process fragile/%s (pid %d) died: killed by signal 9" % (process, pid) in stderr
    assert not [s["device"]["pid"] for s in statuses.values() if psutil.pid_exists(s["device"]["pid"])]
    assert segments_of("fragile") == []


def test_a_child_that_cannot_stop_is_killed_within_the_shutdown_and_the_exit_status_says_so(commands):
    ensemble = commands("ensemble", "--name", "frozen", "--rtm", "127.0.0.1:9", "--listen", "127.0.0.1:0")
    statuses = process_statuses(ensemble.address())
    execute = statuses["execute"]["device"]["pid"]
    os.kill(execute, signal.SIGSTOP)  # it can neither take its END nor die of SIGTERM
    code, _, stderr = ensemble.stop()
    assert code == 1
    assert "ensemble frozen: frozen/execute did not stop in time and was killed" in stderr
    assert not [s["device"]["pid"] for s in statuses.values() if psutil.pid_exists(s["device"]["pid"])]
    assert segments_of("frozen") == []


def test_twenty_thousand_garbage_datagrams_do_not_stop_an_ensemble(commands):
    ensemble = commands("ensemble", "--name", "sturdy", "--rtm", "127.0.0.1:9", "--listen", "127.0.0.1:0")
    address = ensemble.address()
    process_statuses(address)
    host, port = address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(20_000):
            sock.sendto(os.urandom(i % 1400 + 1), (host, int(port)))
    network = process_statuses(address)["network"]  # it still answers
    refused = sum(v for k, v in network["transport"]["*"].items() if k in ("truncated", "bad_version", "bad_crc"))
    refused += sum(sum(v for k, v in peer.items() if k in ("truncated", "bad_version", "bad_crc"))
                   for name, peer in network["transport"].items() if name != "*")
    assert refused > 0
    socket_counters = {"socket_send_errors", "socket_receive_errors", "socket_backlog_dropped", "socket_backlog"}
    assert socket_counters <= set(network["transport"]["*"])  # the socket shell's, as protocol.md lists them
    assert ensemble.stop()[0] == 0


def test_without_a_cluster_key_an_ensemble_off_loopback_is_refused(commands):
    code, _, stderr = commands("ensemble", "--name", "open", "--rtm", "10.0.0.1:8225", "--listen", "0.0.0.0:0",
                               "--advertise", "10.0.0.5:8225").finish()
    assert code == 2
    assert "without --cluster-key anyone who can send this ensemble a datagram could make it run code" in stderr


@pytest.mark.parametrize("command", [("ensemble", "--rtm", "127.0.0.1:9"), ("rtm", "--wait")])
def test_a_bad_ensemble_name_is_one_line_not_a_traceback(commands, command):
    code, _, stderr = commands(*command, "--name", "left pi", "--listen", "127.0.0.1:0").finish()
    command = command[0]
    assert code == 2
    assert stderr == ("appliance %s: error: --name: ensemble name 'left pi' is not valid (letters, digits, '_', "
                      "'.', '-', not starting with '.' or '-'; at most 64)\n" % command)


def test_a_waiting_runtime_manager_takes_a_deployment_and_shows_it_in_status(commands):
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    address = rtm.address()
    member = commands("ensemble", "--name", "solo", "--rtm", address, "--listen", "127.0.0.1:0")
    rtm.line_starting("joined: solo")
    deployed = commands("deploy", example_path("diamond.py"), "--rtm", address, "--duration", "0.3")
    code, stdout, stderr = deployed.finish()
    assert code == 0, stderr
    # The static mapper's placement: the runtime manager's own ensemble is a candidate like solo
    # (capacity 1 each, so two SQs on each).
    assert stdout.startswith("app main-1 running (counter on runtime-manager, double on runtime-manager, "
                             "pair on solo, square on solo)")
    rtm.line_starting("app main-1: finished")
    status = commands("status", "--rtm", address, "--json")
    code, stdout, _ = status.finish()
    answers = json.loads(stdout)
    app = answers["runtime_manager"]["app"]
    assert app["phase"] == "finished" and app["summary"]["sqs"]["pair"]["executions"] == 30
    assert {"solo/input_tokens", "solo/execute", "solo/network"} <= set(answers)
    assert answers["solo/network"]["device"]["uss"] > 0 and answers["solo/network"]["joined"] is True
    code, text, stderr = commands("status", "--rtm", address).finish()
    assert code == 0 and "solo" in text and "app main-1: finished" in text
    assert "no answer" not in text + stderr  # all seven processes answered
    stopped = answers["solo/network"]["device"]["pid"]  # relays solo's answers: none comes now
    os.kill(stopped, signal.SIGSTOP)
    try:
        code, text, stderr = commands("status", "--rtm", address).finish()
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert code == 0 and stderr == "appliance status: no answer within 3 s from solo/input_tokens, solo/execute, " \
                                   "solo/network\n"
    assert "  %-32s no answer" % "solo/network" in text.splitlines()
    # a finished app's SQs show what they did (their processes have removed them by now)
    [pair] = [line.split() for line in text.splitlines() if line.strip().startswith("pair ")]
    assert pair == ["pair", "solo", "30", "0"]
    for command in (member, rtm):
        assert command.stop()[0] == 0


def test_a_clock_offset_beyond_the_bound_given_is_a_warning_at_deploy_on_both_commands(commands):
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    address = rtm.address()
    member = commands("ensemble", "--name", "solo", "--rtm", address, "--listen", "127.0.0.1:0")
    offset = rtm.line_starting("joined: solo").split(", clock ")[1].split(" ms off")[0]
    # Bound 0: any offset measured warns; on loopback one may come out as exactly 0 µs.
    code, stdout, stderr = commands("deploy", example_path("diamond.py"), "--rtm", address, "--duration", "0.2",
                                    "--max-clock-offset-ms", "0").finish()
    assert code == 0 and "on solo" in stdout, stderr
    warning = "warning: ensemble solo's clock is %s ms off the runtime manager's, more than 0.000 ms" % offset
    if float(offset) == 0:
        assert "warning" not in stderr
    else:
        assert stderr.startswith("appliance deploy: " + warning), stderr
        # One host, one clock: the offset measured is within the uncertainty the warning states.
        [uncertainty] = re.findall(r"\(measured ±([0-9.]+) ms: half its round trip\)", stderr)
        assert abs(float(offset)) <= float(uncertainty) + 0.001, stderr
    rtm.line_starting("app main-1: finished")
    assert member.stop()[0] == 0
    code, _, stderr = rtm.stop()
    assert code == 0 and ("appliance rtm: " + warning in stderr) is (float(offset) != 0), stderr


def test_deploy_reports_its_own_request_not_the_app_before_it(commands, tmp_path):
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    address = rtm.address()
    member = commands("ensemble", "--name", "solo", "--rtm", address, "--listen", "127.0.0.1:0")
    rtm.line_starting("joined: solo")
    unplaceable = tmp_path / "gpu.py"
    with open(example_path("diamond.py")) as handle:
        unplaceable.write_text(handle.read().replace("@sq", "@sq(requires='gpu0')", 1))
    code, _, stderr = commands("deploy", str(unplaceable), "--rtm", address).finish()
    assert code == 2 and "app main-1 failed: SQ 'double' requires gpu0; no ensemble can host it" in stderr
    code, stdout, stderr = commands("deploy", example_path("diamond.py"), "--rtm", address).finish()
    assert code == 0 and stdout.startswith("app main-2 running ("), stderr  # not main-1's failure
    code, stdout, stderr = commands("deploy", example_path("diamond.py"), "--rtm", address).finish()
    assert code == 2 and stdout == "" and stderr == (
        "appliance deploy: error: refused: app main-2 is still running; tear it down first\n")
    assert member.stop()[0] == 0
    code, stdout, _ = rtm.stop()
    assert code == 0 and stdout.count("joined: solo") == 1 and "joined again" not in stdout  # was: at every deploy


FLOOD = """
from appliance import graph, sq, stream

@stream(period_ms=1)
def tick(tick):
    return tick

@sq
def work(x, i):
    return x + i

@graph
def main():
    t = tick()
    outs = [work(t, i) for i in range(300)]   # 300,000 executions a second asked of one execute process
    return outs[0]
"""


def test_an_sq_that_floods_its_ensemble_drops_tokens_but_never_a_control_message(commands, tmp_path):
    program = tmp_path / "flood.py"
    program.write_text(FLOOD)
    code, stdout, stderr, records = _run_on_devices(commands, str(program), tmp_path, "0.5", ("victim",),
                                                    "--mapping", "trivial")
    # The deployment and the teardown (control) got through the flood, and the run ended with its report,
    # which accounts for what the overload cost: samples skipped, tokens dropped.
    assert code == 0 and "app main-1: finished" in stdout, stdout + stderr
    [lost] = [line for line in stdout.splitlines() if line.startswith("  lost ")]
    assert "stream_overrun" in lost or "queue_full" in lost
    assert records  # outputs were logged meanwhile


AT_THE_LIMIT = """
from appliance import graph, sq, stream

@stream(period_ms=100, count=2, ensemble="big")
def fits(tick):
    return b"x" * %d   # as much as one firing may send

@stream(period_ms=100, count=2, ensemble="big")
def blob(tick):
    return b"x" * %d   # one byte more

@sq(ensemble="big")
def size(b):
    return len(b)

@sq(ensemble="big")
def both(a, b):
    return len(a) + len(b)

@graph
def main():
    f = fits()
    return size(f), size(blob()), both(f, f)
"""


def test_a_token_at_the_limit_crosses_the_queues_and_one_over_it_is_its_sqs_error(commands, tmp_path):
    """The limit is the simulator's (tests/sim/test_values.py): a device's queues carry what it lets
    through, three copies at once for SQs of one ensemble, two of them one firing's inputs."""
    length = longest_bytes(MAX_FIRING_BYTES)
    program = tmp_path / "huge.py"
    program.write_text(AT_THE_LIMIT % (length, length + 1))
    code, stdout, stderr, records = _run_on_devices(commands, str(program), tmp_path, "0.3", ("big",))
    assert "app main-1: finished" in stdout, stdout + stderr
    [lost] = [line for line in stdout.splitlines() if line.startswith("  lost ")]
    assert lost.split() == ["lost", "unsendable", "2"]
    assert sorted((r["sq"], r["value"]) for r in records) == [("both", 2 * length)] * 2 + [("size", length)] * 2
    assert code == 2 and ("SQ 'blob' on big: unsendable: its outputs are more than the 262144 bytes (256 KiB) "
                          "one firing may send, encoded  (2 times)") in stderr


def test_an_ensemble_started_before_its_manager_keeps_asking_and_joins_once_it_is_up(commands):
    import socket as sockets

    with sockets.socket(sockets.AF_INET, sockets.SOCK_DGRAM) as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % probe.getsockname()[1]
    early = commands("ensemble", "--name", "early", "--rtm", address, "--listen", "127.0.0.1:0")
    early.address()
    # Its first wait for an answer runs out (1 s); it says so once, and asks again.
    early.stderr_line_containing("no answer from the runtime manager")
    rtm = commands("rtm", "--wait", "--listen", address)
    assert rtm.line_starting("joined: early").startswith("joined: early from 127.0.0.1:")
    for command in (early, rtm):
        assert command.stop()[0] == 0
