"""Stopping an SQ firing that does not end: a loop that never exits, a wait forever.

An SQ runs in its execute process's main thread (the simulator's, in a
simulation), so one that never returns would stall every SQ there, and a
simulation would hang without a word. Each execute core says which SQ runs
now (``RUNNING.exe``: one attribute store before and after each call); a
:class:`Watchdog` thread looks at it a few times per time limit and, when
the same firing is still running after the SQ's limit (the app's run option
``sq_time_limit``), sends the process a signal whose handler raises
:class:`TimeLimitExceeded` in the main thread, inside the SQ. The handler
checks the firing again, in the main thread, so a firing that ended in the
meantime is never hit. The exception is a ``BaseException``, so an SQ that
catches ``Exception`` in its loop is stopped too; the execute core reports
it as that SQ's error, with the line it was stopped at, and calls the SQ no
more in that app. A program's top level, as an ensemble loads it, and its
``teardown()`` are watched the same way.

A signal reaches Python code only in the main thread, so the watchdog works
where the cores run there (the ``simulate`` command, a device's execute
process); elsewhere (a simulation run from another thread) it is not armed.

What the watchdog cannot stop (one call into compiled code that holds the
interpreter stops its thread too) a device's supervisor can: the watchdog
tells a ``beat`` at each look (``appliance/device/pulse.py``).
"""
from __future__ import annotations

import signal
import threading
import time
from types import TracebackType
from typing import Any, Callable, Optional, Tuple, Type

#: The longest time limit, µs (1e8 s, as the commands take): beats and waits count in it.
MAX_TIME_LIMIT = 10 ** 14
#: The signal the watchdog raises its exception with: not SIGALRM, which test runners use.
SIGNAL = signal.SIGUSR2


class TimeLimitExceeded(BaseException):
    """Raised inside an SQ firing (or a program's ``teardown()``) that ran longer than its
    app's ``sq_time_limit``."""


class _Running:
    """The SQ an execute core of this process runs now (an ``Executable``), or None; and
    the longest any program code may run at once here (s: the largest ``sq_time_limit``
    of the apps this process has loaded), which the watchdog's beats tell."""

    __slots__ = ("exe", "longest", "announce")

    def __init__(self) -> None:
        self.exe: Any = None
        self.longest = 0.0
        #: Called by a core as a program's top level starts (an import may hold the interpreter
        #: for long): the watchdog beats at once, so the beat tells that limit before it starts.
        self.announce: Callable[[], None] = _nothing


def _nothing() -> None:
    pass


RUNNING = _Running()


class Watched:
    """Program code the watchdog may stop that is no SQ firing (its top level as it loads,
    ``teardown()``): what an execute core puts in ``RUNNING`` while it runs."""

    __slots__ = ("time_limit", "executions")

    #: What follows its stop, for the error's text (an SQ: it is not called again).
    after_stop = ""

    def __init__(self, time_limit: float) -> None:
        self.time_limit = time_limit
        self.executions = 0


class Watchdog:
    """One thread per process that stops a firing over its SQ's time limit (``exe.time_limit``, s;
    ``exe`` an ``Executable`` or a :class:`Watched`).

    Use as a context manager around the loop that runs the cores; it restores the
    signal's previous handler when it ends. ``beat(running_for, limit, longest)`` (s;
    ``running_for`` -1 when no firing runs) is told at each look.
    """

    def __init__(self, beat: Optional[Callable[[float, float, float], None]] = None) -> None:
        self._beat = beat
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._main = threading.main_thread().ident
        #: The firing the thread found over its limit: (exe, its execution count).
        self._flagged: Optional[Tuple[Any, int]] = None
        self._previous: Any = None

    def __enter__(self) -> Watchdog:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(SIGNAL, self._interrupt)
            self._thread = threading.Thread(target=self._watch, name="sq-watchdog", daemon=True)
            self._thread.start()
            if self._beat is not None:
                RUNNING.announce = self._announce
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            signal.signal(SIGNAL, self._previous)
            RUNNING.announce = _nothing
            self._thread = None

    def _watch(self) -> None:
        seen: Optional[Tuple[Any, int]] = None
        since = time.monotonic()
        flagged_since = 0.0
        while True:
            if self._beat is not None:
                self._beat(-1.0 if seen is None else time.monotonic() - since,
                           0.0 if seen is None else seen[0].time_limit, RUNNING.longest)
            if self._stop.wait(_check_every(seen)):
                return
            exe = RUNNING.exe
            firing = None if exe is None else (exe, exe.executions)
            now = time.monotonic()
            if firing != seen:
                seen, since = firing, now
                flagged_since = now
            elif firing is not None and now - flagged_since >= firing[0].time_limit and not self._stop.is_set():
                self._flagged, flagged_since = firing, now  # and again a limit later, if it swallowed it
                signal.pthread_kill(self._main, SIGNAL)

    def _announce(self) -> None:
        exe = RUNNING.exe
        if self._beat is not None and exe is not None:
            self._beat(0.0, exe.time_limit, RUNNING.longest)

    def _interrupt(self, signum: int, frame: Any) -> None:
        exe = RUNNING.exe
        if exe is not None and (exe, exe.executions) == self._flagged:
            self._flagged = None
            raise TimeLimitExceeded("ran for more than %g s (the app's sq_time_limit) and was stopped%s"
                                    % (exe.time_limit, exe.after_stop))


#: The longest the thread sleeps between two looks (and beats).
LOOK_SECONDS = 1.0


def _check_every(firing: Optional[Tuple[Any, int]]) -> float:
    """How long the thread sleeps between looks: a quarter of the running SQ's limit (at most
    a second), a second when none ran at the last look; so a firing is stopped at most a
    second and 1.25 limits after it started."""
    return LOOK_SECONDS if firing is None else min(LOOK_SECONDS, firing[0].time_limit / 4)
