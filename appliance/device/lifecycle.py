"""What every child process of an ensemble does first, and how it dies with its parent."""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal

#: prctl(2): deliver this signal to the calling process when its parent dies.
_PR_SET_PDEATHSIG = 1
#: prctl(2): how much later than asked the kernel may end this process's timed waits (ns).
_PR_SET_TIMERSLACK = 29
#: 1 ns, the least: a stream's sample is a timed wait, and its lateness is latency. The
#: default (50 µs) lets the kernel batch wake-ups, at a cost to every sample.
TIMER_SLACK_NS = 1

log = logging.getLogger("appliance.device")


def child_started(name: str, log_level: int, parent: int) -> None:
    """A child of the supervisor: logs like its parent, leaves Ctrl-C to it (a terminal
    signals the whole process group; the supervisor shuts the children down in order),
    dies if the supervisor dies, so a ``kill -9`` of the supervisor leaves no orphan,
    and wakes from its timed waits when they are due, not up to 50 µs later."""
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s[" + name + "]: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (%s): this process may outlive its supervisor",
                    os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:  # the parent died before the call took effect
        os._exit(1)
    if libc.prctl(_PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_TIMERSLACK) failed (%s): timed waits may end up to 50 µs late",
                    os.strerror(ctypes.get_errno()))
