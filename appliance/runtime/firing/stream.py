"""The stream rule: a periodic source sampled on the root clock."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from appliance.ipc import ExecutionContext
from appliance.program.token import Token
from appliance.runtime.firing.base import Rule
from appliance.timing import Interval

#: How far a late device may fall behind before it skips samples instead of
#: catching up one by one (each skipped sample is counted).
MAX_CATCH_UP = 16


class StreamRule(Rule):
    """Samples at every tick ``t ≡ phase (mod period)`` inside the start window.

    Times are integers, so a 5 ms stream samples exactly every 5000 ticks for
    as long as the window lasts (the original's float sim time silently
    stopped such streams after ten samples). Each sample's interval is
    ``width`` ticks centred on ``t``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stream = self.spec.stream
        assert stream is not None
        self.period, self.phase, self.width, self.count = stream.period, stream.phase, stream.width, stream.count
        self.window: Optional[Interval] = None
        self.next_tick = 0
        self.emitted = 0
        self.generation = 0
        self.ports = frozenset()

    def on_token(self, token: Token, now: int) -> List[ExecutionContext]:
        return []  # unreachable: a stream has no ports, so every token is refused first

    def on_start(self, window: Interval, now: int) -> List[ExecutionContext]:
        self.generation += 1
        self.window = window
        self.emitted = 0
        base = max(window.start, now)
        self.next_tick = base + (self.phase - base) % self.period
        self.timers.schedule(self.next_tick, self._sample, self.generation)
        return []

    def _sample(self, generation: int, now: int) -> List[ExecutionContext]:
        if generation != self.generation or self.stopped or self.window is None:
            return []
        tick = self.next_tick
        if tick >= self.window.stop or (self.count is not None and self.emitted >= self.count):
            return []
        behind = (now - tick) // self.period
        if behind > MAX_CATCH_UP:
            skipped = behind - MAX_CATCH_UP
            self.counters.drop("stream_overrun", skipped)
            tick += skipped * self.period
        self.emitted += 1
        self.next_tick = tick + self.period
        self.timers.schedule(self.next_tick, self._sample, generation)
        return [ExecutionContext(self.name, Interval.around(tick, self.width), tuple(self.template), tick)]

    def stop(self) -> Tuple[int, Dict[str, int]]:
        self.stopped = True
        return 0, {"samples": self.emitted}
