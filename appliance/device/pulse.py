"""Whether a device's execute process still runs Python: its watchdog's beats, heard by the supervisor.

The execute process's watchdog (``runtime/watchdog.py``) stops a firing over
its app's ``sq_time_limit``, but only between two Python steps. One call into
compiled code that holds the interpreter (a C loop, a regular expression that
backtracks for ever, a driver's call that never returns) stops every thread
of the process, the watchdog's too; and a call that does not return even when
signalled outlives every stop. The ensemble would look alive (its network
manager still answers) and run nothing. So the watchdog thread beats to the
supervisor at each look, about once a second: how long the current firing
has run, its limit, and the longest limit of the apps loaded. The
supervisor's :class:`Pulse` finds the process stuck when

- no beat came for a second (the longest between two looks) and 1.25 times
  the longest limit plus ``GRACE`` seconds (and ``CONFIRM`` seconds more: a
  machine that was paused beats again at once), or
- one firing has run 1.25 times its limit plus ``GRACE`` seconds: the watchdog
  has tried to stop it and failed.

It then asks the process where it is (``faulthandler``, which reads every
thread's frames from a signal handler without the interpreter: SIGUSR1, the
frames on a second pipe), kills it (SIGKILL), and says why: the supervisor
reports it as a dead child, with the program line it was stuck at, and the
ensemble stops with exit status 1 for systemd to restart it whole. Within
1.25 limits the watchdog's own stop comes first (at most a second late), so
a firing is only ever killed this way when that stop could not happen.
"""
from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import select
import signal
import struct
import threading
import time
from multiprocessing import reduction
from typing import Any, NamedTuple, Optional, Tuple

from appliance.runtime.code import DEPLOYED_MARK
from appliance.runtime.watchdog import LOOK_SECONDS

#: Seconds over 1.25 limits before a silent or overrunning process is stuck: room for a slow
#: board, a collector pause or a long decode, and far beyond the watchdog's own second.
GRACE = 10.0
#: Seconds more a silence must last once its deadline passed (a paused machine beats again).
CONFIRM = 2.0
#: Seconds the stuck process has to write its frames before it is killed anyway.
DUMP_SECONDS = 1.0
#: The signal its ``faulthandler`` answers with the main thread's frames.
DUMP_SIGNAL = signal.SIGUSR1
#: One beat: µs the current firing has run (-1: none runs), its limit (µs), the longest limit (µs).
BEAT = struct.Struct("=qqq")

_FRAME = re.compile(r'File "(.*)", line (\d+) in (\S+)')
#: Where a thread's frames begin in a dump (``Thread 0x...``, ``Current thread 0x...``).
_THREAD = re.compile(r"^(?:Current thread|Thread) ", re.MULTILINE)


class PulseEnds(NamedTuple):
    """The execute process's ends of its two pipes to the supervisor (beats, frames);
    pickles with its descriptors, as ``QueueHandle`` does, for a spawned child."""

    beats: int
    frames: int

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return _rebuild, (reduction.DupFd(self.beats), reduction.DupFd(self.frames))


def _rebuild(beats: Any, frames: Any) -> PulseEnds:
    return PulseEnds(beats.detach(), frames.detach())


class Heart:
    """The execute process's side: beats for its watchdog, frames on request."""

    def __init__(self, ends: PulseEnds) -> None:
        self._fd = ends.beats
        os.set_blocking(self._fd, False)  # a supervisor that stopped reading never blocks the watchdog
        # Nor one that never asked: frames nobody reads (a SIGUSR1 from elsewhere) fill the pipe, and a
        # blocking write would stop the thread that took the signal, inside its handler, for good.
        os.set_blocking(ends.frames, False)
        faulthandler.register(DUMP_SIGNAL, file=ends.frames, all_threads=True)  # whichever thread takes it

    def beat(self, running_for: float, limit: float, longest: float) -> None:
        """The watchdog's look (s): the current firing's time so far (-1: none), its limit, the longest."""
        with contextlib.suppress(OSError):  # full (the supervisor is busy) or gone (it died: so do we)
            os.write(self._fd, BEAT.pack(int(running_for * 1e6), int(limit * 1e6), int(longest * 1e6)))


