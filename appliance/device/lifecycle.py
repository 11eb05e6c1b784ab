"""What every child process of an ensemble does first, and how it dies with its parent."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
from typing import Iterator

from appliance.device.logs import Repeats

#: prctl(2): deliver this signal to the calling process when its parent dies.
_PR_SET_PDEATHSIG = 1
#: prctl(2): how much later than asked the kernel may end this process's timed waits (ns).
_PR_SET_TIMERSLACK = 29
#: 1 ns, the least: a stream's sample is a timed wait, and its lateness is latency. The
#: default (50 µs) lets the kernel batch wake-ups, at a cost to every sample.
TIMER_SLACK_NS = 1

#: What a service manager (systemd's KillMode=control-group) and a terminal (Ctrl-C) send the
#: whole process group: the children ignore them, the supervisor stops the children in order.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})

log = logging.getLogger("appliance.device")


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Block STOP_SIGNALS in the supervisor while it starts children, then restore its mask.

    A child inherits the mask through fork and exec, so it cannot die of one of them (nor
    raise KeyboardInterrupt) before ``child_started`` ignores them, which then unblocks them.
    One that reaches the supervisor meanwhile stays pending and goes to its own handler as
    the mask is restored, so the shutdown it asks for is not lost.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def child_started(name: str, log_level: int, parent: int) -> None:
    """A child of the supervisor: logs like its parent (at most ``logs.BURST`` lines of a kind a
    minute), leaves SIGINT and SIGTERM to it (a
    terminal and a service manager signal the whole process group; the supervisor shuts the
    children down in order, which a child dead of the signal would turn into a crash), dies
    if the supervisor dies, so a ``kill -9`` of the supervisor leaves no orphan, and wakes
    from its timed waits when they are due, not up to 50 µs later.

    The supervisor started it with those signals blocked (``stop_signals_held``): ignoring
    them discards any that came meanwhile, and only then are they unblocked."""
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s[" + name + "]: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(Repeats())
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
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
