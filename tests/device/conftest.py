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


class _Lines:
    """The lines a pipe brought so far, read from its descriptor (select() does not see
    lines a file object's readline already buffered)."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.lines = []
        self._partial = b""  # the start of a line not yet ended

    def first(self, matches, seconds, argv, what):
        """The first line ``matches`` accepts, waiting up to ``seconds`` for it."""
        deadline = time.monotonic() + seconds
        while True:
            for line in self.lines:
                if matches(line):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                raise AssertionError("%s printed no %s; it printed %r" % (argv, what, self.lines))
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise AssertionError("%s ended without %s; it printed %r" % (argv, what, self.lines))
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self.lines.extend(line.decode("utf-8", "replace") for line in complete)

    def text(self):
        return "".join(line + "\n" for line in self.lines) + self._partial.decode("utf-8", "replace")


class Command:
    """A started ``appliance`` command (or ``python -m module``) whose stdout and stderr
    lines can be awaited."""

    def __init__(self, *argv, cwd=None, new_session=False, module="appliance"):
        self.argv = argv
        self.process = subprocess.Popen([sys.executable, "-m", module, *argv], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=cwd, text=True, bufsize=1,
                                        start_new_session=new_session)
        self._out = _Lines(self.process.stdout)
        self._err = _Lines(self.process.stderr)

    @property
    def lines(self):
        """Its stdout lines read so far."""
        return self._out.lines

    def line_starting(self, prefix, seconds=WAIT):
        """The first stdout line that starts with ``prefix`` (waiting for it)."""
        return self._out.first(lambda line: line.startswith(prefix), seconds, self.argv,
                               "line starting %r" % prefix)

    def stderr_line_containing(self, text, seconds=WAIT):
        """The first stderr line holding ``text`` (waiting for it; ``finish`` still has all of stderr)."""
        return self._err.first(lambda line: text in line, seconds, self.argv, "stderr line with %r" % text)

    def address(self):
        """The address from its first line: ``... at HOST:PORT[, ...]``."""
        return self.line_starting("").split(" at ")[1].split(",")[0]

    def finish(self, seconds=WAIT):
        """Wait for it to exit; (status, all of stdout, stderr)."""
        out, err = self.process.communicate(timeout=seconds)
        return self.process.returncode, self._out.text() + out, self._err.text() + err

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