class Pulse:
    """The supervisor's side, for one execute process: create, pass :meth:`ends` to the child,
    :meth:`watch` it once started, :meth:`close` at the end. ``verdict`` is why it was
    killed (after ``process NAME (pid N)``), or None."""

    def __init__(self, grace: float = GRACE, confirm: float = CONFIRM) -> None:
        self.grace, self.confirm = grace, confirm
        self._beats_in, beats_out = os.pipe()
        self._frames_in, frames_out = os.pipe()
        self._stop_in, self._stop_out = os.pipe()
        self._ends: Optional[PulseEnds] = PulseEnds(beats_out, frames_out)
        self._thread: Optional[threading.Thread] = None
        self._pid = 0
        self._closed = False
        self.verdict: Optional[str] = None

    def ends(self) -> PulseEnds:
        assert self._ends is not None, "the child has its ends already"
        return self._ends

    def watch(self, pid: int) -> None:
        """The child (``pid``) is started, its ends duplicated into it: close ours (its death is
        then the end of the beats) and listen."""
        self._close_ends()
        self._pid = pid
        self._thread = threading.Thread(target=self._listen, name="execute-pulse", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening and close the pipes (once; ``verdict`` stays)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            os.write(self._stop_out, b"x")
            self._thread.join()
            self._thread = None
        self._close_ends()
        for fd in (self._beats_in, self._frames_in, self._stop_in, self._stop_out):
            os.close(fd)

    def _close_ends(self) -> None:
        if self._ends is not None:
            for fd in self._ends:
                os.close(fd)
            self._ends = None

    def _listen(self) -> None:
        pending = b""
        heard = started = None  # when the last beat came; when the firing it told of began
        limit = longest = 0.0
        noticed = None  # when the silence's deadline was found passed
        while True:
            due = None  # nothing is due before the first beat: the child may start slowly
            if heard is not None:
                due = heard + LOOK_SECONDS + 1.25 * max(limit, longest) + self.grace
                if noticed is not None:
                    due = noticed + self.confirm
                if started is not None:
                    due = min(due, started + 1.25 * limit + self.grace)
            ready = select.select([self._beats_in, self._stop_in], [], [],
                                  None if due is None else max(0.0, due - time.monotonic()))[0]
            if self._stop_in in ready:
                return
            now = time.monotonic()
            if ready:
                data = os.read(self._beats_in, BEAT.size * 64)
                if not data:
                    return  # the child died: its sentinel says so
                pending += data
                whole = len(pending) - len(pending) % BEAT.size
                if whole:
                    running_for, limit, longest = (us / 1e6 for us in BEAT.unpack_from(pending, whole - BEAT.size))
                    pending = pending[whole:]
                    heard, noticed = now, None
                    started = now - running_for if running_for >= 0 else None
                continue
            if heard is None:
                continue
            if started is not None and now >= started + 1.25 * limit + self.grace:
                return self._stuck("ran one firing for %.0f s, past its time limit of %g s, and could not stop it "
                                   "(one call into compiled code that does not return)" % (now - started, limit))
            if now < heard + LOOK_SECONDS + 1.25 * max(limit, longest) + self.grace:
                continue  # woken a little early
            if noticed is None:
                noticed = now
            if now < noticed + self.confirm:
                continue
            return self._stuck("ran no Python for %.0f s (one call into compiled code holds the interpreter: the "
                               "time limit cannot stop it)" % (now - heard))

    def _stuck(self, why: str) -> None:
        self._drain_frames()  # what an earlier SIGUSR1 (not ours) left says where it was then
        try:
            os.kill(self._pid, DUMP_SIGNAL)
        except ProcessLookupError:
            return  # it died meanwhile: its sentinel says how
        where = where_stuck(self._read_frames())
        self.verdict = why + (", at %s" % where if where else "") + ": killed"
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)

    def _drain_frames(self) -> None:
        while select.select([self._frames_in], [], [], 0)[0] and os.read(self._frames_in, 1 << 16):
            pass

    def _read_frames(self) -> str:
        """What the stuck process wrote of its frames within DUMP_SECONDS (until it paused)."""
        text = b""
        deadline = time.monotonic() + DUMP_SECONDS
        while True:
            wait = deadline - time.monotonic() if not text else min(0.1, deadline - time.monotonic())
            if wait <= 0 or not select.select([self._frames_in], [], [], wait)[0]:
                return text.decode("utf-8", "replace")
            text += os.read(self._frames_in, 1 << 16)


def where_stuck(frames: str) -> str:
    """Where a ``faulthandler`` dump of every thread says the process is stuck, as
    ``prog.py:12 in stuck()``: the innermost frame of program code (the main thread's
    first, where the SQs run), else the main thread's innermost frame; "" if none."""
    threads = [_FRAME.findall(block) for block in _THREAD.split(frames)]
    threads = [found for found in threads if found]
    if not threads:
        return ""
    main = [found for found in threads if found[-1][2] != "_bootstrap"] or threads  # others start in threading
    deployed = [frame for found in main + threads for frame in found if DEPLOYED_MARK in frame[0]]
    file, line, function = (deployed or main[0])[0]
    return "%s:%s in %s()" % (os.path.basename(file.partition(DEPLOYED_MARK)[0]), line, function)
