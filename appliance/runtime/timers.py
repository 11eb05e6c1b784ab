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

    def run_due(self, now: int) -> list:
        """Run every callback due at or before ``now``; return what they produce, in order."""
        out: list = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, callback, key = heapq.heappop(heap)
            out.extend(callback(key, now))
        self.due = heap[0][0] if heap else IDLE
        return out

    def __len__(self) -> int:
        return len(self._heap)
