"""Real process trees losing each other: a runtime manager that restarts is joined again, an
ensemble that stops leaves, freeing its name, and one killed outright is dropped after its silence."""
import re
import subprocess
import sys

import pytest

from tests.device.conftest import WAIT
from tests.sim.conftest import example_path

pytestmark = pytest.mark.timeout(3 * WAIT)


def _member(commands, address, *keys):
    """Ensemble e1 of the runtime manager at ``address``, on a free port."""
    return commands("ensemble", "--name", "e1", "--rtm", address, "--listen", "127.0.0.1:0", *keys)


@pytest.mark.parametrize("signed", [False, True], ids=["keyless", "cluster and manager keys"])
def test_ensembles_join_a_restarted_runtime_manager_again(commands, tmp_path, signed):
    manager_keys, member_keys = (), ()
    if signed:  # the new manager signs with a new boot: taken only from the answer to the new join
        subprocess.run([sys.executable, "-m", "appliance", "keygen", str(tmp_path)], check=True, capture_output=True,
                       timeout=WAIT)
        cluster = ("--cluster-key", str(tmp_path / "cluster.key"))
        manager_keys = cluster + ("--manager-key", str(tmp_path / "manager.key"))
        member_keys = cluster + ("--manager-public-key", str(tmp_path / "manager.pub"))
    first = commands("rtm", "--wait", "--listen", "127.0.0.1:0", *manager_keys)
    address = first.address()
    member = _member(commands, address, *member_keys)
    member.address()
    first.line_starting("joined: e1 from ")
    assert first.stop()[0] == 0
    again = commands("rtm", "--wait", "--listen", address, *manager_keys)
    # its next heartbeat finds the manager restarted (a new transport session): it joins again
    line = member.stderr_line_containing("lost the runtime manager")
    assert "joining again" in line
    assert again.line_starting("joined: e1 from ").startswith("joined: e1 from 127.0.0.1:")
    code, stdout, stderr = commands("deploy", example_path("diamond.py"), "--rtm", address, "--duration", "0.2",
                                    *manager_keys[:2]).finish()
    assert code == 0 and "on e1" in stdout, stdout + stderr  # and it takes the new manager's control
    again.line_starting("app main-1: finished")
    assert member.process.poll() is None
    for command in (member, again):
        assert command.stop()[0] == 0


def test_a_manager_that_stops_tells_its_members_which_drop_the_app_at_once(commands):
    """Was: told nothing; they ran the app on until their transport gave up on the manager
    (12 to 26 s), and then said it stopped answering."""
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    member = _member(commands, rtm.address())
    rtm.line_starting("joined: e1 from ")
    code, stdout, stderr = commands("deploy", example_path("diamond.py"), "--rtm", rtm.address()).finish()
    assert code == 0 and "on e1" in stdout, stdout + stderr
    assert rtm.stop()[0] == 0
    line = member.stderr_line_containing("lost the runtime manager")
    assert line.endswith("lost the runtime manager at %s (it stopped); joining again" % rtm.address()), line
    assert "app main-1 is removed here" in member.stderr_line_containing("is removed here")
    assert member.stop()[0] == 0


def test_an_ensemble_that_stops_leaves_and_its_name_can_join_from_elsewhere(commands):
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    before = _member(commands, rtm.address())
    rtm.line_starting("joined: e1 from %s" % before.address())
    assert before.stop()[0] == 0
    assert rtm.line_starting("left: e1") == "left: e1 (it stopped)"
    after = _member(commands, rtm.address())
    rtm.line_starting("joined: e1 from %s" % after.address())
    for command in (after, rtm):
        assert command.stop()[0] == 0


def test_a_member_killed_outright_is_dropped_after_its_silence_and_its_running_app_fails(commands):
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    member = _member(commands, rtm.address())
    rtm.line_starting("joined: e1 from ")
    # runs until torn down; the static mapper puts two of its SQs on e1 (as in test_ensembles)
    code, stdout, stderr = commands("deploy", example_path("diamond.py"), "--rtm", rtm.address()).finish()
    assert code == 0 and "on e1" in stdout, stdout + stderr
    member.process.kill()  # SIGKILL to its supervisor: its processes die with it, and say nothing
    member.finish()
    assert rtm.line_starting("left: e1") == "left: e1 (no heartbeat for 15 s)"
    assert rtm.line_starting("app main-1: failed") == "app main-1: failed (ensemble e1 left: no heartbeat for 15 s)"
    assert rtm.stop()[0] == 0


def test_a_member_restarted_before_its_silence_is_said_to_have_joined_again(commands):
    """Was: nothing said; the manager took the new join of a name it knew at its address."""
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    member = _member(commands, rtm.address())
    address = member.address()
    rtm.line_starting("joined: e1 from %s" % address)
    member.process.kill()  # SIGKILL: no goodbye; its processes die with it (finish waits for their pipes)
    member.finish()
    again = commands("ensemble", "--name", "e1", "--rtm", rtm.address(), "--listen", address)
    assert rtm.line_starting("joined again: ").startswith("joined again: e1 from %s, clock " % address)
    assert not any(line.startswith("left: ") for line in rtm.lines)
    for command in (again, rtm):
        assert command.stop()[0] == 0


def test_a_restarted_manager_runs_its_first_app_on_ensembles_that_ran_the_last_ones_first(commands):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % probe.getsockname()[1]
    member = _member(commands, address)
    member.address()
    for _ in range(2):  # each manager numbers its apps from main-1; e1 removed the first one's
        code, stdout, stderr = commands("rtm", "--graph", example_path("diamond.py"), "--listen", address,
                                        "--expect", "1", "--duration", "0.2").finish()
        assert code == 0 and "app main-1: finished" in stdout, stdout + stderr
    assert member.stop()[0] == 0


