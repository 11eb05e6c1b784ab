"""Doorbells: selectable wake-ups between processes.

An ``eventfd`` where the os module has one (Python 3.10+), else a non-blocking
pipe (Python 3.8 and 3.9, JetPack 5). Both are file descriptors, so a process
can wait on a doorbell and a socket in one ``selectors`` selector, and both are
inherited or passed like any descriptor. A doorbell is either:

- a *latch* (``counting=False``): rings add up to "rung"; :meth:`clear` resets
  it. One waiter (a queue's consumer).
- *counting* (``counting=True``): every ring is one token and :meth:`take`
  consumes one, so several waiters (producers waiting for room) each get the
  wake-up meant for them and none steals another's.
"""
from __future__ import annotations

import contextlib
import math
import os
import select
import struct
from typing import Optional, Tuple

EVENTFD = "eventfd"
PIPE = "pipe"
_COUNT = struct.Struct("=Q")
_ONE = _COUNT.pack(1)
#: select(2) watches descriptors below this number only (glibc's fd_set).
FD_SETSIZE = 1024


def default_kind() -> str:
    """``eventfd`` where this Python has ``os.eventfd`` (3.10+), else ``pipe``."""
    return EVENTFD if hasattr(os, "eventfd") else PIPE


class Doorbell:
    """One doorbell in this process: ``fds`` are (fd,) for an eventfd, (read, write) for a pipe.

    Whether it counts is fixed when it is created (an eventfd's EFD_SEMAPHORE); a pipe counts bytes
    either way, and the queue uses each doorbell in its one role.
    """

    def __init__(self, kind: str, fds: Tuple[int, ...]) -> None:
        if kind not in (EVENTFD, PIPE) or len(fds) != (1 if kind == EVENTFD else 2):
            raise ValueError("doorbell %r with descriptors %r" % (kind, fds))
        self.kind = kind
        self.fds = fds
        self._read = fds[0]
        self._write = fds[-1]
        self._ring_one = _ONE if kind == EVENTFD else b"\0"
        self._readable = (self._read,)

    @classmethod
    def create(cls, kind: str, counting: bool) -> Doorbell:
        if kind == EVENTFD:
            if not hasattr(os, "eventfd"):
                raise ValueError("an eventfd doorbell needs os.eventfd (Python 3.10+); use %r" % PIPE)
            # Python 3.10+ only, checked just above (vermin, the 3.8 check, is told with novermin).
            flags = os.EFD_NONBLOCK | os.EFD_CLOEXEC | (os.EFD_SEMAPHORE if counting else 0)  # novermin
            return cls(kind, (os.eventfd(0, flags),))  # novermin
        if kind == PIPE:
            return cls(kind, os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC))
        raise ValueError("doorbell kind %r: %r or %r" % (kind, EVENTFD, PIPE))

    def fileno(self) -> int:
        """Readable when rung."""
        return self._read

    def ring(self, count: int = 1) -> None:
        if count == 1:
            os.write(self._write, self._ring_one)
        else:
            os.write(self._write, _COUNT.pack(count) if self.kind == EVENTFD else b"\0" * count)

    def wait(self, timeout: Optional[float]) -> bool:
        """Block until rung or ``timeout`` seconds (None: no limit) pass; True if rung.

        ``select`` takes its timeout in microseconds; ``poll`` and ``epoll`` count whole
        milliseconds, rounded up, so a consumer waiting for its next timer (a stream's
        sample) would wake up to a millisecond late. ``select`` cannot watch a descriptor
        numbered FD_SETSIZE (1024) or above: a process holding that many files (the
        doorbell was made after them) waits with ``poll``, to the millisecond.
        """
        if self._read >= FD_SETSIZE:
            poller = select.poll()
            poller.register(self._read, select.POLLIN)
            return bool(poller.poll(None if timeout is None else math.ceil(max(0.0, timeout) * 1000)))
        return bool(select.select(self._readable, (), (), None if timeout is None else max(0.0, timeout))[0])

    def take(self) -> None:
        """Counting doorbells: consume one token if there is one (another waiter may have been first)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 8 if self.kind == EVENTFD else 1)

    def clear(self) -> None:
        """Latches: forget every ring so far."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 4096)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
