"""Real process trees losing each other: a runtime manager that restarts is joined again, an
ensemble that stops leaves, freeing its name, and one killed outright is dropped after its silence."""
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
