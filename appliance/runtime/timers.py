"""One heap of timers per process core: no thread, no sleep, the shell asks when."""
from __future__ import annotations

import heapq
from typing import Any, Callable, List, Optional, Tuple


class Timers:
    """Callbacks due at absolute ticks. Cancelling is lazy: owners ignore stale keys."""

    def __init__(self) -> None:
        self._heap: List[Tuple[int, int, Callable[[Any, int], list], Any]] = []
        self._seq = 0

    def schedule(self, at: int, callback: Callable[[Any, int], list], key: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, callback, key))

    def next_due(self) -> Optional[int]:
        return self._heap[0][0] if self._heap else None

    def run_due(self, now: int) -> list:
        """Run every callback due at or before ``now``; return what they produce, in order."""
        out: list = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, callback, key = heapq.heappop(heap)
            out.extend(callback(key, now))
        return out

    def __len__(self) -> int:
        return len(self._heap)
