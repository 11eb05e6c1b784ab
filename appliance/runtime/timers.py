"""One heap of timers per process core: no thread, no sleep, the shell asks when."""
from __future__ import annotations

import heapq
from typing import Any, Callable, List, Optional, Tuple

#: ``Timers.due`` when nothing is scheduled: later than any tick.
IDLE = 2**63


class Timers:
    """Callbacks due at absolute ticks. Cancelling is lazy: owners ignore stale keys.

    ``due`` is the earliest tick anything is scheduled for (``IDLE`` if none):
    a plain attribute, because a shell reads it after every message.
    """

    def __init__(self) -> None:
        self._heap: List[Tuple[int, int, Callable[[Any, int], list], Any]] = []
        self._seq = 0
        self.due = IDLE

    def schedule(self, at: int, callback: Callable[[Any, int], list], key: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, callback, key))
        if at < self.due:
            self.due = at

    def next_due(self) -> Optional[int]:
        return None if self.due == IDLE else self.due

    def run_due(self, now: int, told: Optional[int] = None) -> list:
        """Run every callback due at or before ``now``, telling each ``told`` (``now`` when
        None); return what they produce, in order."""
        out: list = []
        heap = self._heap
        said = now if told is None else told
        while heap and heap[0][0] <= now:
            _, _, callback, key = heapq.heappop(heap)
            out.extend(callback(key, said))
        self.due = heap[0][0] if heap else IDLE
        return out

    def __len__(self) -> int:
        return len(self._heap)


class LocalTimers:
    """Timers on the process's local, monotonic clock: waits that only this device
    measures (join retries, deploy and teardown waits), which a step of the
    synchronised wall clock (NTP at boot) must neither cut short nor stretch.

    A handler knows only the root clock, so it asks for a delay; the shell, which
    asks for the next local deadline right after every call, fixes the delay
    against its local clock then (on the same instant in simulation, within
    microseconds on a device).
    """

    def __init__(self) -> None:
        self._timers = Timers()
        self._pending: List[Tuple[int, Callable[[Any, int], list], Any]] = []

    def schedule_in(self, delay: int, callback: Callable[[Any, int], list], key: Any = None) -> None:
        self._pending.append((delay, callback, key))

    def next_due(self, local: int) -> int:
        """The earliest local tick a timer is due (``IDLE`` if none)."""
        if self._pending:
            self._settle(local)
        return self._timers.due

    def run_due(self, local: int, now: int) -> list:
        """Run what is due by the local clock; callbacks are told the root clock's ``now``,
        as handlers are (a member lost at a local timeout ends a run at a root tick)."""
        if self._pending:
            self._settle(local)
        return self._timers.run_due(local, now)

    def _settle(self, local: int) -> None:
        for delay, callback, key in self._pending:
            self._timers.schedule(local + delay, callback, key)
        del self._pending[:]

    def __len__(self) -> int:
        return len(self._timers) + len(self._pending)
