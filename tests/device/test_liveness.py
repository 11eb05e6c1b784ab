"""Real process trees losing each other: a runtime manager that restarts is joined again,
and an ensemble that stops leaves, freeing its name."""
import pytest

from tests.device.conftest import WAIT

pytestmark = pytest.mark.timeout(3 * WAIT)


def _stderr_line_with(command, text):
    """Read the command's stderr until a line holds ``text``; that line."""
    while True:
        line = command.process.stderr.readline()
        assert line, "%s ended without saying %r" % (command.argv, text)
        if text in line:
            return line


def _member(commands, address):
    """Ensemble e1 of the runtime manager at ``address``, on a free port."""
    return commands("ensemble", "--name", "e1", "--rtm", address, "--listen", "127.0.0.1:0")


def test_ensembles_join_a_restarted_runtime_manager_again(commands):
    first = commands("rtm", "--wait", "--listen", "127.0.0.1:0")
    address = first.address()
    member = _member(commands, address)
    member.address()
    first.line_starting("joined: e1 from ")
    assert first.stop()[0] == 0
    again = commands("rtm", "--wait", "--listen", address)
    # its next heartbeat finds the manager restarted (a new transport session): it joins again
    line = _stderr_line_with(member, "lost the runtime manager")
    assert "joining again" in line
    assert again.line_starting("joined: e1 from ").startswith("joined: e1 from 127.0.0.1:")
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
