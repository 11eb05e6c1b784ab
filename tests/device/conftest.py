"""Real process trees on this machine: each test starts commands, waits on what they
print or answer (never on sleeps), and leaves nothing running and nothing in /dev/shm."""
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from appliance.device.client import ControlClient, request_id
from appliance.ipc import ExecuteMsg, Message, NetMsg, Recipient, SyncMsg
from appliance.ipc.shmqueue import remove_orphans

#: Longest any single wait of these tests may take before it is a failure (a bound, not a pace).
WAIT = 60.0


class Command:
    """A started ``appliance`` command whose stdout lines can be awaited."""

    def __init__(self, *argv, cwd=None, new_session=False):
        self.argv = argv
        self.process = subprocess.Popen([sys.executable, "-m", "appliance", *argv], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=cwd, text=True, bufsize=1,
                                        start_new_session=new_session)
        self.lines = []
        self._partial = b""  # the start of a line not yet ended

    def line_starting(self, prefix, seconds=WAIT):
        """The first stdout line that starts with ``prefix`` (waiting for it). Read from the
        descriptor, not the file object: select() does not see lines a readline buffered."""
        deadline = time.monotonic() + seconds
        fd = self.process.stdout.fileno()
        while True:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise AssertionError("%s printed no line starting %r; it printed %r" % (self.argv, prefix,
                                                                                         self.lines))
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise AssertionError("%s ended (%s) without a line starting %r; stderr: %s" % (
                    self.argv, self.process.wait(), prefix, self.process.stderr.read()))
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self.lines.extend(line.decode("utf-8", "replace") for line in complete)

    def address(self):
        """The address from its first line: ``... at HOST:PORT[, ...]``."""
        return self.line_starting("").split(" at ")[1].split(",")[0]

    def finish(self, seconds=WAIT):
        """Wait for it to exit; (status, all of stdout, stderr)."""
        out, err = self.process.communicate(timeout=seconds)
        read = "".join(line + "\n" for line in self.lines) + self._partial.decode("utf-8", "replace")
        return self.process.returncode, read + out, err

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.finish()


def process_statuses(address):
    """Every process's status answer of the ensemble at ``address`` (waits until all answer)."""
    request = request_id()
    requests = [Message(SyncMsg.STATUS, request, Recipient.INPUT_TOKENS),
                Message(ExecuteMsg.STATUS, request, Recipient.EXECUTE),
                Message(NetMsg.STATUS, request, Recipient.NETWORK)]
    with ControlClient(address) as client:
        answers = client.status(requests, lambda got: len(got) == 3, WAIT)
    assert len(answers) == 3, answers
    return answers


def segments_of(name):
    return sorted(f for f in os.listdir("/dev/shm") if f.startswith("appliance-") and "-%s-" % name in f)


@pytest.fixture
def commands():
    """``commands(*argv)`` starts an appliance command; every one left is stopped at the end."""
    started = []

    def start(*argv, **kwargs):
        command = Command(*argv, **kwargs)
        started.append(command)
        return command

    yield start
    for command in started:
        if command.process.poll() is None:
            command.process.kill()
            command.process.wait()
        for stream in (command.process.stdout, command.process.stderr):
            stream.close()
    remove_orphans()  # what a killed supervisor left (its children die with it)
