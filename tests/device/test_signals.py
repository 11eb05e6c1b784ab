"""Signals to a whole process tree, as a service manager (systemd's KillMode=control-group)
or a terminal (Ctrl-C) sends them, and what a dead tree leaves for the next start.

Each command runs in a process group (and session) of its own, so that the test can signal
the group without signalling itself; every wait is for an event (a line, an exit, a select).
"""
import contextlib
import os
import signal
import subprocess
import sys
import uuid

import psutil
import pytest

from appliance.device.wiring import PROCESS_NAMES
from appliance.ipc import Recipient
from appliance.ipc.shmqueue import remove_orphans

from .conftest import WAIT, Command, process_statuses, segments_of


class GroupCommand(Command):
    """A started ``appliance`` command that leads a process group of its own."""

    def __init__(self, *argv):
        super().__init__(*argv, new_session=True)

    def signal_group(self, number):
        os.killpg(self.process.pid, number)


def _group_members(pgid):
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _assert_group_gone(command):
    """Nothing of the command's group runs any more (its resource tracker exits after it)."""
    _, alive = psutil.wait_procs(_group_members(command.process.pid), timeout=WAIT)
    assert alive == []


@pytest.fixture
def group_commands():
    """``group_commands(*argv)`` starts a command in a group of its own; every group is killed at the end."""
    started = []

    def start(*argv):
        command = GroupCommand(*argv)
        started.append(command)
        return command

    yield start
    for command in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(command.process.pid, signal.SIGKILL)
        command.process.wait()
        for stream in (command.process.stdout, command.process.stderr):
            stream.close()
    remove_orphans()  # what a killed tree left


def _name():
    return "sig-" + uuid.uuid4().hex[:8]


def test_sigterm_to_the_whole_group_is_an_ordered_shutdown_not_a_crash(group_commands):
    """The kernel delivers the signal to every process of the group at once; the supervisor is
    stopped meanwhile here, so that it is surely the last to act on it, as it may be anyway."""
    name = _name()
    rtm = group_commands("rtm", "--wait", "--name", name, "--listen", "127.0.0.1:0")
    address = rtm.address()
    statuses = process_statuses(address)  # every process is in its loop
    pids = [status["device"]["pid"] for status in statuses.values()]
    assert segments_of(name)
    rtm.process.send_signal(signal.SIGSTOP)
    try:
        rtm.signal_group(signal.SIGTERM)
        assert process_statuses(address).keys() == statuses.keys()  # its processes are all still there
    finally:
        rtm.process.send_signal(signal.SIGCONT)  # and its SIGTERM, pending, stops them in order
    code, _, stderr = rtm.finish()
    assert code == 0, stderr
    assert "died" not in stderr and "error" not in stderr.lower(), stderr
    assert not [pid for pid in pids if psutil.pid_exists(pid)]
    assert segments_of(name) == []
    _assert_group_gone(rtm)


STARTS = [("ensemble", "--rtm", "127.0.0.1:9", "--listen", "127.0.0.1:0"), ("rtm", "--wait", "--listen", "127.0.0.1:0")]


@pytest.mark.parametrize("when", ["right after it starts", "right after its first line",
                                  "as its first process starts"])
@pytest.mark.parametrize("command", STARTS, ids=lambda argv: argv[0])
def test_ctrl_c_during_startup_stops_it_without_a_traceback(group_commands, command, when):
    """A SIGINT to the group at any point of a start: before the supervisor's own handler is in
    place it is the command's ``interrupted`` (130; killed by it outright, -2, before Python
    itself set up its handler); once its processes are being started, an ordered shutdown (0).
    A child just started (its interpreter still starting) must neither die of it nor raise
    KeyboardInterrupt."""
    name = _name()
    started = group_commands(*command, "--name", name, *(["--debug"] if when.startswith("as") else []))
    if when == "right after its first line":
        started.line_starting("")
    elif when == "as its first process starts":
        first = PROCESS_NAMES[Recipient.INPUT_TOKENS]
        started.stderr_line_containing("started %s/%s (pid " % (name, first))  # its debug log, as it runs
    started.signal_group(signal.SIGINT)
    code, _, stderr = started.finish()
    assert "Traceback" not in stderr and "died" not in stderr, stderr
    if when == "right after it starts":
        assert code in (0, 130, -signal.SIGINT), stderr
    elif when == "right after its first line":  # was 0 or 130 (or -15 for SIGTERM): it printed too soon
        assert code == 0, stderr
    else:
        assert code == 0, stderr
    assert code != 130 or stderr.endswith("interrupted\n"), stderr
    assert segments_of(name) == []
    _assert_group_gone(started)


def test_a_zombie_creators_segments_are_orphans():
    """A creator that died but was not reaped yet (a zombie: a supervisor whose parent has not
    waited for it) runs no more: its segments are removed."""
    name = _name()
    child = subprocess.Popen([sys.executable, "-c", "\n".join([
        "import os, signal, sys",
        "from appliance.ipc.shmqueue import ShmQueue",
        "queue = ShmQueue.create(sys.argv[1], 'execute')",
        "print(queue.segment, flush=True)",
        "os.killpg(0, signal.SIGKILL)  # its resource tracker too, which would unlink it"]), name],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        segment = child.stdout.readline().strip()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it has exited; not reaped
        with open("/proc/%d/stat" % child.pid) as stat:
            assert stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        assert segments_of(name) == [segment]
        assert remove_orphans(name) == [segment]
        assert segments_of(name) == []
    finally:
        child.wait()
        child.stdout.close()
        remove_orphans(name)



def test_the_next_start_says_it_removed_what_a_killed_tree_left(group_commands):
    name = _name()
    first = group_commands("ensemble", "--name", name, "--rtm", "127.0.0.1:9", "--listen", "127.0.0.1:0")
    process_statuses(first.address())  # its queues are made and its processes run
    left = segments_of(name)
    assert len(left) == 3
    first.signal_group(signal.SIGKILL)  # the whole tree, its resource tracker too
    first.process.wait()
    _assert_group_gone(first)
    assert segments_of(name) == left  # nobody was left to remove them
    second = group_commands("ensemble", "--name", name, "--rtm", "127.0.0.1:9", "--listen", "127.0.0.1:0")
    line = second.stderr_line_containing("shared-memory")
    assert line == "appliance: ensemble %s: removed 3 shared-memory segment(s) a killed earlier run left" % name
    process_statuses(second.address())
    assert not set(left) & set(segments_of(name))
    second.signal_group(signal.SIGTERM)
    code, _, stderr = second.finish()
    assert code == 0, stderr
    assert segments_of(name) == []