def _summary_row(stdout, label):
    return next(line for line in stdout.splitlines() if line.startswith("  %-16s " % label))[19:]


def test_each_run_on_ensembles_that_served_before_sums_up_itself_only(commands):
    """Was: the transport line added up every run since the ensemble started (126, 202, 278
    messages), and what failed towards the previous manager was this run's loss."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % probe.getsockname()[1]
    member = _member(commands, address)
    member.address()
    runs = []
    for _ in range(3):
        code, stdout, stderr = commands("rtm", "--graph", example_path("diamond.py"), "--listen", address,
                                        "--expect", "1", "--duration", "0.5").finish()
        assert code == 0, stdout + stderr
        runs.append((_summary_row(stdout, "transport"), _summary_row(stdout, "lost")))
    assert [lost for _, lost in runs] == ["none"] * 3, runs
    messages = [int(transport.split(" messages")[0]) for transport, _ in runs]
    assert all(" 0 failed" in transport for transport, _ in runs), [t for t, _ in runs]
    assert max(messages[1:]) < 1.5 * messages[0], runs  # each run's own: about the same, not growing
    assert member.stop()[0] == 0


#: Nine values of 250 kB for one firing of ``join``, made one after another: each ``grow`` fires
#: only once the value before it has reached the input-token process, so the input-token queue
#: never holds more than one of them (nine at once would overflow its ring, whose drops would
#: then be counted instead, as they were when the sources only slept in turn).
WIDE = """from appliance import graph, placement, sq, stream

@stream(period_ms=100, count=1)
def big0(tick):
    return bytes([0]) * 250000
""" + "".join("""
@sq
def grow%d(previous):
    return bytes([previous[0] + 1]) * 250000
""" % i for i in range(1, 9)) + """
@sq
def join(a, b, c, d, e, f, g, h, i):
    return len(a)

@graph
def main():
    with placement(ensemble="e1"):
        values = [big0()]
""" + "".join("        values.append(grow%d(values[-1]))\n" % i for i in range(1, 9)) + """        return join(*values)
"""


def test_a_firing_too_large_for_a_queue_is_lost_the_same_in_every_run_on_one_ensemble(commands, tmp_path):
    """The inputs of one firing together are more than the execute queue carries (9 x 250 kB):
    counted by the input-token process as it drops them. Was: counted into the counters its
    core had before the first app's teardown, so from the second run on nothing said so."""
    import socket

    program = tmp_path / "wide.py"
    program.write_text(WIDE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % probe.getsockname()[1]
    member = _member(commands, address)
    member.address()
    for _ in range(2):
        code, stdout, stderr = commands("rtm", "--graph", str(program), "--listen", address, "--expect", "1",
                                        "--duration", "2").finish()
        assert code == 2, stdout + stderr
        assert _summary_row(stdout, "lost") == "too_large_for_queue 1", stdout
        assert "message(s) larger than a local queue carries" in stderr, stderr
    assert member.stop()[0] == 0


def test_a_run_whose_member_left_says_whose_counts_its_summary_lacks(commands):
    """Was: "ran main on 0 ensemble(s)", and outputs logged beside 0 samples, without a word why."""
    import os
    import signal
    import socket

    from tests.device.conftest import process_statuses

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % probe.getsockname()[1]
    member = _member(commands, address)
    execute = process_statuses(member.address())["execute"]["device"]["pid"]
    rtm = commands("rtm", "--graph", example_path("diamond.py"), "--listen", address, "--expect", "1",
                   "--duration", "30")
    rtm.line_starting("app main-1: running")
    os.kill(execute, signal.SIGKILL)  # e1 stops whole, and says it leaves
    code, stdout, stderr = rtm.finish()
    assert code == 2, stdout + stderr
    assert "app main-1: failed (ensemble e1 left: it stopped)" in stdout
    # Was "for 30 s": how long it ran, not how long it was asked to (it was killed within seconds).
    [ran] = re.findall(r"^ran main on 1 ensemble\(s\) for ([0-9.]+) s of 30 s$", stdout, re.M)
    assert float(ran) < 30, stdout
    assert _summary_row(stdout, "not counted") == "e1 (left before reporting what it counted)", stdout
    assert member.finish()[0] == 1


def test_an_ensemble_given_another_managers_public_key_says_so_not_just_no_answer(commands, tmp_path):
    """Was: "refused signed control ...: bad_signature", then "no answer from the runtime manager
    ... (is it up, at that address, with the same cluster key?)": it was up, and answering."""
    for keys in ("ours", "other"):
        (tmp_path / keys).mkdir()
        subprocess.run([sys.executable, "-m", "appliance", "keygen", str(tmp_path / keys)], check=True,
                       capture_output=True, timeout=WAIT)
    cluster = ("--cluster-key", str(tmp_path / "ours" / "cluster.key"))
    rtm = commands("rtm", "--wait", "--listen", "127.0.0.1:0", *cluster,
                   "--manager-key", str(tmp_path / "ours" / "manager.key"))
    member = _member(commands, rtm.address(), *cluster,
                     "--manager-public-key", str(tmp_path / "other" / "manager.pub"))
    refused = member.stderr_line_containing("refused signed control from ")
    assert "bad_signature (not signed by the manager key whose public key this ensemble has" in refused
    member.stderr_line_containing("no answer from the runtime manager at %s yet (its answers are refused: they "
                                  "are not signed by the manager key whose public key this ensemble has)"
                                  % rtm.address())
    for command in (member, rtm):
        assert command.stop()[0] == 0
