"""How much a device's processes log of one kind: a peer that floods bad messages must
not flood the journal too.

Every refusal is counted (``status`` has the counters); the log says it in one
line, which is what an operator reads first. But one line per message lets
whoever may send messages (any peer that completes a handshake) write to the
disk at the rate it sends. So a process says at most ``BURST`` lines of one
kind (one logger, one message text before its values are filled in) per
``WINDOW`` seconds; the others are counted, and the first line of that kind
after the window says how many were not. The kinds are the program's own
texts, so the table stays small; it is bounded anyway (``MAX_KINDS``).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable, List, Tuple

BURST = 10
WINDOW = 60.0
MAX_KINDS = 1024


class Repeats(logging.Filter):
    """A handler's filter: at most ``burst`` records of one kind per ``window`` seconds."""

    def __init__(self, burst: int = BURST, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._burst, self._window, self._clock = burst, window, clock
        #: (logger, text) -> [the window's start, lines said in it, lines held back]
        self._kinds: OrderedDict[Tuple[str, str], List[float]] = OrderedDict()
        self._lock = threading.Lock()  # a handler filters outside its own lock

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            return self._admits(record)

    def _admits(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        key = (record.name, str(record.msg))
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = [now, 0, 0]
            if len(self._kinds) > MAX_KINDS:
                self._kinds.popitem(last=False)
        else:
            self._kinds.move_to_end(key)
        if now - kind[0] >= self._window:
            held = int(kind[2])
            kind[:] = [now, 0, 0]
            if held:
                record.msg = "%s (and %d more like it since the last one said, not said: the counters have " \
                             "them all)" % (record.msg, held)
        if kind[1] >= self._burst:
            kind[2] += 1
            return False
        kind[1] += 1
        return True
